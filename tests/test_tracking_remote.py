"""Tracking on Vertex AI and Kubeflow Pipelines: the real SDK's / client's requests received by
kfpkit's REST stand-ins on 127.0.0.1. A Vertex AI job is made a run of a Vertex AI Experiment;
``kfpkit runs compare`` reads runs back through each service's API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials

from kfpkit.cli import main
from kfpkit.submit import kubeflow, vertex
from kfpkit.testing.pipeline_servers import KubeflowTestServer, VertexTestServer
from kfpkit.tracking import ABSENT, open_tracker

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ROOT / "compiled" / "vertex" / "training.yaml"
MONITORING = ROOT / "compiled" / "vertex" / "monitoring.yaml"
REQUIRED = ["project=p", "source_table=p.d.t", "serving_model_uri=gs://b/models/employment"]
STORE = "projects/proj/locations/europe-west4/metadataStores/default"


@pytest.fixture()
def vertex_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[VertexTestServer]:
    from google.cloud.aiplatform import initializer

    saved = dict(vars(initializer.global_config))  # aiplatform.init is process-wide
    with VertexTestServer() as s:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", s.url)
        yield s
    vars(initializer.global_config).clear()
    vars(initializer.global_config).update(saved)


def _vertex(url: str) -> vertex.Vertex:
    return vertex.Vertex(project="proj", location="europe-west4", api_endpoint=url,
                         credentials=AnonymousCredentials(), api_transport="rest")  # fmt: skip


def _finish(server: VertexTestServer, name: str, tasks: dict[str, dict]) -> None:
    """What Vertex AI reports of a finished job: its state, each task's output artifacts."""
    job = server.jobs[name]
    job["state"] = "PIPELINE_STATE_SUCCEEDED"
    job["jobDetail"]["taskDetails"] = [
        {"taskId": str(i), "taskName": task, "state": "SUCCEEDED",
         "outputs": {"metrics": {"artifacts": [{
             "uri": f"gs://b/r/{task}/metrics", "schemaTitle": "system.Metrics",
             "metadata": metadata}]}}}
        for i, (task, metadata) in enumerate(tasks.items())
    ]  # fmt: skip


