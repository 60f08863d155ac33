"""The registry contract, on each backend's real client: MLflow's on SQLite in a tmp folder,
aiplatform's and model-registry's real REST requests answered by test servers on 127.0.0.1."""

from __future__ import annotations

import contextlib
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from kfpkit.registry import CHALLENGER, CHAMPION, open_registry
from kfpkit.testing.registry_servers import ModelRegistryServer, VertexModelServer

LINEAGE = {
    "pipeline_run": "kfpkit-training-2026-12-01-20-32-13-815564",
    "pipeline_run_id": "6f1c2a9e-run-1",
    "train_data_uri": "gs://bucket/root/run-1/bigquery-split/train",
    "statistics_uri": "gs://bucket/root/run-1/validate-data/train_statistics",
    "metrics_uri": "gs://bucket/root/run-1/evaluate/metrics",
    "blessed": True,
}
METRICS = {"auc": 0.9033, "accuracy": 0.8256, "count": 27911}


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory):
    """An empty MLflow database, made once: creating its tables takes seconds."""
    path = tmp_path_factory.mktemp("mlflow") / "empty.db"
    open_registry("mlflow", registry_uri=str(path))
    return path


@contextlib.contextmanager
def backend_factory(kind, tmp_path, template):
    """Yields a function that opens a fresh client (a restarted step) on one shared store."""
    if kind == "mlflow":
        (tmp_path / "reg").mkdir()
        shutil.copy(template, tmp_path / "reg" / "mlflow.db")
        yield lambda: open_registry("mlflow", registry_uri=str(tmp_path / "reg" / "mlflow.db"))
    elif kind == "vertex":
        with VertexModelServer() as server:
            yield lambda: open_registry(
                "vertex", project="kfpkit-test", location="us-central1", api_endpoint=server.url
            )
    else:
        with ModelRegistryServer() as server:
            yield lambda: open_registry("kubeflow", server_address=server.url)


@pytest.fixture(params=["mlflow", "vertex", "kubeflow"])
def opener(request, tmp_path, migrated_db):
    with backend_factory(request.param, tmp_path, migrated_db) as open_new:
        yield open_new


def run(n):
    return {**LINEAGE, "pipeline_run_id": f"run-{n}"}


def test_nothing_registered_yet(opener):
    registry = opener()
    assert registry.get_by_alias("employment", CHAMPION) is None
    assert registry.list_versions("employment") == []


def test_a_version_keeps_its_uri_lineage_metrics_and_time(opener):
    registry = opener()
    before = datetime.now(UTC) - timedelta(seconds=2)
    version = registry.register(
        "employment", "gs://bucket/serving/employment/1", LINEAGE, METRICS, [CHAMPION]
    )
    champion = registry.get_by_alias("employment", CHAMPION)
    assert champion == version
    assert (champion.name, champion.version, champion.aliases) == ("employment", "1", (CHAMPION,))
    assert champion.uri == "gs://bucket/serving/employment/1"
    assert champion.created_at.tzinfo is not None
    assert before <= champion.created_at <= datetime.now(UTC) + timedelta(seconds=2)
    assert champion.metrics == {"auc": 0.9033, "accuracy": 0.8256, "count": 27911.0}
    expected = {k: str(v) for k, v in LINEAGE.items()} | {"blessed": "true"}
    assert {k: v for k, v in champion.lineage.items() if k != "registration_key"} == expected
    assert len(champion.lineage["registration_key"]) == 16
    assert champion.backend in ("mlflow", "vertex", "kubeflow") and champion.resource_name


def test_champion_moves_and_challenger_is_separate(opener):
    registry = opener()
    first = registry.register("employment", "gs://b/serving/1", run(1), METRICS, [CHAMPION])
    second = registry.register("employment", "gs://b/serving/2", run(2), METRICS, [CHAMPION])
    rejected = registry.register("employment", "gs://b/run-3/model/1", run(3), {}, [CHALLENGER])
    assert registry.get_by_alias("employment", CHAMPION).version == second.version
    assert registry.get_by_alias("employment", CHALLENGER).version == rejected.version
    listed = {v.version: v.aliases for v in registry.list_versions("employment")}
    assert listed == {
        first.version: (),
        second.version: (CHAMPION,),
        rejected.version: (CHALLENGER,),
    }
    registry.set_alias("employment", CHAMPION, first.version)  # a rollback
    assert registry.get_by_alias("employment", CHAMPION).uri == "gs://b/serving/1"


def test_a_restarted_registration_finds_its_version(opener):
    version = opener().register("employment", "gs://b/serving/1", run(1), METRICS, [CHAMPION])
    again = opener().register("employment", "gs://b/serving/1", run(1), METRICS, [CHAMPION])
    assert again.version == version.version
    assert len(opener().list_versions("employment")) == 1
    other_run = opener().register("employment", "gs://b/serving/1", run(2), METRICS, [CHAMPION])
    assert other_run.version != version.version


def test_a_restart_after_the_version_but_before_the_alias_applies_the_alias(opener):
    # the first attempt stopped between creating the version and moving the alias
    created = opener().register("employment", "gs://b/serving/1", run(1), METRICS, [])
    assert created.aliases == ()
    resumed = opener().register("employment", "gs://b/serving/1", run(1), METRICS, [CHAMPION])
    assert (resumed.version, resumed.aliases) == (created.version, (CHAMPION,))
    assert len(opener().list_versions("employment")) == 1


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda r: r.register("bad name!", "gs://b/m", {}, {}), "'bad name!'"),
        (lambda r: r.register("employment", "", {}, {}), "model uri ''"),
        (lambda r: r.register("employment", "gs://b/m", {}, {}, ["Champion"]), "'Champion'"),
        (lambda r: r.register("employment", "gs://b/m", {}, {}, ["latest"]), "'latest'"),
        (lambda r: r.register("employment", "gs://b/m", {"Bad-Key": "x"}, {}), "'Bad-Key'"),
        (lambda r: r.register("employment", "gs://b/m", {"a": "x" * 5001}, {}), "5001"),
        (lambda r: r.register("employment", "gs://b/m", {}, {"auc": float("nan")}), "auc=nan"),
        (lambda r: r.get_by_alias("employment", "v2"), "'v2'"),
    ],
)
def test_bad_input_is_named_and_registers_nothing(opener, call, message):
    registry = opener()
    with pytest.raises(ValueError, match=message):
        call(registry)
    assert registry.list_versions("employment") == []
