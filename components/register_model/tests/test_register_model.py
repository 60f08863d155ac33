"""register_model's launcher end to end on a tmp executor input, with MLflow on SQLite (and
once with Vertex AI's REST requests answered on 127.0.0.1)."""

from __future__ import annotations

import json

import pytest

from kfpkit import testing
from kfpkit.components.register_model import launcher
from kfpkit.registry import open_registry
from kfpkit.runtime import executor
from kfpkit.testing.registry_servers import VertexModelServer

METRICS = {"auc": 0.9033, "accuracy": 0.8256, "SEX=1/auc": 0.9, "blessed": True}


def make_model(path, version=1):
    (path / str(version) / "variables").mkdir(parents=True)
    (path / str(version) / "saved_model.pb").write_bytes(b"graph")
    return path


def run(tmp_path, run_id="run-1", blessed=True, model_meta=None, extra=None, out="out"):
    root = tmp_path / "root" / run_id
    model = make_model(root / "train" / "model", 2) if not (root / "train").exists() else None
    del model
    params = {"model_name": "employment", "blessed": blessed, "backend": "mlflow",
              "registry_uri": str(tmp_path / "root" / "registry" / "mlflow.db"),
              "pipeline_run": f"kfpkit-training-{run_id}", "pipeline_run_id": run_id,
              **(extra or {})}  # fmt: skip
    doc = testing.executor_input(
        tmp_path / out / run_id,
        params,
        {"registered_model": "system.Artifact"},
        inputs={
            "model": ("system.Model", str(root / "train" / "model")),
            "metrics": ("system.Metrics", str(root / "evaluate" / "metrics")),
            "train_data": ("system.Dataset", str(root / "split" / "train")),
            "statistics": ("system.Artifact", str(root / "validate" / "train_statistics")),
        },
        output_params=["registered_version"],
        input_metadata={"metrics": METRICS, "model": model_meta or {},
                        "train_data": {"table_id": "demo.splits.employment_train",
                                       "source": "p.demo.employment_2016",
                                       "row_count": 221973.0}},  # as KFP passes numbers
    )  # fmt: skip
    code = executor.launch(launcher.run, ["--executor_input", json.dumps(doc)])
    output = tmp_path / out / run_id / "executor_output.json"
    return code, (json.loads(output.read_text()) if output.exists() else None)


def registered(out):
    return out["artifacts"]["registered_model"]["artifacts"][0]["metadata"]


def test_a_blessed_model_is_the_champion_with_its_lineage(tmp_path):
    code, out = run(tmp_path)
    assert code == 0
    meta = registered(out)
    assert (meta["name"], meta["version"], meta["aliases"]) == ("employment", "1", ["champion"])
    assert meta["uri"] == str(tmp_path / "root" / "run-1" / "train" / "model" / "2")
    assert meta["backend"] == "mlflow" and meta["resource_name"] == "models:/employment/1"
    assert meta["metrics"] == {"auc": 0.9033, "accuracy": 0.8256}
    lineage = meta["lineage"]
    assert lineage["pipeline_run"] == "kfpkit-training-run-1"
    assert lineage["train_data_table"] == "demo.splits.employment_train"
    assert lineage["statistics_uri"].endswith("validate/train_statistics")
    assert lineage["metrics_uri"].endswith("evaluate/metrics") and lineage["blessed"] == "true"
    # the data window the split read and its training rows
    assert lineage["train_data_source"] == "p.demo.employment_2016"
    assert lineage["train_data_rows"] == "221973"
    assert "hyperparameters" not in lineage  # the model carried none
    assert out["parameterValues"]["registered_version"] == "1"


def test_the_models_hyperparameters_are_lineage(tmp_path):
    hyperparameters = {"learning_rate": 0.002, "hidden_units": [128, 64]}
    code, out = run(tmp_path, model_meta={"hyperparameters": hyperparameters})
    assert code == 0
    assert json.loads(registered(out)["lineage"]["hyperparameters"]) == hyperparameters
    file = tmp_path / "out" / "run-1" / "registered_model" / "model_version.json"
    assert json.loads(file.read_text())["version"] == "1"


def test_a_restarted_step_does_not_register_twice(tmp_path):
    assert run(tmp_path)[0] == 0
    code, out = run(tmp_path, out="retry")
    assert code == 0 and registered(out)["version"] == "1"
    registry = open_registry("mlflow", registry_uri=str(tmp_path / "root/registry/mlflow.db"))
    assert len(registry.list_versions("employment")) == 1


def test_the_next_blessed_run_takes_the_champion_alias_and_a_rejected_one_is_challenger(tmp_path):
    run(tmp_path, "run-1")
    published = {"published_uri": str(tmp_path / "serving" / "employment" / "2")}
    assert (
        registered(run(tmp_path, "run-2", model_meta=published)[1])["uri"]
        == published["published_uri"]
    )
    code, out = run(tmp_path, "run-3", blessed="false")
    assert code == 0 and registered(out)["aliases"] == ["challenger"]
    assert registered(out)["lineage"]["blessed"] == "false"
    registry = open_registry("mlflow", registry_uri=str(tmp_path / "root/registry/mlflow.db"))
    aliases = {v.version: v.aliases for v in registry.list_versions("employment")}
    assert aliases == {"1": (), "2": ("champion",), "3": ("challenger",)}


@pytest.mark.parametrize(
    "extra, expected",
    [({"model_name": "bad name"}, "bad name"), ({"backend": "sagemaker"}, "sagemaker"),
     ({"blessed": "maybe"}, "maybe"), ({"registry_uri": "gs://b/mlflow.db"}, "file locks")],
)  # fmt: skip
def test_bad_input_exits_2_with_no_outputs(tmp_path, caplog, extra, expected):
    code, out = run(tmp_path, extra=extra)
    assert (code, out) == (2, None)
    assert expected in caplog.text
    assert not (tmp_path / "out" / "run-1" / "registered_model").exists()


def test_a_train_model_without_a_version_folder_is_refused(tmp_path):
    (tmp_path / "root" / "run-1" / "train" / "model").mkdir(parents=True)
    code, out = run(tmp_path)
    assert (code, out) == (2, None)


def test_the_vertex_backend_through_the_launcher(tmp_path):
    with VertexModelServer() as server:
        extra = {"backend": "vertex", "project": "kfpkit-test", "location": "europe-west4",
                 "api_endpoint": server.url}  # fmt: skip
        code, out = run(tmp_path, extra=extra)
        assert code == 2  # a local model: Vertex serves from gs:// only (the SDK would copy it)
        assert server.calls("POST", r"models:upload$") == []
        published = {"published_uri": "gs://bucket/serving/employment/1"}
        code, out = run(tmp_path, model_meta=published, extra=extra)
        assert code == 0
        meta = registered(out)
        assert meta["resource_name"] == (
            "projects/kfpkit-test/locations/europe-west4/models/employment@1"
        )
        (upload,) = server.calls("POST", r"models:upload$")
        assert upload.body["model"]["labels"]["kfpkit-run"] == "kfpkit-training-run-1"
