"""The launcher end to end through launch(): real training on the sample, real files."""

import contextlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from kfpkit import testing
from kfpkit.components.train import launcher
from kfpkit.runtime.executor import EXIT_SYSTEM_ERROR, EXIT_USER_ERROR, launch

SCHEMA = Path(__file__).parent / "data" / "schema.pbtxt"
OUTPUTS = {"model": "system.Model", "metrics": "system.Metrics", "training_curve": "system.HTML"}
FAST = {"epochs": 8, "batch_size": 128, "hidden_units": [32, 16], "learning_rate": 0.003}


def executor_input(out: Path, inputs: dict[str, Path], params: dict) -> dict:
    kinds = {"schema": "system.Artifact"}
    typed = {n: (kinds.get(n, "system.Dataset"), str(p)) for n, p in inputs.items()}
    # the demo data's names: the pipelines set them, the component has no default
    params = {"label_column": "employed", "exclude_columns": ["id"], **params}
    return testing.executor_input(out, params, OUTPUTS, typed)


def run_launcher(out: Path, inputs: dict[str, Path], params: dict) -> int:
    doc = json.dumps(executor_input(out, inputs, params))
    return launch(launcher.run, ["--executor_input", doc])


def split_inputs(splits: dict[str, Path]) -> dict[str, Path]:
    return {"train_data": splits["train"], "validation_data": splits["validation"]}


@pytest.fixture(scope="module")
def trained(splits, tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    capture = out / "stdout.txt"
    with open(capture, "w") as f, contextlib.redirect_stdout(f):
        code = run_launcher(out, split_inputs(splits), {"hyperparameters": json.dumps(FAST)})
    assert code == 0
    return out, capture.read_text()


def test_outputs_and_metadata(trained):
    out, stdout = trained
    doc = json.loads((out / "executor_output.json").read_text())
    arts = {k: v["artifacts"][0]["metadata"] for k, v in doc["artifacts"].items()}
    model = arts["model"]
    assert model["framework"] == "tensorflow" and model["model_version"] == 1
    assert model["strategy"] == "DefaultStrategy(CPU)" and model["label"] == "employed"
    assert "id" not in model["features"] and model["features"]["SEX"] == "categorical"
    assert (out / "model" / "1" / "saved_model.pb").is_file()
    assert not [p for p in (out / "model").iterdir() if p.name != "1"]  # no staging left
    metrics = arts["metrics"]
    assert metrics["train_rows"] == 4000 and metrics["validation_rows"] == 1000
    assert 1 <= metrics["best_epoch"] <= metrics["epochs_run"] <= FAST["epochs"]
    assert metrics["examples_per_second"] > 0
    # the majority class is ~50%: the model must learn well beyond it
    assert metrics["validation_accuracy"] > 0.75 and metrics["validation_auc"] > 0.82
    assert "<svg" in (out / "training_curve").read_text()
    printed = dict(line.split("=") for line in stdout.splitlines() if "=" in line)
    assert float(printed["validation-accuracy"]) == pytest.approx(metrics["validation_accuracy"])
    assert {"validation-loss", "validation-auc", "train-accuracy"} <= set(printed)


def test_saved_model_serves_raw_features(trained, splits):
    out, _ = trained
    loaded = tf.saved_model.load(str(out / "model" / "1"))
    serve = loaded.signatures["serving_default"]
    inputs = serve.structured_input_signature[1]
    assert inputs["AGEP"].dtype == tf.float32 and inputs["SEX"].dtype == tf.string
    test = pq.read_table(splits["test"])
    feed = {
        name: tf.constant(
            test[name].to_numpy().astype(np.float32)
            if spec.dtype == tf.float32
            else test[name].to_numpy(zero_copy_only=False).astype(str)
        )
        for name, spec in inputs.items()
    }
    (probability,) = serve(**feed).values()
    predicted = probability.numpy().reshape(-1) >= 0.5
    accuracy = float(np.mean(predicted == (test["employed"].to_numpy() == 1)))
    assert accuracy > 0.75
    # unseen categories and missing numbers are served, not rejected
    one = {k: v[:1] for k, v in feed.items()}
    one["SCHL"] = tf.constant(["never-seen"])
    one["AGEP"] = tf.constant([float("nan")])
    (value,) = serve(**one).values()
    assert 0.0 <= float(value.numpy().reshape(-1)[0]) <= 1.0


def test_with_the_tfdv_schema_and_explicit_features(splits, tmp_path):
    inputs = {**split_inputs(splits), "schema": SCHEMA}
    params = {
        "hyperparameters": {"epochs": 1},
        "feature_columns": ["AGEP", "SCHL", "year"],
        "model_version": 7,
    }
    assert run_launcher(tmp_path, inputs, params) == 0
    doc = json.loads((tmp_path / "executor_output.json").read_text())
    model = doc["artifacts"]["model"]["artifacts"][0]["metadata"]
    assert model["features"] == {"AGEP": "numeric", "SCHL": "categorical", "year": "numeric"}
    assert (tmp_path / "model" / "7" / "saved_model.pb").is_file()


def test_bad_input_exits_2_and_clears_outputs(splits, tmp_path, caplog):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "stale.txt").write_text("from an earlier attempt")
    params = {"hyperparameters": '{"dropout": 1.5}'}
    assert run_launcher(tmp_path, split_inputs(splits), params) == EXIT_USER_ERROR
    assert "hyperparameters['dropout'] = 1.5 is out of range" in caplog.text
    assert not (tmp_path / "model").exists()
    assert not (tmp_path / "executor_output.json").exists()


def test_no_label_column_exits_2_naming_the_parameter(splits, tmp_path, caplog):
    # the demo's label is the pipelines' business: the component has no default for it
    doc = executor_input(tmp_path, split_inputs(splits), {"hyperparameters": {"epochs": 1}})
    del doc["inputs"]["parameterValues"]["label_column"]
    assert launch(launcher.run, ["--executor_input", json.dumps(doc)]) == EXIT_USER_ERROR
    assert "parameter 'label_column' is missing" in caplog.text
    assert not (tmp_path / "model").exists()


def test_malformed_schema_exits_2_naming_the_file(splits, tmp_path, caplog):
    schema = tmp_path / "schema"
    schema.mkdir()
    (schema / "schema.pbtxt").write_text('feature { name: "AGEP" type: DOUBLE }')
    inputs = {**split_inputs(splits), "schema": schema}
    assert run_launcher(tmp_path / "out", inputs, {"hyperparameters": {"epochs": 1}}) == 2
    assert f"{schema / 'schema.pbtxt'}: not a valid tensorflow_metadata Schema" in caplog.text
    assert "has no value named DOUBLE" in caplog.text  # protobuf's own message
    assert not (tmp_path / "out" / "executor_output.json").exists()


def test_failure_after_export_leaves_no_model(splits, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("cannot write the curve")

    monkeypatch.setattr(launcher, "training_curve_html", broken)
    params = {"hyperparameters": {"epochs": 1}, "feature_columns": ["AGEP", "SEX"]}
    assert run_launcher(tmp_path, split_inputs(splits), params) == EXIT_SYSTEM_ERROR
    assert not (tmp_path / "model").exists()
    assert not (tmp_path / "executor_output.json").exists()
