"""kserve_push's create / wait / rollback against a real kube-apiserver + etcd.

The InferenceService CRD's schema is generated from the kserve SDK's models (``crd.py``);
the API server prunes and rejects against it. No KServe controller runs: each test plays it,
writing ``status`` through the ``/status`` subresource as KServe would (observedGeneration,
Ready / CanaryReady conditions, revisions and traffic), including stale and failed states.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import pytest

from kfpkit.components.kserve_push import isvc
from kfpkit.components.kserve_push.deploy import Pusher
from kfpkit.testing import kserve_crd

NS = "serving"
OLD, NEW = "gs://models/employment/1", "gs://models/employment/2"


@pytest.fixture(scope="module")
def cluster(kube_server):
    kube_server.install_crd(kserve_crd.inference_service_crd())
    kube_server.install_crd(kserve_crd.virtual_service_crd())
    kube_server.create_namespace(NS)
    return kube_server.api_client()


@pytest.fixture()
def pusher(cluster) -> Pusher:
    return Pusher(cluster, poll_interval=0.1)


def _name() -> str:
    return f"m{uuid.uuid4().hex[:8]}"


def _settings(name: str, uri: str = NEW, mode: str = isvc.SERVERLESS) -> isvc.ServingSettings:
    return isvc.ServingSettings(name, NS, uri, deployment_mode=mode, cpu="500m", memory="1Gi")


def _ready(generation: int, revision: str, traffic: list[dict], **extra) -> dict:
    return {
        "observedGeneration": generation,
        "url": f"http://employment.{NS}.example.com",
        "conditions": [{"type": "Ready", "status": "True"},
                       {"type": "PredictorReady", "status": "True"}],
        "components": {"predictor": {"latestReadyRevision": revision,
                                     "latestCreatedRevision": revision, "traffic": traffic}},
        **extra,
    }  # fmt: skip


class Controller:
    """Plays KServe: on each new generation of the object, writes what ``react`` returns."""

    def __init__(
        self, pusher: Pusher, name: str, react: Callable[[dict], list[tuple[float, dict]]]
    ):
        self.objects, self.name, self.react = pusher.services, name, react
        self.seen: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Controller:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            obj = self.objects.find(NS, self.name)
            generation = (obj or {}).get("metadata", {}).get("generation")
            if obj is not None and generation not in self.seen:
                self.seen.append(generation)
                for delay, status in self.react(obj):
                    time.sleep(delay)
                    self.objects.api.patch_namespaced_custom_object_status(
                        isvc.GROUP, isvc.VERSION, NS, isvc.PLURAL, self.name, {"status": status}
                    )
            time.sleep(0.05)


def _deploy_first(pusher: Pusher, name: str, mode: str = isvc.SERVERLESS):
    def react(obj):
        return [(0.1, _ready(obj["metadata"]["generation"], f"{name}-predictor-00001",
                             [{"revisionName": f"{name}-predictor-00001", "percent": 100,
                               "latestRevision": True}]))]  # fmt: skip

    with Controller(pusher, name, react):
        return pusher.push("apply", _settings(name, OLD, mode), owner="step-a", timeout=20)


def test_apply_creates_the_service_and_reports_url_revision_traffic(pusher):
    name = _name()
    out = _deploy_first(pusher, name)
    assert out.endpoint_url == f"http://employment.{NS}.example.com"
    assert out.revision == f"{name}-predictor-00001"
    assert out.traffic == [{"revisionName": f"{name}-predictor-00001", "percent": 100,
                            "latestRevision": True}]  # fmt: skip
    stored = pusher.services.get(NS, name)
    assert stored["spec"]["predictor"]["model"]["storageUri"] == OLD
    assert stored["metadata"]["labels"][isvc.MANAGED_BY_LABEL] == "kfpkit"


def test_an_old_ready_status_is_not_taken_for_the_new_revision(pusher):
    name = _name()
    _deploy_first(pusher, name)
    split = [{"revisionName": f"{name}-predictor-00002", "percent": 20, "latestRevision": True},
             {"revisionName": f"{name}-predictor-00001", "percent": 80, "tag": "prev"}]  # fmt: skip

    def react(obj):
        generation = obj["metadata"]["generation"]
        if generation == 1:
            return []
        # for a while KServe still shows generation 1's Ready status, then the new one
        stale = _ready(generation - 1, f"{name}-predictor-00001", [])
        return [(0.0, stale), (1.0, _ready(generation, f"{name}-predictor-00002", split))]

    with Controller(pusher, name, react):
        started = time.monotonic()
        out = pusher.push("canary", _settings(name), owner="step-b", timeout=20, canary_percent=20)
    assert time.monotonic() - started >= 1.0
    assert out.revision == f"{name}-predictor-00002"
    assert [t["percent"] for t in out.traffic] == [20, 80]
    assert pusher.services.get(NS, name)["spec"]["predictor"]["canaryTrafficPercent"] == 20


def test_a_failed_rollout_is_rolled_back_and_fails_with_kserve_reason(pusher):
    name = _name()
    _deploy_first(pusher, name)
    before = pusher.services.get(NS, name)["spec"]

    def react(obj):
        generation = obj["metadata"]["generation"]
        if generation == 1:
            return []
        if obj["spec"]["predictor"]["model"]["storageUri"] == OLD:  # the rollback
            return [(0.0, _ready(generation, f"{name}-predictor-00001", []))]
        failed = {
            "observedGeneration": generation,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "RevisionFailed",
                    "message": "Revision failed: container exited with code 1: model not found",
                }
            ],
        }
        return [(0.2, failed)]  # fmt: skip

    with Controller(pusher, name, react), pytest.raises(RuntimeError) as error:
        pusher.push("canary", _settings(name), owner="step-c", timeout=20, canary_percent=10)
    assert "RevisionFailed" in str(error.value) and "model not found" in str(error.value)
    assert "restored the previous spec" in str(error.value)
    after = pusher.services.get(NS, name)["spec"]
    assert after == before  # the canary is gone: all traffic where it was


def test_a_timeout_rolls_back_too(pusher):
    name = _name()
    _deploy_first(pusher, name)
    before = pusher.services.get(NS, name)["spec"]
    with pytest.raises(RuntimeError, match="did not finish within 1 s.*rolled back"):
        pusher.push("apply", _settings(name), owner="step-d", timeout=1)  # nobody answers
    assert pusher.services.get(NS, name)["spec"] == before


def test_a_first_deployment_that_fails_is_deleted(pusher):
    name = _name()

    def react(obj):
        return [
            (
                0.1,
                {
                    "observedGeneration": 1,
                    "modelStatus": {
                        "transitionStatus": "BlockedByFailedLoad",
                        "lastFailureInfo": {
                            "reason": "ModelLoadFailed",
                            "message": "no saved_model.pb",
                        },
                    },
                },
            )
        ]

    with Controller(pusher, name, react), pytest.raises(RuntimeError, match="no saved_model.pb"):
        pusher.push("apply", _settings(name), owner="step-e", timeout=20)
    assert pusher.services.find(NS, name) is None


def test_promote_and_rollback_serverless(pusher):
    name = _name()
    _deploy_first(pusher, name)

    def react(obj):
        g = obj["metadata"]["generation"]
        percent = obj["spec"]["predictor"].get("canaryTrafficPercent")
        share = 100 if percent is None else percent
        traffic = [{"revisionName": f"{name}-predictor-00002", "percent": share}]
        if share < 100:
            traffic.append({"revisionName": f"{name}-predictor-00001", "percent": 100 - share})
        return [(0.0, _ready(g, f"{name}-predictor-00002", traffic))]

    with Controller(pusher, name, react):
        pusher.push("canary", _settings(name), owner="s1", timeout=20, canary_percent=10)
        promoted = pusher.push("promote", _settings(name), owner="s2", timeout=20)
        assert promoted.traffic == [{"revisionName": f"{name}-predictor-00002", "percent": 100}]
        rolled = pusher.push("rollback", _settings(name), owner="s3", timeout=20)
    assert [t["percent"] for t in rolled.traffic] == [0, 100]
    assert pusher.services.get(NS, name)["spec"]["predictor"]["canaryTrafficPercent"] == 0


def test_raw_deployment_canary_waits_for_canary_ready_then_promotes(pusher):
    name = _name()
    _deploy_first(pusher, name, isvc.RAW)

    def react(obj):
        g = obj["metadata"]["generation"]
        canaries = obj["spec"].get("canary") or []
        ready = {k: v for k, v in _ready(g, "-", []).items() if k != "components"}  # no revisions
        if not canaries:
            return [(0.0, ready)]
        c = canaries[0]
        statuses = [{"name": c["predictor"]["name"], "ready": True,
                     "trafficPercent": c["trafficPercent"]}]  # fmt: skip
        not_yet = {
            **ready,
            "canaryStatuses": statuses,
            "conditions": ready["conditions"] + [{"type": "CanaryReady", "status": "False"}],
        }
        done = {**not_yet, "conditions": ready["conditions"] + [{"type": "CanaryReady",
                                                                 "status": "True"}]}  # fmt: skip
        return [(0.0, not_yet), (0.8, done)]

    with Controller(pusher, name, react):
        started = time.monotonic()
        out = pusher.push("canary", _settings(name, mode=isvc.RAW), owner="r1", timeout=20,
                          canary_percent=25)  # fmt: skip
        assert time.monotonic() - started >= 0.8  # CanaryReady, not just Ready
        canary = {"name": isvc.canary_name(NEW), "percent": 25, "ready": True}
        assert out.traffic == [{"name": "predictor", "percent": 75}, canary]
        promoted = pusher.push("promote", _settings(name, mode=isvc.RAW), owner="r2", timeout=20)
    stored = pusher.services.get(NS, name)
    assert "canary" not in stored["spec"]
    assert stored["spec"]["predictor"]["name"] == isvc.canary_name(NEW)
    assert stored["spec"]["predictor"]["model"]["storageUri"] == NEW
    assert promoted.revision == isvc.canary_name(NEW)


def test_shadow_deploys_a_candidate_and_a_mirroring_virtual_service_then_delete(pusher):
    name = _name()
    _deploy_first(pusher, name)
    shadow = isvc.shadow_name(name)

    def react(obj):
        return [(0.0, _ready(obj["metadata"]["generation"], f"{shadow}-predictor-00001", []))]

    with Controller(pusher, shadow, react):
        out = pusher.push("shadow", _settings(name), owner="sh", timeout=20, mirror_percent=30)
    assert out.objects == [f"InferenceService/{shadow}", f"VirtualService/{name}-mirror"]
    candidate = pusher.services.get(NS, shadow)
    assert candidate["spec"]["predictor"]["model"]["storageUri"] == NEW
    assert pusher.services.get(NS, name)["spec"]["predictor"]["model"]["storageUri"] == OLD
    vs = pusher.virtual_services.get(NS, f"{name}-mirror")
    assert vs["spec"]["http"][0]["mirror"]["host"] == isvc.predictor_host(shadow, NS)
    assert vs["spec"]["http"][0]["mirrorPercentage"] == {"value": 30.0}
    assert out.traffic[-1] == {"mirror": shadow, "percent": 30.0}

    gone = pusher.push("delete", _settings(name), owner="del", timeout=5)
    assert gone.objects == [f"VirtualService/{name}-mirror", f"InferenceService/{shadow}",
                            f"InferenceService/{name}"]  # fmt: skip
    assert pusher.services.find(NS, name) is None and pusher.services.find(NS, shadow) is None


def test_the_api_server_rejects_what_the_generated_schema_forbids(pusher):
    name = _name()
    body = isvc.desired("apply", _settings(name), None)
    body["spec"]["predictor"]["minReplicas"] = "one"  # an integer in KServe's API
    with pytest.raises(RuntimeError, match="refused"):
        pusher.services.create_or_resume(NS, body, owner="x")


def test_replace_with_a_stale_read_is_a_conflict_not_an_overwrite(pusher):
    from kfpkit.jobs import kube

    name = _name()
    _deploy_first(pusher, name)
    stale = pusher.services.get(NS, name)
    pusher.services.api.patch_namespaced_custom_object_status(
        isvc.GROUP, isvc.VERSION, NS, isvc.PLURAL, name, {"status": {"url": "http://moved"}}
    )  # the controller writes in between
    stale["spec"]["predictor"]["minReplicas"] = 2
    with pytest.raises(kube.Conflict):
        pusher.services.replace(NS, stale)
    assert pusher.services.get(NS, name)["spec"]["predictor"]["minReplicas"] == 1


def test_sigterm_while_waiting_rolls_back(pusher):
    import os
    import signal

    from kfpkit.runtime.executor import Cancelled, _raise_cancelled

    name = _name()
    _deploy_first(pusher, name)
    before = pusher.services.get(NS, name)["spec"]
    previous = signal.signal(signal.SIGTERM, _raise_cancelled)  # as the launcher installs it
    killer = threading.Timer(0.8, os.kill, (os.getpid(), signal.SIGTERM))
    killer.start()
    try:
        with pytest.raises(Cancelled):
            pusher.push("canary", _settings(name), owner="step-t", timeout=30, canary_percent=5)
    finally:
        killer.cancel()
        signal.signal(signal.SIGTERM, previous)
    assert pusher.services.get(NS, name)["spec"] == before
