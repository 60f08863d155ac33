"""resolve_model's launcher end to end: no champion yet, then the champion with its age and
training statistics (MLflow on SQLite; Kubeflow's REST requests answered on 127.0.0.1)."""

from __future__ import annotations

import json

import pytest

from kfpkit import testing
from kfpkit.components.resolve_model import launcher
from kfpkit.registry import open_registry
from kfpkit.runtime import executor
from kfpkit.testing.registry_servers import ModelRegistryServer

OUTPUTS = ["found", "model_uri", "created_at", "age_days", "statistics_uri"]


def resolve(tmp_path, **params):
    doc = testing.executor_input(
        tmp_path / "out",
        {"model_name": "employment", **params},
        {"model_version": "system.Artifact"},
        output_params=OUTPUTS,
    )
    code = executor.launch(launcher.run, ["--executor_input", json.dumps(doc)])
    output = tmp_path / "out" / "executor_output.json"
    return code, (json.loads(output.read_text()) if output.exists() else None)


def test_no_champion_is_an_explicit_none(tmp_path):
    code, out = resolve(tmp_path, registry_uri=str(tmp_path / "registry" / "mlflow.db"))
    assert code == 0
    assert out["parameterValues"] == {
        "found": False,
        "model_uri": "",
        "created_at": "",
        "age_days": -1.0,
        "statistics_uri": "",
    }
    meta = out["artifacts"]["model_version"]["artifacts"][0]["metadata"]
    assert meta == {"found": False, "name": "employment", "alias": "champion"}
    assert (tmp_path / "out" / "found").read_text() == "false"


def test_the_champion_with_its_age_and_training_statistics(tmp_path):
    db = str(tmp_path / "registry" / "mlflow.db")
    registry = open_registry("mlflow", registry_uri=db)
    lineage = {"pipeline_run_id": "r1", "statistics_uri": "/root/r1/validate/train_statistics"}
    registry.register(
        "employment", "/root/serving/employment/1", lineage, {"auc": 0.9}, ["champion"]
    )
    registry.register(
        "employment", "/root/r2/model/1", {"pipeline_run_id": "r2"}, {}, ["challenger"]
    )
    code, out = resolve(tmp_path, registry_uri=db)
    assert code == 0
    values = out["parameterValues"]
    assert values["found"] is True and values["model_uri"] == "/root/serving/employment/1"
    assert values["statistics_uri"] == "/root/r1/validate/train_statistics"
    assert 0 <= values["age_days"] < 0.01 and values["created_at"].endswith("+00:00")
    meta = out["artifacts"]["model_version"]["artifacts"][0]["metadata"]
    assert meta["version"] == "1" and meta["metrics"] == {"auc": 0.9}
    code, out = resolve(tmp_path, registry_uri=db, alias="challenger")
    assert out["parameterValues"]["model_uri"] == "/root/r2/model/1"


@pytest.mark.filterwarnings("ignore:User access token is missing")
def test_the_kubeflow_backend_through_the_launcher(tmp_path):
    with ModelRegistryServer() as server:
        open_registry("kubeflow", server_address=server.url).register(
            "employment", "s3://models/employment/1", {"pipeline_run_id": "r1"}, {}, ["champion"]
        )
        code, out = resolve(tmp_path, backend="kubeflow", server_address=server.url)
    assert code == 0 and out["parameterValues"]["model_uri"] == "s3://models/employment/1"


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"model_name": "a b"}, "'a b'"),
        ({"alias": "Champion"}, "'Champion'"),
        ({"registry_uri": ""}, "registry_uri is empty"),
    ],
)
def test_bad_input_exits_2(tmp_path, caplog, params, expected):
    code, out = resolve(tmp_path, **{"registry_uri": str(tmp_path / "r.db"), **params})
    assert (code, out) == (2, None)
    assert expected in caplog.text