def test_a_vertex_job_is_a_run_of_an_experiment_and_compares(
    vertex_server: VertexTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    target = _vertex(vertex_server.url)
    first = vertex.submit(TRAINING, target, pipeline_root="gs://b/r", job_id="train-a",
                          cli_params=[*REQUIRED, "tuning_trials=0"],
                          experiment="nightly")  # fmt: skip
    # the experiment is a Metadata context of schema system.Experiment, and the job's run
    # context became its child: what the Vertex AI Experiments page lists
    (created,) = vertex_server.calls("POST", f"/v1/{STORE}/contexts$")
    assert created.query["contextId"] == "nightly"
    assert created.json()["schemaTitle"] == "system.Experiment"
    (added,) = vertex_server.calls("POST", ":addContextChildren$")
    assert added.path == f"/v1/{STORE}/contexts/nightly:addContextChildren"
    assert added.json() == {"childContexts": [f"{STORE}/contexts/train-a"]}
    assert first.experiment == "nightly"

    # without --experiment: the pipeline's name; the experiment exists now, only found again
    second = vertex.submit(MONITORING, target, pipeline_root="gs://b/r", job_id="monitor-b",
                           cli_params=["retrain_pipeline=gs://b/training.yaml",
                                       "serving_logs=gs://b/logs"])  # fmt: skip
    assert second.experiment == "kfpkit-monitoring"
    assert vertex_server.contexts[f"{STORE}/contexts/kfpkit-monitoring"]["childContexts"] == [
        f"{STORE}/contexts/monitor-b"
    ]

    _finish(vertex_server, first.job_name, {"evaluate": {"auc": 0.9033, "SEX=1/auc": 0.91}})
    _finish(vertex_server, second.job_name, {"monitor-serving": {"drift_max": 0.04}})
    tracker = open_tracker("vertex", target=target)
    run = tracker.get("train-a")
    assert run.status == "FINISHED" and run.pipeline == "kfpkit-training"
    assert run.params["tuning_trials"] == "0"  # an integer parameter, as given
    assert run.metrics == {"evaluate/auc": 0.9033, "evaluate/SEX:1/auc": 0.91}
    assert run.artifacts == {"evaluate/metrics": "gs://b/r/evaluate/metrics"}

    args = ["runs", "compare", "train-a", second.job_name, "--target", "vertex", "--project",
            "proj", "--location", "europe-west4", "--api-endpoint", vertex_server.url]  # fmt: skip
    assert main(args) == 0
    lines = {
        line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines() if line
    }
    assert lines["pipeline"] == ["kfpkit-training", "kfpkit-monitoring"]
    assert lines["tuning_trials"] == ["0", ABSENT] and lines["serving_logs"] == [ABSENT, "gs://b/logs"]
    assert lines["evaluate/auc"] == ["0.9033", ABSENT]
    assert lines["monitor-serving/drift_max"] == [ABSENT, "0.04"]


def test_a_bad_vertex_experiment_or_job_is_named(vertex_server: VertexTestServer) -> None:
    target = _vertex(vertex_server.url)
    with pytest.raises(ValueError, match="experiment 'Nightly_Runs' is not a Vertex AI"):
        vertex.submit(TRAINING, target, pipeline_root="gs://b/r", cli_params=REQUIRED,
                      experiment="Nightly_Runs")  # fmt: skip
    assert vertex_server.requests == []
    with pytest.raises(ValueError, match="no pipeline job .*pipelineJobs/missing"):
        open_tracker("vertex", target=target).get("missing")
    with pytest.raises(ValueError, match="'a b' is not a Vertex AI pipeline job"):
        open_tracker("vertex", target=target).get("a b")


def test_kubeflow_runs_compare_by_their_parameters_in_their_experiment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KF_PIPELINES_ENDPOINT", raising=False)
    monkeypatch.delenv(kubeflow.TOKEN_ENV, raising=False)
    with KubeflowTestServer() as server:
        target = kubeflow.Kubeflow(host=server.url)
        first = kubeflow.submit(ROOT / "compiled" / "kubeflow" / "training.yaml", target,
                                cli_params=[*REQUIRED, "tuning_trials=0"],
                                experiment="nightly")  # fmt: skip
        second = kubeflow.submit(ROOT / "compiled" / "kubeflow" / "monitoring.yaml", target,
                                 cli_params=["retrain_pipeline=p.yaml", "serving_logs=gs://b/d"],
                                 experiment="nightly")  # fmt: skip
        server.runs[first.run_id]["state"] = "SUCCEEDED"
        tracker = open_tracker("kubeflow", target=target)
        run = tracker.get(first.run_id)
        assert (run.status, run.experiment, run.pipeline) == ("FINISHED", "nightly",
                                                              "kfpkit-training")  # fmt: skip
        assert run.params["tuning_trials"] == "0" and run.metrics == {}
        assert main(["runs", "compare", first.run_id, second.run_id, "--target", "kubeflow",
                     "--host", server.url]) == 0  # fmt: skip
        out = capsys.readouterr().out
        lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line}
        assert lines["status"] == ["FINISHED", "RUNNING"]
        assert lines["tuning_trials"] == ["0", ABSENT] and lines["serving_logs"] == [ABSENT, "gs://b/d"]
        assert "metrics: none" in out and "ML Metadata" in out
        assert main(["runs", "compare", "run-999", "--target", "kubeflow",
                     "--host", server.url]) == 2  # fmt: skip
        assert "no run 'run-999' on Kubeflow Pipelines" in capsys.readouterr().err
        assert json.loads(json.dumps(server.runs[first.run_id]))["experiment_id"]
