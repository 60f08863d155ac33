"""The Vertex AI paths inside the built core image, which ships no google-cloud-aiplatform:
the registry's upload and alias lookup, and trigger_pipeline's launcher starting a pipeline
job, each against the Vertex AI stand-ins on 127.0.0.1 (host network).

Needs a running Docker engine and the core image (`python images/build.py core`).
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from kfpkit import images
from kfpkit.testing.launcher_input import executor_input
from kfpkit.testing.pipeline_servers import VertexTestServer
from kfpkit.testing.registry_servers import VertexModelServer

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def image() -> str:
    ref = images.image("core")
    probe = subprocess.run(["docker", "image", "inspect", ref], capture_output=True)
    assert probe.returncode == 0, f"{ref} not built: run `python images/build.py core`"
    return ref


def in_image(image: str, *command: str, mount: Path | None = None) -> subprocess.CompletedProcess:
    volume = ["-v", f"{mount}:{mount}", "-u", f"{os.getuid()}:{os.getgid()}"] if mount else []
    return subprocess.run(["docker", "run", "--rm", "--network", "host", *volume, image,
                           *command], capture_output=True, text=True, timeout=120)  # fmt: skip


def test_the_image_has_no_aiplatform(image):
    done = in_image(image, "python3", "-c", "import google.cloud.aiplatform")
    assert done.returncode == 1 and "No module named 'google.cloud.aiplatform'" in done.stderr


def test_the_vertex_registry_in_the_image(image):
    with VertexModelServer() as server:
        code = textwrap.dedent(f"""
            from kfpkit.registry import CHAMPION, open_registry
            registry = open_registry("vertex", project="kfpkit-test", location="us-central1",
                                     api_endpoint="{server.url}")
            lineage = {{"pipeline_run_id": "r1"}}
            registry.register("employment", "gs://b/serving/1", lineage, {{"auc": 0.9}}, [CHAMPION])
            print(registry.get_by_alias("employment", CHAMPION).resource_name)
        """)  # fmt: skip
        done = in_image(image, "python3", "-c", code)
        assert done.returncode == 0, done.stderr
        (upload,) = server.calls("POST", r"models:upload$")
    assert done.stdout.strip() == "projects/kfpkit-test/locations/us-central1/models/employment@1"
    assert upload.body["model"]["artifactUri"] == "gs://b/serving/1"
    assert upload.body["model"]["versionAliases"] == ["champion", "default"]


def test_trigger_pipeline_starts_a_vertex_job_from_the_image(image, tmp_path):
    compiled = tmp_path / "training.yaml"
    compiled.write_bytes((ROOT / "compiled" / "vertex" / "training.yaml").read_bytes())
    parameters = {"project": "p", "source_table": "p.d.t", "destination_dataset": "d",
                  "serving_model_uri": "gs://b/models/employment", "tuning_trials": 0}  # fmt: skip
    with VertexTestServer() as server:
        doc = executor_input(
            tmp_path / "out",
            {"pipeline_spec_uri": str(compiled), "target": "vertex", "project": "proj",
             "location": "europe-west4", "api_endpoint": server.url,
             "pipeline_root": "gs://bucket/root", "parameters": parameters},
            {"triggered_run": "system.Artifact"},
            output_params=["triggered", "run_id"],
        )  # fmt: skip
        launcher = "kfpkit.components.trigger_pipeline.launcher"
        done = in_image(image, "python3", "-m", launcher, "--executor_input", json.dumps(doc),
                        mount=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
        (created,) = server.calls("POST", "/pipelineJobs")
    job = created.json()
    assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/root"
    assert job["pipelineSpec"]["pipelineInfo"]["name"] == "kfpkit-training"
    job_id = created.query["pipelineJobId"]
    run_id = (tmp_path / "out" / "run_id").read_text()
    assert run_id == f"projects/proj/locations/europe-west4/pipelineJobs/{job_id}"
