"""What the model-registry client really sends to the Kubeflow Model Registry's REST API,
received on 127.0.0.1 (its real server is Go with a MySQL/PostgreSQL store)."""

from __future__ import annotations

import pytest

from kfpkit.registry import CHALLENGER, CHAMPION, open_registry
from kfpkit.testing.registry_servers import ModelRegistryServer

LINEAGE = {
    "pipeline_run": "kfpkit-training-1",
    "pipeline_run_id": "run-1",
    "statistics_uri": "gs://b/run-1/validate-data/train_statistics",
}
pytestmark = pytest.mark.filterwarnings("ignore:User access token is missing")


@pytest.fixture()
def server():
    with ModelRegistryServer() as s:
        yield s


def test_a_version_is_a_model_version_with_one_model_artifact(server):
    registry = open_registry("kubeflow", server_address=server.url)
    registry.register(
        "employment", "gs://b/serving/employment/1", LINEAGE, {"auc": 0.9}, [CHAMPION]
    )
    (model,) = [r.body for r in server.calls("POST", r"/registered_models$")]
    assert model["name"] == "employment"
    (version,) = [r.body for r in server.calls("POST", r"/model_versions$")]
    assert version["name"] == "1" and version["registeredModelId"] == "1"
    props = version["customProperties"]
    assert props["kfpkit.statistics_uri"] == {
        "metadataType": "MetadataStringValue",
        "string_value": LINEAGE["statistics_uri"],
    }
    assert props["kfpkit.metric.auc"] == {
        "metadataType": "MetadataDoubleValue",
        "double_value": 0.9,
    }
    (artifact,) = [r.body for r in server.calls("POST", r"/model_versions/\d+/artifacts$")]
    assert artifact["artifactType"] == "model-artifact"
    assert artifact["uri"] == "gs://b/serving/employment/1"
    assert (artifact["modelFormatName"], artifact["modelFormatVersion"]) == ("tensorflow", "2")


def test_aliases_are_one_update_of_the_registered_model(server):
    registry = open_registry("kubeflow", server_address=server.url)
    registry.register("employment", "gs://b/m/1", LINEAGE, {}, [CHAMPION])
    registry.register("employment", "gs://b/m/2", {"pipeline_run_id": "run-2"}, {}, [CHALLENGER])
    registry.set_alias("employment", CHAMPION, "2")
    patches = [r.body["customProperties"] for r in server.calls("PATCH", r"/registered_models/1$")]
    assert patches[-1] == {
        "kfpkit.alias.champion": {"metadataType": "MetadataStringValue", "string_value": "2"},
        "kfpkit.alias.challenger": {"metadataType": "MetadataStringValue", "string_value": "2"},
    }
    with pytest.raises(ValueError, match="no version '7'"):
        registry.set_alias("employment", CHAMPION, "7")


def test_a_version_number_taken_meanwhile_takes_the_next(server):
    registry = open_registry("kubeflow", server_address=server.url)
    registry.register("employment", "gs://b/m/1", LINEAGE, {}, [])
    # another writer creates version 2 after this registration listed the versions
    other = open_registry("kubeflow", server_address=server.url)
    original, listings = registry._versions, []

    def stale(name):
        listed = original(name)
        listings.append(len(listed))
        if len(listings) == 2:  # the listing the new number is taken from
            other.register("employment", "gs://b/other/2", {"pipeline_run_id": "x"}, {}, [])
        return listed

    registry._versions = stale
    version = registry.register("employment", "gs://b/m/3", {"pipeline_run_id": "y"}, {}, [])
    assert version.version == "3" and version.uri == "gs://b/m/3"
    assert listings[:3] == [1, 1, 2]  # version 2 was taken, then 3 was free
    # the client found version 2 before posting it ("already exists"): only the other's POST
    posted = [r.body["name"] for r in server.calls("POST", r"/model_versions$")]
    assert posted == ["1", "2", "3"]


def test_a_server_error_is_retried_without_a_duplicate(server):
    registry = open_registry("kubeflow", server_address=server.url)
    waits = []
    registry.sleep = waits.append
    server.fail(lambda r: r.method == "POST" and r.path.endswith("/model_versions"), code=503)
    version = registry.register("employment", "gs://b/m/1", LINEAGE, {}, [CHAMPION])
    assert version.version == "1" and len(waits) == 1
    assert len(server.objects["model_versions"]) == 1


@pytest.mark.parametrize("address", ["127.0.0.1:8080", "ftp://host", "http://a b"])
def test_the_server_address_is_checked(address):
    with pytest.raises(ValueError, match="server_address"):
        open_registry("kubeflow", server_address=address)


def test_an_unreachable_server_is_a_system_error():
    registry_class = __import__(
        "kfpkit.registry.kubeflow_backend", fromlist=["KubeflowRegistry"]
    ).KubeflowRegistry
    registry_class.sleep = staticmethod(lambda s: None)
    try:
        with pytest.raises(RuntimeError, match="127.0.0.1:9"):
            open_registry("kubeflow", server_address="http://127.0.0.1:9")
    finally:
        del registry_class.sleep
