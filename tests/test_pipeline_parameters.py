"""The model pipelines' parameters: evaluate's interval-based blessing reaches the evaluate
step from pipeline parameters whose defaults are evaluate's own, and the parameters the
pipelines share have one default."""

from __future__ import annotations

import inspect

import pytest
import yaml
from kfp import compiler

from kfpkit.components import EvaluateOp
from kfpkit.components.evaluate.intervals import BootstrapSettings
from kfpkit.components.evaluate.metrics import BlessingRule
from kfpkit.pipelines.continuous_training import continuous_training
from kfpkit.pipelines.model_chain import pipeline_parameters
from kfpkit.pipelines.monitoring import monitoring
from kfpkit.pipelines.training import training

INTERVAL_PARAMETERS = ("bootstrap_resamples", "confidence", "min_lower_bound",
                       "require_noninferiority", "noninferiority_margin",
                       "slice_thresholds")  # fmt: skip
MODEL_PIPELINES = {"training": training, "continuous_training": continuous_training}


def _defaults(pipeline) -> dict:
    return {
        p.name: p.default
        for p in inspect.signature(pipeline.pipeline_func).parameters.values()
        if p.default is not inspect.Parameter.empty
    }


def _task(spec: dict, name: str) -> dict:
    found = [task for body in spec["components"].values()
             for task in body.get("dag", {}).get("tasks", {}).values()
             if task["taskInfo"]["name"] == name]  # fmt: skip
    assert len(found) == 1, f"{len(found)} tasks named {name}"
    return found[0]


@pytest.mark.parametrize("name", MODEL_PIPELINES)
def test_the_evaluate_step_blesses_with_the_pipelines_interval_parameters(tmp_path, name):
    path = tmp_path / f"{name}.yaml"
    compiler.Compiler().compile(MODEL_PIPELINES[name], str(path))
    spec = yaml.safe_load(path.read_text())
    evaluate = _task(spec, "evaluate")["inputs"]["parameters"]
    root = spec["root"]["inputDefinitions"]["parameters"]
    evaluate_inputs = EvaluateOp.component_spec.inputs
    for parameter in INTERVAL_PARAMETERS:
        assert evaluate[parameter] == {"componentInputParameter": f"pipelinechannel--{parameter}"}
        assert root[parameter]["defaultValue"] == evaluate_inputs[parameter].default, parameter
    # the point thresholds still reach it as before
    assert evaluate["absolute_threshold"] == {"componentInputParameter": "pipelinechannel--min_auc"}


def test_the_interval_defaults_are_evaluates_own():
    """Without kfp.local: the pipelines' signatures, evaluate's component and its launcher's
    settings (what a run that omits a parameter gets) agree."""
    rule, bootstrap = BlessingRule(), BootstrapSettings()
    launcher = {
        "bootstrap_resamples": bootstrap.resamples,
        "confidence": bootstrap.confidence,
        "min_lower_bound": rule.min_lower_bound,
        "require_noninferiority": rule.require_noninferiority,
        "noninferiority_margin": rule.noninferiority_margin,
        "slice_thresholds": rule.slice_thresholds,
    }
    component = {p: EvaluateOp.component_spec.inputs[p].default for p in INTERVAL_PARAMETERS}
    assert component == launcher
    for pipeline in MODEL_PIPELINES.values():
        defaults = _defaults(pipeline)
        assert {p: defaults[p] for p in INTERVAL_PARAMETERS} == component


def test_the_pipelines_shared_parameters_differ_only_where_they_mean_to():
    training_defaults = _defaults(training)
    continuous_defaults = _defaults(continuous_training)
    shared = training_defaults.keys() & continuous_defaults.keys()
    assert {
        "tuning_search_space",
        "push_action",
        "registry_location",
        *INTERVAL_PARAMETERS,
    } <= shared
    differing = {p for p in shared if training_defaults[p] != continuous_defaults[p]}
    # continuous training compares windows (tighter thresholds; id and year never compared)
    # and slices by SEX only (a window is one year)
    assert differing == {"categorical_drift_threshold", "numeric_drift_threshold",
                         "drift_thresholds", "slice_columns"}  # fmt: skip
    monitoring_defaults = _defaults(monitoring)
    assert monitoring_defaults["model_name"] == training_defaults["serving_model_name"]
    shared = monitoring_defaults.keys() & continuous_defaults.keys()
    assert {"registry_backend", "registry_location", "ignored_features"} <= shared
    differing = {p for p in shared if monitoring_defaults[p] != continuous_defaults[p]}
    # monitoring's per-feature thresholds start empty (its decision ignores id and year)
    assert differing == {"drift_thresholds", "skew_thresholds"}


def test_a_helper_names_the_parameters_a_pipeline_lacks():
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['tuning_trials'\]"):
        pipeline_parameters({"label_column": "y"}, ["label_column", "tuning_trials"])
