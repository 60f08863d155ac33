"""The InferenceService and VirtualService bodies of every action, both rollout paths: they
round-trip through the kserve SDK's models and carry exactly the fields each action needs."""

from __future__ import annotations

import copy
import json

import pytest

from kfpkit.components.kserve_push import isvc

OLD, NEW = "gs://models/employment/1", "gs://models/employment/2"


def settings(mode: str = isvc.SERVERLESS, uri: str = NEW, **kw) -> isvc.ServingSettings:
    return isvc.ServingSettings("employment", "serving", uri, deployment_mode=mode, **kw).check()


def deployed(mode: str = isvc.SERVERLESS) -> dict:
    """The object as the API server returns it after a first apply of OLD."""
    body = isvc.desired("apply", settings(mode, OLD), None)
    body["metadata"].update(resourceVersion="7", generation=1, uid="u")
    body["status"] = {"observedGeneration": 1}
    return body


def round_trips(body: dict) -> None:
    assert isvc.to_dict(isvc.from_dict(body)) == body


def predictor(body: dict) -> dict:
    return body["spec"]["predictor"]


def test_apply_builds_a_tensorflow_predictor_with_resources_scaling_logger():
    s = settings(cpu="2", memory="4Gi", gpu=1, min_replicas=0, max_replicas=3, scale_target=5,
                 scale_metric="concurrency", service_account="kserve-sa",
                 logger_url="http://logger.default/", logger_mode="request")  # fmt: skip
    body = isvc.desired("apply", s, None)
    round_trips(body)
    p = predictor(body)
    assert p["model"] == {
        "name": "kserve-container",
        "modelFormat": {"name": "tensorflow"},
        "storageUri": NEW,
        "resources": {
            "requests": {"cpu": "2", "memory": "4Gi"},
            "limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"},
        },
    }
    assert (p["minReplicas"], p["maxReplicas"], p["scaleTarget"], p["scaleMetric"]) == (
        0, 3, 5, "concurrency")  # fmt: skip
    assert p["serviceAccountName"] == "kserve-sa"
    assert p["logger"] == {"url": "http://logger.default/", "mode": "request"}
    assert "canaryTrafficPercent" not in p and "canary" not in body["spec"]
    assert body["metadata"]["annotations"] == {isvc.DEPLOYMENT_MODE_ANNOTATION: "Serverless"}
    assert body["metadata"]["labels"] == {isvc.MANAGED_BY_LABEL: "kfpkit"}


def test_serverless_canary_promote_rollback():
    canary = isvc.desired("canary", settings(), deployed(), canary_percent=20)
    round_trips(canary)
    assert predictor(canary)["canaryTrafficPercent"] == 20
    assert predictor(canary)["model"]["storageUri"] == NEW
    previous = json.loads(canary["metadata"]["annotations"][isvc.PREVIOUS_PREDICTOR_ANNOTATION])
    assert previous["model"]["storageUri"] == OLD
    assert "canary" not in canary["spec"]

    live = {**copy.deepcopy(canary), "status": {}}
    promoted = isvc.desired("promote", settings(), live)
    round_trips(promoted)
    assert "canaryTrafficPercent" not in predictor(promoted)
    assert predictor(promoted)["model"]["storageUri"] == NEW

    rolled = isvc.desired("rollback", settings(), live)
    round_trips(rolled)
    assert predictor(rolled)["canaryTrafficPercent"] == 0  # Knative: back on the previous revision
    assert predictor(rolled)["model"]["storageUri"] == NEW


def test_raw_deployment_canary_uses_spec_canary_never_canary_traffic_percent():
    mode = isvc.RAW
    canary = isvc.desired("canary", settings(mode), deployed(mode), canary_percent=30)
    round_trips(canary)
    assert "canaryTrafficPercent" not in json.dumps(canary)  # ignored in this mode (kserve#5335)
    assert predictor(canary)["model"]["storageUri"] == OLD  # production unchanged
    [entry] = canary["spec"]["canary"]
    assert entry["trafficPercent"] == 30
    assert entry["predictor"]["model"]["storageUri"] == NEW
    assert entry["predictor"]["name"] == isvc.canary_name(NEW)

    promoted = isvc.desired("promote", settings(mode), canary)
    round_trips(promoted)
    assert "canary" not in promoted["spec"]
    assert predictor(promoted) == entry["predictor"]
    recorded = json.loads(promoted["metadata"]["annotations"][isvc.PREVIOUS_PREDICTOR_ANNOTATION])
    assert recorded["model"]["storageUri"] == OLD

    rolled = isvc.desired("rollback", settings(mode), canary)
    assert "canary" not in rolled["spec"] and predictor(rolled)["model"]["storageUri"] == OLD
    # after a promote, rollback returns to the predictor recorded before it
    back = isvc.desired("rollback", settings(mode), promoted)
    round_trips(back)
    assert predictor(back)["model"]["storageUri"] == OLD
    assert isvc.PREVIOUS_PREDICTOR_ANNOTATION not in back["metadata"]["annotations"]


