"""MLflow's registry on SQLite: what kfpkit writes reads back with MLflow's own client."""

from __future__ import annotations

import pytest

from kfpkit.registry import CHAMPION, open_registry
from kfpkit.registry.mlflow_backend import store_uri


def test_versions_read_back_with_mlflows_own_client(tmp_path):
    db = tmp_path / "registry" / "mlflow.db"
    registry = open_registry("mlflow", registry_uri=str(db))
    lineage = {
        "pipeline_run": "kfpkit-training-1",
        "pipeline_run_id": "r1",
        "statistics_uri": "/root/run/validate-data/train_statistics",
    }
    registry.register("employment", "/root/serving/employment/1", lineage, {"auc": 0.9}, [CHAMPION])
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
    mv = client.get_model_version_by_alias("employment", CHAMPION)
    assert mv.source == "/root/serving/employment/1"  # the model where it is: no copy
    assert mv.tags["kfpkit.statistics_uri"] == lineage["statistics_uri"]
    assert mv.tags["kfpkit.pipeline_run"] == "kfpkit-training-1"
    assert float(mv.tags["kfpkit.metric.auc"]) == 0.9
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "registry" / "mlruns").exists()


def test_store_uris(tmp_path):
    assert store_uri(str(tmp_path / "a" / "m.db")) == f"sqlite:///{tmp_path}/a/m.db"
    assert (tmp_path / "a").is_dir()
    assert store_uri("postgresql://u@db/mlflow") == "postgresql://u@db/mlflow"
    assert store_uri("https://mlflow.example.com") == "https://mlflow.example.com"


@pytest.mark.parametrize(
    "uri, message",
    [("", "empty"), ("gs://b/registry/mlflow.db", "file locks"), ("ftp://x/y", "ftp://x/y")],
)
def test_bad_store_uris_are_named(uri, message):
    with pytest.raises(ValueError, match=message):
        store_uri(uri)


def test_a_folder_is_not_a_database(tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        store_uri(str(tmp_path))
