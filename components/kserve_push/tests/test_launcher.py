"""The kserve_push launcher end to end: infra validation on KServe's model server, then the
local backend's outputs, a model that fails (never deployed, no outputs), and the kserve
backend against the real kube-apiserver."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kfpkit.components.kserve_push import isvc, launcher
from kfpkit.testing import executor_input, kserve_crd

OUTPUTS = {"deployment": "system.Artifact", "infra_validation": "system.Metrics",
           "summary": "system.Markdown"}  # fmt: skip


def _input(tmp_path: Path, params: dict, model: Path | None, test: Path | None,
           model_metadata: dict | None = None) -> str:  # fmt: skip
    inputs = {}
    if model is not None:
        inputs["model"] = ("system.Model", str(model))
    if test is not None:
        inputs["test_data"] = ("system.Dataset", str(test))
    doc = executor_input(tmp_path / "out", params, OUTPUTS, inputs, output_params=["endpoint_url"],
                         input_metadata={"model": model_metadata or {}})  # fmt: skip
    return json.dumps(doc)


def test_local_backend_validates_on_kserve_and_records_latency_and_how_to_serve(
    tmp_path, model_dir, splits
):
    doc = _input(tmp_path, {"model_name": "employment", "infra_validation_rows": 40}, model_dir,
                 splits["test"])  # fmt: skip
    assert launcher.main.__module__  # the launcher is importable by its dotted path
    from kfpkit.runtime.executor import launch

    assert launch(launcher.run, ["--executor_input", doc]) == 0
    out = json.loads((tmp_path / "out" / "executor_output.json").read_text())
    metrics = out["artifacts"]["infra_validation"]["artifacts"][0]["metadata"]
    assert metrics["infra_validation_passed"] == 1.0 and metrics["infra_validation_rows"] == 40
    for protocol in ("v1", "v2"):
        assert 0 < metrics[f"{protocol}_latency_p50_ms"] <= metrics[f"{protocol}_latency_p99_ms"]
        assert metrics[f"{protocol}_max_abs_difference"] <= 1e-5
    assert metrics["server_start_seconds"] > 0
    deployment = out["artifacts"]["deployment"]["artifacts"][0]["metadata"]
    assert deployment["endpoint_url"] == "http://127.0.0.1:8080/v1/models/employment:predict"
    assert deployment["serve_command"].startswith(f"kfpkit serve {model_dir}")
    assert json.loads(deployment["traffic"]) == [{"revision": "1", "percent": 100}]
    assert (tmp_path / "out" / "endpoint_url").read_text() == deployment["endpoint_url"]
    summary = (tmp_path / "out" / "summary").read_text()
    assert "**passed** on 40 test rows" in summary and "| v2 |" in summary


def test_a_published_model_is_served_from_its_serving_directory(tmp_path, model_dir, splits):
    from kfpkit.runtime.executor import launch

    artifact = tmp_path / "published_model"  # publish_model's output holds no files itself
    artifact.mkdir()
    doc = _input(tmp_path, {"model_name": "employment", "infra_validation_rows": 5}, artifact,
                 splits["test"], {"published_uri": str(model_dir / "1"), "version": 1})  # fmt: skip
    assert launch(launcher.run, ["--executor_input", doc]) == 0
    out = json.loads((tmp_path / "out" / "executor_output.json").read_text())
    deployment = out["artifacts"]["deployment"]["artifacts"][0]["metadata"]
    assert deployment["serve_command"].startswith(f"kfpkit serve {model_dir} ")


def test_a_model_that_fails_is_never_deployed_and_the_step_says_why(
    tmp_path, candidate_dir, splits, caplog
):
    # the candidate's graph refuses people aged 90+: put one among the rows sent
    table = pq.read_table(splits["test"])
    ages = table["AGEP"].to_pylist()
    old = next(i for i, age in enumerate(ages) if age >= 90)
    rows = pq.read_table(splits["test"]).take([0, 1, old, 2])
    test = tmp_path / "test"
    test.mkdir()
    pq.write_table(rows, test / "data-000000000000.parquet")
    doc = _input(tmp_path, {"model_name": "candidate"}, candidate_dir, test)
    from kfpkit.runtime.executor import launch

    assert launch(launcher.run, ["--executor_input", doc]) == 1
    assert "failed infra validation and was not deployed" in caplog.text
    assert "age out of range" in caplog.text
    assert not (tmp_path / "out" / "executor_output.json").exists()
    assert not (tmp_path / "out" / "summary").exists()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"model_name": "employment", "action": "canary"}, "needs backend 'kserve'"),
        ({"model_name": "Employment"}, "model name 'Employment'"),
        ({"model_name": "employment", "backend": "cloud"}, "backend 'cloud'"),
        ({"model_name": "employment", "gpu": 1.5}, "gpu must be a whole number"),
    ],
)
def test_bad_inputs_exit_2_naming_the_value(tmp_path, model_dir, splits, params, message, caplog):
    from kfpkit.runtime.executor import launch

    doc = _input(tmp_path, params, model_dir, splits["test"])
    assert launch(launcher.run, ["--executor_input", doc]) == 2
    assert message in caplog.text


def test_missing_test_data_is_refused_before_anything_starts(tmp_path, model_dir, caplog):
    from kfpkit.runtime.executor import launch

    doc = _input(tmp_path, {"model_name": "employment"}, model_dir, None)
    assert launch(launcher.run, ["--executor_input", doc]) == 2
    assert "needs test_data" in caplog.text


def test_kserve_backend_validates_then_applies_and_waits_for_ready(
    tmp_path, kube_server, model_dir, splits
):
    kube_server.install_crd(kserve_crd.inference_service_crd())
    kube_server.install_crd(kserve_crd.virtual_service_crd())
    kube_server.create_namespace("pipelines")
    kubeconfig = kube_server.write_kubeconfig(tmp_path / "kubeconfig")
    from kfpkit.jobs import kube

    services = kube.CustomObjects(kube_server.api_client(), isvc.GROUP, isvc.VERSION,
                                  isvc.PLURAL, isvc.KIND)  # fmt: skip
    stop = threading.Event()

    def controller() -> None:  # plays KServe: Ready for whatever generation it finds
        while not stop.is_set():
            obj = services.find("pipelines", "employment")
            if (
                obj is not None
                and (obj.get("status") or {}).get("observedGeneration")
                != obj["metadata"]["generation"]
            ):
                revision = "employment-predictor-00001"
                predictor = {
                    "latestReadyRevision": revision,
                    "traffic": [{"revisionName": revision, "percent": 100}],
                }
                status = {"observedGeneration": obj["metadata"]["generation"],
                          "url": "http://employment.pipelines.example.com",
                          "conditions": [{"type": "Ready", "status": "True"}],
                          "components": {"predictor": predictor}}  # fmt: skip
                services.api.patch_namespaced_custom_object_status(
                    isvc.GROUP, isvc.VERSION, "pipelines", isvc.PLURAL, "employment",
                    {"status": status},
                )  # fmt: skip
            time.sleep(0.1)

    thread = threading.Thread(target=controller, daemon=True)
    thread.start()
    params = {"model_name": "employment", "backend": "kserve", "namespace": "pipelines",
              "storage_uri": "gs://bucket/serving/employment", "infra_validation_rows": 10,
              "kubeconfig": str(kubeconfig), "timeout_seconds": 30}  # fmt: skip
    from kfpkit.runtime.executor import launch

    try:
        code = launch(launcher.run, ["--executor_input", _input(tmp_path, params, model_dir,
                                                                 splits["test"])])  # fmt: skip
    finally:
        stop.set()
        thread.join(5)
    assert code == 0
    out = json.loads((tmp_path / "out" / "executor_output.json").read_text())
    deployment = out["artifacts"]["deployment"]["artifacts"][0]["metadata"]
    assert deployment["endpoint_url"] == "http://employment.pipelines.example.com"
    assert deployment["revision"] == "employment-predictor-00001"
    stored = services.get("pipelines", "employment")
    assert stored["spec"]["predictor"]["model"]["storageUri"] == "gs://bucket/serving/employment"
    assert stored["metadata"]["labels"][kube.OWNER_LABEL]  # created by this step
