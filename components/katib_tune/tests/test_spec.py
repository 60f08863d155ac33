"""The spec is checked against Katib's webhook rules before anything is submitted; the
Experiment built for every algorithm round-trips through Katib's own models and passes them."""

from __future__ import annotations

import copy
import json

import pytest
from kubeflow_katib_api import models

from kfpkit.components.katib_tune import experiment as katib
from kfpkit.components.katib_tune import spec as specs
from kfpkit.components.katib_tune.trial import TrialData, hyperparameters_from

DATA = TrialData(
    "gs://bucket/run/train",
    "gs://bucket/run/validation",
    label_column="employed",
    schema="gs://bucket/run/schema",
    exclude_columns=("id",),
)
LR = {"name": "learning_rate", "type": "double", "min": 1e-4, "max": 0.1, "log": True}
BATCH = {"name": "batch_size", "type": "int", "min": 64, "max": 512, "step": 64}
UNITS = {"name": "hidden_units", "type": "categorical", "values": ["64,32", "128"]}
DROPOUT_GRID = {"name": "dropout", "type": "double", "min": 0.0, "max": 0.4, "step": 0.1}
EPOCHS = {"name": "epochs", "type": "discrete", "values": [2, 4, 8]}


def space_for(algorithm: str) -> list[dict]:
    if algorithm == "grid":
        return [DROPOUT_GRID, EPOCHS, UNITS]
    return [LR, BATCH, UNITS, EPOCHS]


def build(spec: specs.TuneSpec, name: str = "katib-tune-0123456789ab") -> dict:
    return katib.build_experiment(
        spec,
        name,
        "kubeflow",
        "ghcr.io/kfpkit/train:0.1.0",
        DATA,
        service_account="tuner",
        owner="abc",
    )


@pytest.mark.parametrize("algorithm", specs.ALGORITHMS)
@pytest.mark.parametrize("stopping", ["", "medianstop"])
def test_every_algorithm_builds_a_valid_experiment(algorithm, stopping):
    spec = specs.parse_spec(
        space_for(algorithm),
        algorithm=algorithm,
        max_trial_count=6,
        parallel_trial_count=2,
        early_stopping=stopping,
        additional_metrics=["validation-loss"],
        fixed_hyperparameters={"seed": 7},
    )
    doc = build(spec)
    assert models.V1beta1Experiment.from_dict(doc).to_dict() == doc  # Katib's models take it
    assert katib.webhook_errors(doc) == []
    assert doc["spec"]["algorithm"]["algorithmName"] == algorithm
    assert ("earlyStopping" in doc["spec"]) == bool(stopping)
    container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
    assert container["serviceAccountName"] == "tuner"
    command = container["containers"][0]["command"]
    for p in spec.parameters:
        assert f"{p.name}=${{trialParameters.{p.name}}}" in command
    assert command[command.index("--train-data") + 1] == DATA.train  # the URI, not a mount


def test_log_scale_and_steps_reach_the_feasible_space():
    spec = specs.parse_spec([LR, BATCH], algorithm="random", max_trial_count=3)
    by_name = {p["name"]: p["feasibleSpace"] for p in build(spec)["spec"]["parameters"]}
    assert by_name["learning_rate"] == {"min": "0.0001", "max": "0.1", "distribution": "logUniform"}
    assert by_name["batch_size"]["step"] == "64" and by_name["batch_size"]["min"] == "64"


def test_trial_command_round_trips_to_the_hyperparameters_train_takes():
    spec = specs.parse_spec(
        [LR, BATCH, UNITS], max_trial_count=4, fixed_hyperparameters={"epochs": 3}
    )
    command = katib.trial_command(spec, DATA)
    space = json.loads(command[command.index("--search-space") + 1])
    fixed = json.loads(command[command.index("--fixed") + 1])
    # Katib substitutes text
    assigned = ["learning_rate=0.0123", "batch_size=128", "hidden_units=64,32"]
    hp = hyperparameters_from(space, fixed, assigned)
    assert hp == {"epochs": 3, "learning_rate": 0.0123, "batch_size": 128, "hidden_units": "64,32"}
    assert hp == spec.hyperparameters(
        {"learning_rate": "0.0123", "batch_size": "128", "hidden_units": "64,32"}
    )
    with pytest.raises(ValueError, match="no value assigned to \\['hidden_units'\\]"):
        hyperparameters_from(space, fixed, assigned[:2])


