"""kfpkit.submit.pipeline_spec: the compiled pipeline and its parameters, checked first."""

from __future__ import annotations

from pathlib import Path

import pytest

from kfpkit.submit import pipeline_spec

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ROOT / "compiled" / "training.yaml"
REQUIRED = {
    "project": "p",
    "source_table": "p.d.t",
    "destination_dataset": "d",
    "serving_model_uri": "gs://b/models/employment",
}


def test_the_training_pipeline_loads_with_its_parameters() -> None:
    pipeline = pipeline_spec.load(TRAINING)
    assert pipeline.name == "kfpkit-training"
    assert pipeline.parameters["tuning_trials"]["parameterType"] == "NUMBER_INTEGER"
    assert len(pipeline.digest) == 64


def test_cli_values_are_typed_by_the_declared_parameter() -> None:
    values = pipeline_spec.parameter_values(
        pipeline_spec.load(TRAINING),
        {"project": "from-file", "source_table": "p.d.t"},
        [
            "project=123",  # STRING: as written, not the number 123
            "destination_dataset=d",
            "serving_model_uri=gs://b/m",
            "tuning_trials=0",
            "min_auc=1",
            "fail_on_anomalies=true",
            'key_columns=["id","year"]',
            'split_ratios={"train":0.9,"test":0.1}',
        ],
    )
    assert values == {
        "project": "123",
        "source_table": "p.d.t",
        "destination_dataset": "d",
        "serving_model_uri": "gs://b/m",
        "tuning_trials": 0,
        "min_auc": 1.0,
        "fail_on_anomalies": True,
        "key_columns": ["id", "year"],
        "split_ratios": {"train": 0.9, "test": 0.1},
    }
    assert isinstance(values["min_auc"], float)


@pytest.mark.parametrize(
    ("cli", "message"),
    [
        (["tuning_trails=3"], "no parameter 'tuning_trails'"),
        (["tuning_trials=3.5"], "'tuning_trials' is NUMBER_INTEGER; 3.5"),
        (["tuning_trials=three"], "'tuning_trials' is NUMBER_INTEGER; 'three'"),
        (["min_auc=high"], "'min_auc' is NUMBER_DOUBLE; 'high'"),
        (["fail_on_anomalies=yes"], "'fail_on_anomalies' is BOOLEAN; 'yes'"),
        (["key_columns=id"], "'key_columns' is LIST; 'id'"),
        (["split_ratios=[0.8]"], r"'split_ratios' is STRUCT; \[0.8\]"),
        (["noequals"], "name=value"),
    ],
)
def test_bad_parameters_are_named(cli: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pipeline_spec.parameter_values(pipeline_spec.load(TRAINING), REQUIRED, cli)


def test_missing_required_and_ill_typed_file_values() -> None:
    pipeline = pipeline_spec.load(TRAINING)
    with pytest.raises(ValueError, match="needs a value for 'serving_model_uri', 'source_table'"):
        pipeline_spec.parameter_values(pipeline, {"project": "p"})
    with pytest.raises(ValueError, match="'project' is STRING; 42"):
        pipeline_spec.parameter_values(pipeline, {**REQUIRED, "project": 42})
    with pytest.raises(ValueError, match="'tuning_trials' is NUMBER_INTEGER; True"):
        pipeline_spec.parameter_values(pipeline, {**REQUIRED, "tuning_trials": True})


def test_params_file(tmp_path: Path) -> None:
    good = tmp_path / "p.yaml"
    good.write_text("project: p\ntuning_trials: 2\nkey_columns: [id]\n")
    assert pipeline_spec.read_params_file(good) == {
        "project": "p",
        "tuning_trials": 2,
        "key_columns": ["id"],
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="mapping"):
        pipeline_spec.read_params_file(bad)


@pytest.mark.parametrize(
    "text",
    [
        "name: x\nimplementation: {container: {image: a}}\n",  # a v1 component, not a pipeline
        "- 1\n- 2\n",
        "key: [unclosed\n",
        "",
    ],
)
def test_not_a_pipeline_spec(tmp_path: Path, text: str) -> None:
    path = tmp_path / "not_a_pipeline.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match="not_a_pipeline.yaml"):
        pipeline_spec.load(path)
