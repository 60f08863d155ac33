"""trigger_pipeline's launcher against the Kubeflow Pipelines and Vertex AI stand-ins that
the submit tests use: the real HTTP requests (plain urllib for Kubeflow, the Vertex AI SDK
over REST), a restarted step finding its run, a disabled step starting nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kfpkit.components.trigger_pipeline.launcher import run
from kfpkit.components.trigger_pipeline.trigger import run_name
from kfpkit.runtime.executor import EXIT_USER_ERROR, launch
from kfpkit.testing.launcher_input import executor_input
from kfpkit.testing.pipeline_servers import KubeflowTestServer, Request, VertexTestServer

ROOT = Path(__file__).resolve().parents[3]
TRAINING = ROOT / "compiled" / "training.yaml"
PARAMS = {
    "project": "p",
    "source_table": "p.d.t",
    "destination_dataset": "d",
    "serving_model_uri": "gs://b/models/employment",
    "tuning_trials": 0,
}
ALERT = dict(target="kubeflow", parameters=PARAMS, experiment="retraining",
             reason="served skew: ANC")  # fmt: skip
OUTPUTS = {"triggered_run": "system.Artifact"}


def start(out: Path, **params) -> tuple[int, dict]:
    """One attempt of the step, as KFP runs it; its code and executor output."""
    doc = executor_input(out, {"pipeline_spec_uri": str(TRAINING), **params}, OUTPUTS,
                         output_params=["triggered", "run_id"])  # fmt: skip
    code = launch(run, ["--executor_input", json.dumps(doc)])
    output = out / "executor_output.json"
    return code, json.loads(output.read_text()) if output.exists() else {}


@pytest.fixture()
def kfp(monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeflowTestServer]:
    monkeypatch.delenv("KF_PIPELINES_ENDPOINT", raising=False)
    monkeypatch.setenv("KF_PIPELINES_TOKEN", "step-token")
    with KubeflowTestServer() as s:
        yield s


def _creates(server) -> list[Request]:
    return [r for r in server.requests if r.method == "POST"]


def test_kubeflow_run_from_the_inline_spec_then_found_again_on_restart(kfp, tmp_path):
    code, output = start(tmp_path / "attempt", **ALERT, host=kfp.url)
    assert code == 0
    (experiment,) = kfp.calls("POST", "/experiments")
    assert experiment.json() == {"display_name": "retraining"}
    (created,) = kfp.calls("POST", "/apis/v2beta1/runs")
    body = created.json()
    assert body["pipeline_spec"] == yaml.safe_load(TRAINING.read_text())  # inline, no upload
    assert body["runtime_config"] == {"parameters": PARAMS}
    assert body["experiment_id"] == next(iter(kfp.experiments))
    assert body["description"] == "served skew: ANC"
    assert body["display_name"].startswith("kfpkit-training-")
    assert all(r.headers["authorization"] == "Bearer step-token" for r in kfp.requests)
    assert kfp.calls("POST", "/pipelines") == []
    values = output["parameterValues"]
    assert values["triggered"] is True and values["run_id"] in kfp.runs
    meta = output["artifacts"]["triggered_run"]["artifacts"][0]["metadata"]
    assert meta["created"] is True and meta["run_name"] == body["display_name"]
    assert json.loads((tmp_path / "attempt" / "triggered_run" / "run.json").read_text()) == {
        k: meta[k] for k in meta if k != "file"
    }

    # the same step restarted (same inputs and output URIs): its run is found, not doubled
    code, again = start(tmp_path / "attempt", **ALERT, host=kfp.url)
    assert code == 0
    assert len(kfp.calls("POST", "/apis/v2beta1/runs")) == 1
    assert len(kfp.calls("POST", "/experiments")) == 1
    assert again["parameterValues"]["run_id"] == values["run_id"]
    assert again["artifacts"]["triggered_run"]["artifacts"][0]["metadata"]["created"] is False

    # another calling run (other output URIs): a run of its own
    code, other = start(tmp_path / "next-run", target="kubeflow", host=kfp.url,
                        parameters=PARAMS, experiment="retraining")  # fmt: skip
    assert code == 0
    assert len(kfp.calls("POST", "/apis/v2beta1/runs")) == 2
    assert other["parameterValues"]["run_id"] != values["run_id"]


def test_parameters_as_json_text_and_a_run_name_prefix(kfp, tmp_path):
    code, output = start(tmp_path, host=kfp.url, parameters=json.dumps(PARAMS),
                         run_name="retrain-on-alert", pipeline_root="gs://b/root",
                         service_account="pipeline-runner")  # fmt: skip
    assert code == 0
    body = kfp.calls("POST", "/apis/v2beta1/runs")[0].json()
    assert body["display_name"].startswith("retrain-on-alert-")
    assert len(body["display_name"]) == len("retrain-on-alert-") + 12
    assert body["runtime_config"]["pipeline_root"] == "gs://b/root"
    assert body["service_account"] == "pipeline-runner"
    assert "experiment_id" not in body  # KFP's default experiment


def test_disabled_starts_nothing_and_says_why(kfp, tmp_path):
    code, output = start(tmp_path, host=kfp.url, parameters=PARAMS, enabled=False,
                         reason="no feature drifted beyond its threshold")  # fmt: skip
    assert code == 0
    assert kfp.requests == []
    assert output["parameterValues"] == {"triggered": False, "run_id": ""}
    meta = output["artifacts"]["triggered_run"]["artifacts"][0]["metadata"]
    assert meta["reason"] == "no feature drifted beyond its threshold"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"parameters": {**PARAMS, "tuning_trails": 3}}, "no parameter 'tuning_trails'"),
        ({"parameters": {**PARAMS, "tuning_trials": "three"}}, "tuning_trials"),
        ({"parameters": {"project": "p"}}, "needs a value for"),
        ({"parameters": PARAMS, "target": "airflow"}, "target must be one of"),
        ({"parameters": PARAMS, "run_name": "Retrain Now"}, "run_name 'Retrain Now'"),
        ({"parameters": PARAMS, "target": "vertex", "project": "x"}, "gs:// pipeline_root"),
        ({"parameters": PARAMS, "pipeline_spec_uri": "/nowhere.yaml"}, "does not exist"),
    ],
)
def test_bad_input_exits_2_before_any_request(kfp, tmp_path, caplog, params, message):
    code, output = start(tmp_path, host=kfp.url, **params)
    assert code == EXIT_USER_ERROR
    assert message in caplog.text
    assert kfp.requests == [] and output == {}


class FlakyKubeflow(KubeflowTestServer):
    """Answers the first run creation with 503, as an API server restarting does."""

    def answer(self, request):
        first = not getattr(self, "failed", False)
        if request.method == "POST" and request.path.endswith("/runs") and first:
            self.failed = True
            return 503, {"error": "unavailable"}
        return super().answer(request)


def test_a_503_is_retried(monkeypatch, tmp_path):
    monkeypatch.delenv("KF_PIPELINES_TOKEN", raising=False)
    with FlakyKubeflow() as server:
        code, output = start(tmp_path, host=server.url, parameters=PARAMS)
        assert code == 0
        assert len(server.calls("POST", "/runs")) == 2
        assert len(server.runs) == 1


def test_a_rejected_token_is_a_system_error_naming_the_host(tmp_path, caplog):
    class Refusing(KubeflowTestServer):
        def answer(self, request):
            return 401, {"error": "unauthenticated"}

    with Refusing() as server:
        code, output = start(tmp_path, host=server.url, parameters=PARAMS)
    assert code == 1 and output == {}
    assert "HTTP 401" in caplog.text and "check the token" in caplog.text
    assert server.url in caplog.text


def test_run_names_are_stable_per_identity_and_name_safe():
    assert run_name("", "kfpkit-training", {"a": 1}) == run_name("", "kfpkit-training", {"a": 1})
    assert run_name("", "kfpkit-training", {"a": 1}) != run_name("", "kfpkit-training", {"a": 2})
    assert run_name("", "My Pipeline_v2", 1).startswith("my-pipeline-v2-")
    assert run_name("", "2024 retrain", 1).startswith("run-2024-retrain-")


class Vertex(VertexTestServer):
    """Answers a GET of an unknown pipeline job as Vertex AI does (a google.rpc error)."""

    def answer(self, request):
        status, body = super().answer(request)
        if status == 404 and "/pipelineJobs/" in request.path:
            body = {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}
        return status, body


@pytest.fixture()
def vertex_server() -> Iterator[VertexTestServer]:
    with Vertex() as s:  # an http:// endpoint: anonymous credentials
        yield s


def test_vertex_job_with_a_deterministic_id_then_found_again_on_restart(vertex_server, tmp_path):
    params = dict(target="vertex", project="proj", location="europe-west4",
                  api_endpoint=vertex_server.url, pipeline_root="gs://bucket/root",
                  parameters=PARAMS, run_name="retrain")  # fmt: skip
    code, output = start(tmp_path, **params)
    assert code == 0
    (created,) = vertex_server.calls("POST", "/pipelineJobs")
    job_id = created.query["pipelineJobId"]
    assert job_id.startswith("retrain-") and len(job_id) == len("retrain-") + 12
    assert created.path == "/v1/projects/proj/locations/europe-west4/pipelineJobs"
    body = created.json()
    assert body["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/root"
    assert body["runtimeConfig"]["parameterValues"]["tuning_trials"] == 0
    resource = output["parameterValues"]["run_id"]
    assert resource == f"projects/proj/locations/europe-west4/pipelineJobs/{job_id}"

    code, again = start(tmp_path, **params)
    assert code == 0
    assert len(vertex_server.calls("POST", "/pipelineJobs")) == 1
    assert again["parameterValues"]["run_id"] == resource
    assert again["artifacts"]["triggered_run"]["artifacts"][0]["metadata"]["created"] is False


def test_the_vertex_job_is_the_one_kfpkit_submit_sends_through_the_sdk(vertex_server, tmp_path):
    """The step speaks Vertex AI's REST API itself (its image has no google-cloud-aiplatform);
    the request ``kfpkit submit`` sends through the SDK for the same file is the reference."""
    aiplatform = pytest.importorskip("google.cloud.aiplatform")
    from google.auth.credentials import AnonymousCredentials

    from kfpkit.submit import vertex as sdk

    compiled = ROOT / "compiled" / "vertex" / "training.yaml"
    account = "runner@proj.iam.gserviceaccount.com"
    code, output = start(tmp_path, pipeline_spec_uri=str(compiled), target="vertex",
                         project="proj", location="europe-west4", api_endpoint=vertex_server.url,
                         pipeline_root="gs://bucket/root", parameters=PARAMS,
                         service_account=account)  # fmt: skip
    assert code == 0
    (ours,) = vertex_server.calls("POST", "/pipelineJobs")
    job_id = ours.query["pipelineJobId"]

    saved = dict(vars(aiplatform.initializer.global_config))  # aiplatform.init is process-wide
    try:
        with Vertex() as reference:
            where = sdk.Vertex(project="proj", location="europe-west4", api_endpoint=reference.url,
                               credentials=AnonymousCredentials())  # fmt: skip
            sdk.submit(compiled, where, pipeline_root="gs://bucket/root", params=PARAMS,
                       display_name=job_id, job_id=job_id, service_account=account)  # fmt: skip
            (theirs,) = reference.calls("POST", "/pipelineJobs")
    finally:
        vars(aiplatform.initializer.global_config).clear()
        vars(aiplatform.initializer.global_config).update(saved)
    assert (ours.path, ours.query["pipelineJobId"]) == (theirs.path, theirs.query["pipelineJobId"])
    assert ours.json() == theirs.json()  # numbers compare by value: the SDK sends 0 as 0.0
    assert ours.json()["serviceAccount"] == account


def test_a_file_compiled_for_kubeflow_is_refused_for_vertex(vertex_server, tmp_path):
    kubeflow = ROOT / "compiled" / "kubeflow" / "training.yaml"
    code, _ = start(tmp_path, pipeline_spec_uri=str(kubeflow), target="vertex",
                    project="proj", api_endpoint=vertex_server.url,
                    pipeline_root="gs://bucket/root", parameters=PARAMS)  # fmt: skip
    assert code == EXIT_USER_ERROR
    assert vertex_server.calls("POST", "/pipelineJobs") == []
