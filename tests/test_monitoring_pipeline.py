"""The served-traffic monitoring in the compiled pipelines, and the monitoring pipeline
scheduled with ``kfpkit schedule`` against the local KFP API stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kfpkit import cli
from kfpkit.submit import kubeflow
from kfpkit.testing.pipeline_servers import KubeflowTestServer

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("", "kubeflow", "vertex")


def spec(name: str, target: str = "") -> dict:
    path = ROOT / "compiled" / target / f"{name}.yaml"
    return next(yaml.safe_load_all(path.read_text()))


def tasks(doc: dict, component: str) -> dict:
    return doc["components"][component]["dag"]["tasks"]


@pytest.mark.parametrize("target", TARGETS)
def test_continuous_training_decides_on_a_monitoring_step_outside_any_condition(target):
    doc = spec("continuous_training", target)
    handler = tasks(doc, "comp-exit-handler-1")
    # beside the decision, not in a branch: its artifact always exists (no dsl.OneOf)
    assert "monitor-serving" in handler and "triggerPolicy" not in handler["monitor-serving"]
    monitoring = handler["retrain-decision"]["inputs"]["artifacts"]["monitoring"]
    assert monitoring["taskOutputArtifact"] == {"outputArtifactKey": "monitoring",
                                                "producerTask": "monitor-serving"}  # fmt: skip
    inputs = handler["monitor-serving"]["inputs"]
    assert inputs["parameters"]["logs"] == {
        "componentInputParameter": "pipelinechannel--serving_logs"
    }
    baselines = {k: v["taskOutputArtifact"] for k, v in inputs["artifacts"].items()}
    assert baselines == {
        "training_statistics": {"outputArtifactKey": "production_statistics",
                                "producerTask": "load-window-state"},
        "previous_statistics": {"outputArtifactKey": "previous_statistics",
                                "producerTask": "load-window-state"},
    }  # fmt: skip
    params = doc["root"]["inputDefinitions"]["parameters"]
    assert params["serving_logs"]["defaultValue"] == ""  # no served traffic by default


@pytest.mark.parametrize("target", TARGETS)
def test_monitoring_pipeline_monitors_decides_and_triggers(target):
    doc = spec("monitoring", target)
    handler = tasks(doc, "comp-exit-handler-1")
    assert set(handler) == {"resolve-model", "condition-2"}
    assert "resolve-model-found" in handler["condition-2"]["triggerPolicy"]["condition"]
    branch = tasks(doc, "comp-condition-2")
    assert set(branch) == {"importer", "monitor-serving", "retrain-decision", "trigger-pipeline"}
    monitor = branch["monitor-serving"]["inputs"]
    assert monitor["artifacts"]["training_statistics"]["taskOutputArtifact"]["producerTask"] == (
        "importer"
    )
    assert monitor["parameters"]["window_hours"] == {
        "componentInputParameter": "pipelinechannel--window_hours"
    }
    decision = branch["retrain-decision"]["inputs"]["artifacts"]
    assert set(decision) == {"monitoring"}  # no window state: served skew and decay decide
    enabled = branch["trigger-pipeline"]["inputs"]["parameters"]["enabled"]
    assert enabled == {"taskOutputParameter": {"outputParameterKey": "retrain",
                                               "producerTask": "retrain-decision"}}  # fmt: skip
    required = {n for n, p in doc["root"]["inputDefinitions"]["parameters"].items()
                if not p.get("isOptional")}  # fmt: skip
    assert required == {"serving_logs", "retrain_pipeline"}


@pytest.fixture()
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeflowTestServer]:
    monkeypatch.delenv("KF_PIPELINES_ENDPOINT", raising=False)
    monkeypatch.delenv(kubeflow.TOKEN_ENV, raising=False)
    with KubeflowTestServer() as s:
        yield s


def test_kfpkit_schedule_runs_the_monitoring_pipeline_hourly(server, capsys):
    compiled = str(ROOT / "compiled" / "kubeflow" / "monitoring.yaml")
    base = ["schedule", compiled, "--target", "kubeflow", "--host", server.url]
    params = ["--param", "serving_logs=gs://b/logs/employment",
              "--param", "retrain_pipeline=/gcs/b/compiled/continuous_training.yaml",
              "--param", "window_hours=1"]  # fmt: skip
    assert cli.main([*base, *params, "--cron", "@hourly", "--experiment", "monitoring"]) == 0
    (recurring,) = server.calls("POST", "/recurringruns")
    body = recurring.json()
    assert body["trigger"]["cron_schedule"]["cron"] == "0 0 * * * *"
    assert body["runtime_config"]["parameters"]["serving_logs"] == "gs://b/logs/employment"
    assert body["runtime_config"]["parameters"]["window_hours"] == 1.0

    # a schedule without the pipeline to trigger is refused before anything is created
    assert cli.main([*base, "--param", "serving_logs=gs://b/l", "--cron", "@hourly"]) != 0
    assert "retrain_pipeline" in capsys.readouterr().err
    assert len(server.calls("POST", "/recurringruns")) == 1