# -- bad specs: each refused, naming the value --------------------------------------------
BAD_SPECS = [
    ({"algorithm": "hyperband"}, "algorithm 'hyperband' is not one of"),
    ({"algorithm": "simulated-annealing"}, "algorithm 'simulated-annealing'"),
    ({"search_space": []}, "search_space is empty"),
    ({"search_space": [{**LR, "min": 0.5, "max": 0.1}]}, "min 0.5 > max 0.1"),
    ({"search_space": [{**LR, "min": 0.0}]}, "log scale needs min > 0, not 0.0"),
    ({"search_space": [{**LR, "min": -1, "log": True}]}, "log scale needs min > 0, not -1"),
    (
        {"parallel_trial_count": 5, "max_trial_count": 4},
        "parallel_trial_count 5 > max_trial_count 4",
    ),
    ({"max_failed_trial_count": 9, "max_trial_count": 4}, "max_failed_trial_count 9 >"),
    (
        {"algorithm": "grid", "search_space": [{**DROPOUT_GRID, "step": None}]},
        "grid over the continuous range \\[0, 0.4\\] needs a step",
    ),
    (
        {"algorithm": "grid", "max_trial_count": 20, "search_space": [DROPOUT_GRID]},
        "max_trial_count 20 > the grid's 5 combinations",
    ),
    ({"objective_metric": "validation-f1"}, "objective_metric 'validation-f1' is never printed"),
    ({"additional_metrics": ["test-auc"]}, "'test-auc' is never printed"),
    ({"additional_metrics": ["validation-auc"]}, "must not contain the objective"),
    ({"objective_type": "maximise"}, "objective_type 'maximise'"),
    ({"search_space": [{**LR, "type": "float"}]}, "type 'float' is not one of"),
    ({"search_space": [{**UNITS, "values": []}]}, "needs a non-empty list of values"),
    ({"search_space": [{**UNITS, "min": 1}]}, "categorical takes a list of values"),
    ({"search_space": [{**BATCH, "min": 1.5}]}, "min must be a whole number, not 1.5"),
    ({"search_space": [{**BATCH, "step": 0}]}, "step must be > 0"),
    ({"search_space": [{**LR, "step": 0.01}]}, "step and log scale cannot be combined"),
    ({"search_space": [LR, LR]}, "duplicate parameter name"),
    ({"search_space": [{**LR, "scale": "log"}]}, "unknown key\\(s\\) \\['scale'\\]"),
    ({"search_space": [{**LR, "name": "lr"}]}, "'lr' is not a hyperparameter of train"),
    ({"fixed_hyperparameters": {"learning_rate": 0.1}}, "both tuned .* and fixed"),
    ({"fixed_hyperparameters": {"momentum": 0.9}}, "unknown key\\(s\\) \\['momentum'\\]"),
    (
        {"algorithm_settings": {"n_initial_points": 3}},
        "unknown setting 'n_initial_points' for 'tpe'",
    ),
    (
        {"algorithm": "bayesianoptimization", "algorithm_settings": {"acq_func": "UCB"}},
        "acq_func'\\] = 'UCB' is not one of",
    ),
    ({"algorithm_settings": {"random_state": -1}}, "random_state'\\] must be >= 0"),
    ({"algorithm": "cmaes", "search_space": [LR, UNITS]}, "'cmaes' needs at least two"),
    ({"early_stopping": "hyperband"}, "early_stopping 'hyperband'"),
    (
        {"early_stopping": "medianstop", "early_stopping_settings": {"start_step": 0}},
        "start_step'\\] must be >= 1",
    ),
    ({"early_stopping_settings": {"start_step": 2}}, "without early_stopping='medianstop'"),
    ({"max_trial_count": -1}, "max_trial_count must be >= 0, not -1"),
    ({"parallel_trial_count": 0}, "parallel_trial_count must be >= 1, not 0"),
    ({"objective_goal": "high"}, "objective_goal must be a number, not 'high'"),
]
KNOWN = [
    "learning_rate",
    "hidden_units",
    "dropout",
    "batch_size",
    "epochs",
    "early_stopping_patience",
    "embedding_dim",
    "seed",
]


@pytest.mark.parametrize("change, message", BAD_SPECS, ids=[m[:40] for _, m in BAD_SPECS])
def test_bad_spec_is_refused(change, message):
    args = {"search_space": [LR, BATCH], "max_trial_count": 4, **change}
    if args.get("search_space") and args["search_space"][0].get("step") is None:
        args["search_space"] = [
            {k: v for k, v in p.items() if v is not None} for p in args["search_space"]
        ]
    with pytest.raises(ValueError, match=message):
        specs.parse_spec(known_hyperparameters=KNOWN, **args)


def test_zero_trials_means_no_tuning_and_needs_no_search_space():
    spec = specs.parse_spec([], max_trial_count=0, fixed_hyperparameters={"epochs": 2})
    assert not spec.tuning and spec.hyperparameters({}) == {"epochs": 2}


@pytest.mark.parametrize("name", ["Katib_Tune", "9lives", "x" * 41])
def test_bad_experiment_names_are_refused(name):
    spec = specs.parse_spec([LR], max_trial_count=4)
    with pytest.raises(ValueError, match="experiment name"):
        build(spec, name)