@pytest.mark.parametrize(
    ("action", "existing", "kw", "message"),
    [
        ("canary", "serverless", {"canary_percent": 0}, "must be 1-99"),
        ("canary", "serverless", {"canary_percent": 100}, "must be 1-99"),
        ("canary", None, {}, "needs the InferenceService serving/employment to exist"),
        ("promote", None, {}, "deploy it first"),
        ("rollback", "raw-in-serverless", {}, "runs in RawDeployment mode"),
        ("apply", "unmanaged", {}, "not managed by kfpkit"),
        ("promote", "raw", {"mode": isvc.RAW}, "nothing to promote"),
        ("launch", None, {}, "action 'launch'"),
    ],
)
def test_actions_kserve_would_refuse_or_ignore_are_refused(action, existing, kw, message):
    objects = {
        None: None,
        "serverless": deployed(),
        "raw": deployed(isvc.RAW),
        "raw-in-serverless": deployed(isvc.RAW),
        "unmanaged": {**deployed(), "metadata": {"name": "employment", "labels": {}}},
    }
    mode = kw.pop("mode", isvc.SERVERLESS)
    with pytest.raises(ValueError, match=message):
        isvc.desired(action, settings(mode), objects[existing], **kw)


def test_shadow_is_refused_in_raw_deployment_mode():
    with pytest.raises(ValueError, match="Serverless mode only"):
        isvc.check_action("shadow", settings(isvc.RAW), deployed(isvc.RAW), 0)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"name": "Employment"}, "model_name 'Employment'"),
        ({"name": "a" * 46}, "longer than 45"),
        ({"namespace": "my_ns"}, "namespace 'my_ns'"),
        ({"storage_uri": "/local/models/1"}, "must start with one of"),
        ({"runtime": "sklearn"}, "runtime 'sklearn' is not supported"),
        ({"deployment_mode": "ModelMesh"}, "deployment_mode 'ModelMesh'"),
        ({"cpu": "lots"}, "cpu 'lots' is not a Kubernetes quantity"),
        ({"min_replicas": 3, "max_replicas": 2}, "min_replicas <= max_replicas"),
        ({"logger_url": "logger:8080"}, "must be an http"),
        ({"logger_mode": "everything"}, "logger_mode 'everything'"),
        ({"service_account": "Bad Name"}, "service_account"),
    ],
)
def test_bad_settings_name_the_value(kw, message):
    base = {"name": "employment", "namespace": "serving", "storage_uri": NEW}
    with pytest.raises(ValueError, match=message):
        isvc.ServingSettings(**{**base, **kw}).check()


def test_shadow_virtual_service_mirrors_a_share_of_production_to_the_candidate():
    vs = isvc.virtual_service("employment", "serving", 25)
    [route] = vs["spec"]["http"]
    production = "employment-predictor.serving.svc.cluster.local"
    assert vs["spec"]["hosts"] == [production]
    assert route["route"] == [{"destination": {"host": production}, "weight": 100}]
    assert route["mirror"] == {"host": "employment-shadow-predictor.serving.svc.cluster.local"}
    assert route["mirrorPercentage"] == {"value": 25.0}
    with pytest.raises(ValueError, match="mirror_percent"):
        isvc.virtual_service("employment", "serving", 0)


def test_a_field_the_sdk_does_not_define_is_caught_by_the_round_trip():
    body = isvc.desired("apply", settings(), None)
    body["spec"]["predictor"]["canaryPercent"] = 5
    with pytest.raises(
        ValueError, match=r"V1beta1PredictorSpec has no field\(s\) \['canaryPercent'\]"
    ):
        isvc.from_dict(body)
