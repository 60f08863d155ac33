"""register_model with evaluate's ``explanation``: the Vertex AI upload carries the
explanationSpec built from it (Vertex's REST requests answered on 127.0.0.1)."""

from __future__ import annotations

import json

import pytest

from kfpkit import testing
from kfpkit.components.register_model import launcher
from kfpkit.explain.vertex import explanation_spec
from kfpkit.runtime import executor
from kfpkit.testing.explanations import SUMMARY
from kfpkit.testing.registry_servers import VertexModelServer


@pytest.fixture()
def server():
    with VertexModelServer() as s:
        yield s


def run_launcher(tmp_path, server, summary) -> int:
    model = tmp_path / "model"
    (model / "1" / "variables").mkdir(parents=True)
    (model / "1" / "saved_model.pb").write_bytes(b"graph")
    explanation = tmp_path / "evaluate" / "explanation"
    explanation.mkdir(parents=True)
    (explanation / "explanation.json").write_text(json.dumps(summary))
    params = {"model_name": "employment", "blessed": True, "backend": "vertex",
              "project": "kfpkit-test", "location": "us-central1", "api_endpoint": server.url,
              "pipeline_run": "run", "pipeline_run_id": "run-1"}  # fmt: skip
    doc = testing.executor_input(
        tmp_path / "out",
        params,
        {"registered_model": "system.Artifact"},
        inputs={
            "model": ("system.Model", str(model)),
            "metrics": ("system.Metrics", str(tmp_path / "evaluate" / "metrics")),
            "explanation": ("system.Artifact", str(explanation)),
        },
        output_params=["registered_version"],
        input_metadata={"metrics": {"auc": 0.9},
                        "model": {"published_uri": "gs://bucket/serving/employment/1"}},
    )  # fmt: skip
    return executor.launch(launcher.run, ["--executor_input", json.dumps(doc)])


def test_register_model_uploads_evaluates_explanation(tmp_path, server):
    assert run_launcher(tmp_path, server, SUMMARY) == 0
    (upload,) = server.calls("POST", r"models:upload$")
    assert upload.body["model"]["explanationSpec"] == explanation_spec(SUMMARY)


def test_an_evaluation_without_attributions_uploads_no_spec(tmp_path, server):
    assert run_launcher(tmp_path, server, {"rows": 0}) == 0
    (upload,) = server.calls("POST", r"models:upload$")
    assert "explanationSpec" not in upload.body["model"]
