"""What kfpkit's Vertex AI registry sends (v1 REST, kfpkit.vertex_api), received on 127.0.0.1:
the requests google-cloud-aiplatform's Model.upload sends (compared below), without the SDK."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from kfpkit.registry import CHALLENGER, CHAMPION, open_registry
from kfpkit.registry.vertex_backend import DEFAULT_SERVING_IMAGE, labels_for
from kfpkit.testing.registry_servers import VertexModelServer

MODELS = "/v1/projects/kfpkit-test/locations/us-central1/models"
LINEAGE = {
    "pipeline_run": "KFPKIT-Training 2026-12-01 20:32:13.815564 (a long, mixed-case run name!)",
    "pipeline_run_id": "6F1C2A9E-0000-4000-8000-123456789ABC",
    "train_data_uri": "gs://bucket/pipeline-root/run/bigquery-split/train",
    "train_data_table": "kfpkit-demo.demo_splits.employment_train",
}


@pytest.fixture()
def server():
    with VertexModelServer() as s:
        yield s


def vertex(server, **settings):
    return open_registry(
        "vertex", project="kfpkit-test", location="us-central1", api_endpoint=server.url, **settings
    )


def uploads(server):
    return [r.body for r in server.calls("POST", r"models:upload$")]


def test_first_upload_creates_the_model_then_versions_name_their_parent(server):
    registry = vertex(server)
    registry.register(
        "employment", "gs://b/serving/employment/1", LINEAGE, {"auc": 0.9}, [CHAMPION]
    )
    registry.register(
        "employment",
        "gs://b/serving/employment/2",
        {**LINEAGE, "pipeline_run_id": "run-2"},
        {"auc": 0.91},
        [CHAMPION],
    )
    first, second = uploads(server)
    assert first["modelId"] == "employment" and "parentModel" not in first
    assert second["parentModel"] == "projects/kfpkit-test/locations/us-central1/models/employment"
    assert "modelId" not in second
    for body, uri in (
        (first, "gs://b/serving/employment/1"),
        (second, "gs://b/serving/employment/2"),
    ):
        model = body["model"]
        assert model["displayName"] == "employment"
        assert model["artifactUri"] == uri
        assert model["containerSpec"]["imageUri"] == DEFAULT_SERVING_IMAGE
        # blessed: champion, and the default version (what a deployment without a version gets)
        assert sorted(model["versionAliases"]) == ["champion", "default"]
    # the upload is a long-running operation: the SDK polled it before reading the version
    assert server.calls("GET", r"/operations/1$") and server.calls("GET", r"/operations/2$")
    assert [v["versionAliases"] for v in server.models["employment"]] == [
        [],
        ["champion", "default"],
    ]


def test_labels_point_back_to_the_run_and_data_within_vertex_rules(server):
    vertex(server).register("employment", "gs://b/m/1", LINEAGE, {}, [CHAMPION])
    labels = uploads(server)[0]["model"]["labels"]
    assert labels == labels_for(
        {**LINEAGE, "registration_key": labels["kfpkit-key"], "blessed": ""}
    )
    assert labels["kfpkit-run-id"] == "6f1c2a9e-0000-4000-8000-123456789abc"
    assert labels["kfpkit-train-table"] == "kfpkit-demo-demo_splits-employment_train"
    run = labels["kfpkit-run"]  # lowercased, cut to 63 with a hash of the whole name
    assert len(run) == 63 and run.startswith("kfpkit-training-2026-12-01-20-32-13-815564-")
    assert all(len(k) <= 63 and len(v) <= 63 for k, v in labels.items())


def test_full_lineage_and_metrics_travel_in_the_version_description(server):
    vertex(server).register("employment", "gs://b/m/1", LINEAGE, {"auc": 0.9}, [CHAMPION])
    doc = json.loads(uploads(server)[0]["model"]["versionDescription"])["kfpkit"]
    assert doc["metrics"] == {"auc": 0.9}
    assert doc["lineage"]["pipeline_run"] == LINEAGE["pipeline_run"]  # unsanitised here
    assert doc["lineage"]["train_data_uri"] == LINEAGE["train_data_uri"]


def test_a_challenger_is_not_the_default_and_aliases_merge_on_the_service(server):
    registry = vertex(
        server, serving_image="europe-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"
    )
    registry.register("employment", "gs://b/m/1", LINEAGE, {}, [CHAMPION])
    registry.register("employment", "gs://b/m/2", {"pipeline_run_id": "r2"}, {}, [CHALLENGER])
    second = uploads(server)[1]["model"]
    assert second["versionAliases"] == ["challenger"]
    assert second["containerSpec"]["imageUri"].startswith("europe-docker.pkg.dev/")
    registry.set_alias("employment", CHAMPION, "2")
    merge = server.calls("POST", r"models/employment@2:mergeVersionAliases$")
    assert [r.body for r in merge] == [{"versionAliases": ["champion"]}]
    assert registry.get_by_alias("employment", CHAMPION).uri == "gs://b/m/2"
    assert server.calls("GET", r"models/employment@champion$")


def test_an_unavailable_service_is_retried_without_a_duplicate(server):
    registry = vertex(server)
    waits = []
    registry.sleep = waits.append
    server.fail(lambda r: r.path.endswith("models:upload"), code=503, times=2)
    version = registry.register("employment", "gs://b/m/1", LINEAGE, {}, [CHAMPION])
    assert version.version == "1" and len(server.models["employment"]) == 1
    assert len(server.calls("POST", r"models:upload$")) == 3
    assert len(waits) == 2 and all(0 <= w <= 2 for w in waits)


def test_retries_stop_after_a_bounded_number_of_waits(server):
    registry = vertex(server)
    waits = []
    registry.sleep = waits.append
    server.fail(lambda r: r.path.endswith("models:upload"), code=503, times=100)
    with pytest.raises(RuntimeError, match="uploading"):
        registry.register("employment", "gs://b/m/1", LINEAGE, {}, [CHAMPION])
    assert len(waits) == 4 and sum(waits) <= 15  # 5 attempts, waits of at most 1, 2, 4, 8 s
    assert "employment" not in server.models


@pytest.mark.parametrize("code, error", [(400, ValueError), (403, RuntimeError)])
def test_refusals_are_not_retried(server, code, error):
    registry = vertex(server)
    registry.sleep = lambda s: pytest.fail("retried a refusal")
    server.fail(lambda r: r.path.endswith("models:upload"), code=code)
    with pytest.raises(error):
        registry.register("employment", "gs://b/m/1", LINEAGE, {}, [CHAMPION])


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"name": "Employment"}, "'Employment'"),
        ({"name": "1model"}, "'1model'"),
        ({"project": "My Project"}, "'My Project'"),
        ({"location": "us central"}, "'us central'"),
        ({"serving_image": "not an image"}, "'not an image'"),
        ({"api_endpoint": "http://x/../y"}, "'http://x/../y'"),
        ({"uri": "/local/serving/1"}, "gs:// only"),
    ],
)
def test_identifiers_are_checked_before_any_request(server, settings, message):
    name = settings.pop("name", "employment")
    uri = settings.pop("uri", "gs://b/m")
    args = {"project": "kfpkit-test", "location": "us-central1", "api_endpoint": server.url}
    with pytest.raises(ValueError, match=message):
        open_registry("vertex", **{**args, **settings}).register(name, uri, {}, {})
    assert server.calls("POST", "upload") == []


def test_the_upload_is_the_request_google_cloud_aiplatform_sends(server):
    """The SDK (in the host's environment) uploading the same version is the reference."""
    aiplatform = pytest.importorskip("google.cloud.aiplatform")
    from google.auth.credentials import AnonymousCredentials

    registry = vertex(server)
    registry.register("employment", "gs://b/m/1", LINEAGE, {"auc": 0.9}, [CHAMPION])
    registry.register("employment", "gs://b/m/2", LINEAGE | {"pipeline_run_id": "r2"}, {},
                      [CHALLENGER])  # fmt: skip
    registry.set_alias("employment", CHAMPION, "2")
    ours = [(r.path, r.body) for r in server.requests if r.method == "POST"]

    saved = dict(vars(aiplatform.initializer.global_config))  # aiplatform.init is process-wide
    try:
        with VertexModelServer() as reference:
            aiplatform.init(project="kfpkit-test", location="us-central1",
                            api_endpoint=reference.url, api_transport="rest",
                            credentials=AnonymousCredentials())  # fmt: skip
            for (_, body), first in zip(ours[:2], (True, False), strict=True):
                model = body["model"]
                aliases = [a for a in model["versionAliases"] if a != "default"]
                aiplatform.Model.upload(
                    display_name=model["displayName"],
                    model_id="employment" if first else None,
                    parent_model=None if first else body["parentModel"],
                    is_default_version="default" in model["versionAliases"],
                    version_aliases=aliases,
                    version_description=model["versionDescription"],
                    artifact_uri=model["artifactUri"],
                    serving_container_image_uri=model["containerSpec"]["imageUri"],
                    labels=model["labels"],
                    sync=True,
                )
            aiplatform.models.ModelRegistry("employment").add_version_aliases([CHAMPION], "2")
            theirs = [(r.path, r.body) for r in reference.requests if r.method == "POST"]
    finally:
        vars(aiplatform.initializer.global_config).clear()
        vars(aiplatform.initializer.global_config).update(saved)
    assert ours == theirs


def test_the_registry_needs_no_aiplatform(server):
    """The images ship no google-cloud-aiplatform: register and resolve with it unimportable."""
    script = textwrap.dedent(f"""
        import sys
        sys.modules["google.cloud.aiplatform"] = None  # import fails, as in the images
        sys.modules["vertexai"] = None
        from kfpkit.registry import CHAMPION, open_registry
        registry = open_registry("vertex", project="kfpkit-test", location="us-central1",
                                 api_endpoint="{server.url}")
        registry.register("employment", "gs://b/m/1", {{}}, {{"auc": 0.9}}, [CHAMPION])
        print(registry.get_by_alias("employment", CHAMPION).uri)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "gs://b/m/1"