@pytest.mark.parametrize(
    "field, value", [("namespace", "Team_A"), ("service_account", "a b"), ("image", "")]
)
def test_bad_kubernetes_names_are_refused(field, value):
    spec = specs.parse_spec([LR], max_trial_count=4)
    args = {
        "name": "katib-tune-x",
        "namespace": "kubeflow",
        "image": "i",
        "data": DATA,
        field: value,
    }
    with pytest.raises(ValueError, match=f"{field} {value!r}".replace("image", "trial_image")):
        katib.build_experiment(spec, **args)


# -- the webhook rules on documents it must refuse ----------------------------------------
def _valid() -> dict:
    return build(
        specs.parse_spec(
            space_for("tpe"), max_trial_count=6, parallel_trial_count=2, early_stopping="medianstop"
        )
    )


def _set(doc: dict, path: str, value) -> dict:
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return doc


_DELETE = object()
TEMPLATE = "spec.trialTemplate"
CONTAINER = f"{TEMPLATE}.trialSpec.spec.template.spec.containers.0"
WEBHOOK_CASES = [
    ("metadata.name", "9-tune", "metadata.name '9-tune'"),
    ("spec.maxTrialCount", 0, "spec.maxTrialCount: must be greater than 0"),
    ("spec.parallelTrialCount", 7, "spec.parallelTrialCount: should be less than or equal"),
    ("spec.maxFailedTrialCount", -1, "should not be less than 0"),
    ("spec.objective.type", "best", "spec.objective.type 'best'"),
    ("spec.objective.objectiveMetricName", "", "objectiveMetricName: must be specified"),
    ("spec.objective.additionalMetricNames", ["validation-auc"], "should not contain"),
    ("spec.algorithm.algorithmName", "annealing", "no Suggestion config"),
    ("spec.earlyStopping.algorithmName", "patience", "no EarlyStopping config"),
    ("spec.resumePolicy", "Sometimes", "invalid ResumePolicyType"),
    ("spec.parameters", [], "spec.parameters or spec.nasConfig must be specified"),
    ("spec.parameters.0.parameterType", "float", "parameterType 'float': not supported"),
    ("spec.parameters.0.feasibleSpace", {}, "feasibleSpace: must be specified"),
    ("spec.parameters.0.feasibleSpace.min", "", "max/min: must be specified"),
    ("spec.parameters.0.feasibleSpace.list", ["1"], "list: not supported for double"),
    ("spec.parameters.2.feasibleSpace.min", "1", ".max, .min and .step not supported"),
    ("spec.parameters.0.feasibleSpace.distribution", "zipf", "distribution 'zipf'"),
    (f"{TEMPLATE}.primaryContainerName", "", "primaryContainerName: must be specified"),
    (f"{TEMPLATE}.primaryContainerName", "main", "no container of that name"),
    (f"{TEMPLATE}.successCondition", "", "successCondition and failureCondition"),
    (f"{TEMPLATE}.trialParameters", _DELETE, "trialParameters: must be specified"),
    (f"{TEMPLATE}.trialParameters.0.reference", "lr", "reference 'lr': does not exist"),
    (f"{TEMPLATE}.trialParameters.1.name", "learning_rate", "name 'learning_rate': duplicated"),
    (f"{TEMPLATE}.trialParameters.0.name", "x{y}", "name without braces"),
    (f"{TEMPLATE}.trialParameters.0.name", "momentum", "'momentum': not found in spec.trialTemp"),
    (f"{CONTAINER}.args", ["${trialParameters.seed}"], "not found in spec.trialParameters"),
    (f"{TEMPLATE}.trialSpec.metadata", {"name": "fixed"}, "metadata.name and metadata.namespace"),
    (f"{TEMPLATE}.trialSpec.kind", "", "APIVersion and Kind must be specified"),
    (f"{TEMPLATE}.configMap", {"configMapName": "x"}, "exactly one of trialSpec or configMap"),
    ("spec.metricsCollectorSpec.collector.kind", "Stdout", "collector.kind 'Stdout': invalid"),
    (
        "spec.metricsCollectorSpec.source.filter.metricsFormat",
        ["(\\w+)=\\d+"],
        "two top subexpressions are required",
    ),
    ("spec.metricsCollectorSpec.source.filter.metricsFormat", ["(a"], "missing \\)"),
]


@pytest.mark.parametrize(
    "path, value, message", WEBHOOK_CASES, ids=[f"{p}={v!r}"[:60] for p, v, _ in WEBHOOK_CASES]
)
def test_webhook_rules_refuse(path, value, message):
    doc = _set(_valid(), path, value)
    errors = katib.webhook_errors(doc)
    assert any(__import__("re").search(message, e) for e in errors), errors
    with pytest.raises(ValueError, match="would be refused by Katib"):
        katib.check_experiment(doc)


def test_the_valid_document_has_no_errors():
    assert katib.webhook_errors(_valid()) == []
