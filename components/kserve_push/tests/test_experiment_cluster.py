"""Experiments as KServe objects on a real kube-apiserver + etcd: an InferenceGraph Splitter
over variant InferenceServices, the sticky A/B VirtualService, weight updates, the decision.

The InferenceGraph CRD's schema is generated from the kserve SDK's models (as the
InferenceService's is; ``kfpkit.testing.kserve_crd``), the VirtualService's is Istio's subset
with header matches; the API server prunes and rejects against them. No KServe or Istio
controller runs: a thread plays KServe's, writing the graph's status (observedGeneration,
Ready) through ``/status``.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import pytest

from kfpkit.components.kserve_push import experiment, isvc, runner
from kfpkit.components.kserve_push.experiment import Experiments, percent_weights
from kfpkit.testing import kserve_crd

NS = "experiments"


@pytest.fixture(scope="module")
def cluster(kube_server):
    kube_server.install_crd(kserve_crd.inference_service_crd())
    kube_server.install_crd(kserve_crd.inference_graph_crd())
    kube_server.install_crd(kserve_crd.virtual_service_crd())
    kube_server.create_namespace(NS)
    return kube_server.api_client()


@pytest.fixture()
def experiments(cluster) -> Experiments:
    return Experiments(cluster, poll_interval=0.05)


class GraphController:
    """Plays KServe's InferenceGraph controller: marks each new generation Ready (or what
    ``status_for`` says) after a short delay."""

    def __init__(self, experiments: Experiments, name: str, status_for=None):
        self.graphs, self.name = experiments.graphs, name
        self.status_for = status_for or (lambda obj: {"type": "Ready", "status": "True"})
        self.seen: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            obj = self.graphs.find(NS, self.name)
            generation = (obj or {}).get("metadata", {}).get("generation")
            if obj is not None and generation not in self.seen:
                self.seen.append(generation)
                time.sleep(0.1)
                status = {"observedGeneration": generation,
                          "url": f"http://{self.name}.{NS}.example.com",
                          "conditions": [self.status_for(obj)]}  # fmt: skip
                self.graphs.api.patch_namespaced_custom_object_status(
                    isvc.GROUP, experiment.GRAPH_VERSION, NS, experiment.GRAPH_PLURAL,
                    self.name, {"status": status},
                )  # fmt: skip
            time.sleep(0.03)


def _variants(experiments: Experiments, *names: str, managed: bool = True) -> None:
    """Variant InferenceServices as kserve_push's apply writes them."""
    for name in names:
        s = isvc.ServingSettings(name, NS, f"gs://models/{name}", cpu="500m", memory="1Gi")
        body = isvc.desired("apply", s, None)
        if not managed:
            body["metadata"]["labels"] = {}
        experiments.services.create_or_resume(NS, body, owner="deploy-step")


def _name() -> str:
    return f"x{uuid.uuid4().hex[:8]}"


def test_weights_become_integer_percents_summing_to_100():
    assert percent_weights({"a": 1, "b": 1, "c": 1}) == {"a": 34, "b": 33, "c": 33}
    assert percent_weights({"a": 0.7, "b": 0.3}) == {"a": 70, "b": 30}
    assert percent_weights({"a": 0.999, "b": 0.001}, minimum=5) == {"a": 95, "b": 5}
    assert percent_weights({"a": 3, "b": 0}) == {"a": 100, "b": 0}
    for bad in ({"a": 0, "b": 0}, {"a": -1, "b": 2}, {"a": float("nan"), "b": 1}, {}):
        with pytest.raises(ValueError):
            percent_weights(bad)


def test_decisions_map_to_actions():
    assert experiment.action_for_decision("promote") == "promote"
    assert experiment.action_for_decision("rollback") == "rollback"
    assert experiment.action_for_decision("continue") is None
    with pytest.raises(ValueError, match="'ship-it'"):
        experiment.action_for_decision("ship-it")


def test_splitter_graph_and_sticky_virtual_service_as_the_api_server_stores_them(experiments):
    name = _name()
    a, b = f"{name}-2015", f"{name}-2016"
    _variants(experiments, a, b)
    with GraphController(experiments, name) as controller:
        state = experiments.start(name, NS, {a: 0.5, b: 0.5}, owner="step-1", sticky=True,
                                  timeout=20)  # fmt: skip
    assert state.weights == {a: 50, b: 50}
    assert state.url == f"http://{name}.{NS}.example.com"
    assert state.objects == [f"InferenceGraph/{name}", f"VirtualService/{name}-ab"]
    graph = experiments.graphs.get(NS, name)
    assert graph["spec"]["nodes"] == {"root": {"routerType": "Splitter", "steps": [
        {"name": a, "serviceName": a, "weight": 50},
        {"name": b, "serviceName": b, "weight": 50}]}}  # fmt: skip
    assert graph["metadata"]["labels"][isvc.MANAGED_BY_LABEL] == "kfpkit"
    vs = experiments.virtual_services.get(NS, f"{name}-ab")
    assert vs["spec"]["hosts"] == [f"{name}.{NS}.svc.cluster.local"]
    routes = vs["spec"]["http"]
    assert routes[0]["match"] == [{"headers": {"x-kfpkit-variant": {"exact": a}}}]
    assert routes[0]["route"] == [
        {"destination": {"host": f"{a}-predictor.{NS}.svc.cluster.local"}}
    ]
    assert routes[-1] == {
        "name": "split",
        "route": [{"destination": {"host": f"{name}.{NS}.svc.cluster.local"}}],
    }
    assert controller.seen == [1]

    # the same step again (a restart): nothing is rewritten, no new generation
    again = experiments.start(name, NS, {a: 1, b: 1}, owner="step-1", sticky=True, timeout=5)
    assert again.weights == state.weights
    assert experiments.graphs.get(NS, name)["metadata"]["generation"] == 1

    # the bandit's weights: the Splitter is rewritten, the controller sees generation 2
    with GraphController(experiments, name) as controller:
        controller.seen.append(1)
        moved = experiments.set_weights(name, NS, {a: 0.9, b: 0.1}, minimum=5, timeout=20)
    assert moved.weights == {a: 90, b: 10} and moved.sticky
    assert experiment.splitter_weights(experiments.graphs.get(NS, name)) == {a: 90, b: 10}
    assert controller.seen == [1, 2]

    # not sticky any more: the VirtualService goes, the graph stays
    with GraphController(experiments, name) as controller:
        controller.seen.append(2)
        plain = experiments.start(name, NS, {a: 1, b: 1}, owner="step-2", timeout=20)
    assert plain.objects == [f"InferenceGraph/{name}"]
    assert experiments.virtual_services.find(NS, f"{name}-ab") is None

    assert experiments.stop(name, NS) == [f"InferenceGraph/{name}"]
    assert experiments.graphs.find(NS, name) is None
    assert experiments.services.find(NS, a) is not None  # the variants stay


def test_a_graph_that_fails_is_rolled_back_to_its_previous_weights(experiments):
    name = _name()
    a, b = f"{name}-a", f"{name}-b"
    _variants(experiments, a, b)
    with GraphController(experiments, name):
        experiments.start(name, NS, {a: 1, b: 1}, owner="s", timeout=20)

    def fail(obj):
        return {"type": "Ready", "status": "False", "reason": "InvalidSpec",
                "message": "service not found"}  # fmt: skip

    with GraphController(experiments, name, fail) as controller:
        controller.seen.append(1)
        with pytest.raises(RuntimeError, match="InvalidSpec.*restored the previous weights"):
            experiments.set_weights(name, NS, {a: 1, b: 3}, timeout=20)
    assert experiment.splitter_weights(experiments.graphs.get(NS, name)) == {a: 50, b: 50}


def test_a_first_graph_that_never_gets_ready_is_deleted(experiments):
    name = _name()
    _variants(experiments, f"{name}-a", f"{name}-b")
    with pytest.raises(RuntimeError, match="did not become ready.*deleted it"):
        experiments.start(name, NS, {f"{name}-a": 1, f"{name}-b": 1}, owner="s", timeout=0.5)
    assert experiments.graphs.find(NS, name) is None


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"missing": 1}, "no InferenceService experiments/missing"),
        ({"Bad_Name": 1}, "'Bad_Name' is not a valid Kubernetes name"),
        ({"unmanaged": 1}, "not managed by kfpkit"),
    ],
)
def test_bad_variants_are_refused_before_anything_is_written(experiments, weights, message):
    _variants(experiments, "unmanaged", managed=False) if "unmanaged" in weights else None
    name = _name()
    with pytest.raises(ValueError, match=message):
        experiments.start(name, NS, weights, owner="s", timeout=1)
    assert experiments.graphs.find(NS, name) is None


def test_sticky_routing_is_refused_in_raw_deployment_mode(experiments):
    name = _name()
    with pytest.raises(ValueError, match="Serverless mode only"):
        experiments.start(name, NS, {f"{name}-a": 1}, owner="s", sticky=True,
                          deployment_mode=isvc.RAW, timeout=1)  # fmt: skip
    assert experiments.graphs.find(NS, name) is None


def test_weights_for_other_variants_are_refused(experiments):
    name = _name()
    _variants(experiments, f"{name}-a", f"{name}-b")
    with GraphController(experiments, name):
        experiments.start(name, NS, {f"{name}-a": 1, f"{name}-b": 1}, owner="s", timeout=20)
    with pytest.raises(ValueError, match="the experiment's variants are"):
        experiments.set_weights(name, NS, {f"{name}-a": 1, f"{name}-c": 1})


# -- the step: online_experiment's decision, the experiment and bandit actions --------------


def _request(kubeconfig, name: str, **fields) -> runner.PushRequest:
    settings = isvc.ServingSettings(name, NS, f"gs://models/{name}", cpu="500m", memory="1Gi")
    return runner.PushRequest(action=fields.pop("action", "apply"), backend="kserve",
                              settings=settings, model_path=None, test_path=None,
                              kubeconfig=str(kubeconfig), timeout_seconds=20, owner="step",
                              **fields)  # fmt: skip


@pytest.fixture()
def kubeconfig(cluster, kube_server, tmp_path):
    return kube_server.write_kubeconfig(tmp_path / "kubeconfig")


class ServiceController(threading.Thread):
    """Plays KServe for one Serverless InferenceService: Ready, with the traffic split its
    canaryTrafficPercent asks for."""

    def __init__(self, experiments: Experiments, name: str):
        super().__init__(daemon=True)
        self.services, self.name, self.stop = experiments.services, name, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            obj = self.services.find(NS, self.name)
            g = (obj or {}).get("metadata", {}).get("generation")
            if obj is not None and (obj.get("status") or {}).get("observedGeneration") != g:
                percent = obj["spec"]["predictor"].get("canaryTrafficPercent")
                share = 100 if percent is None else percent
                traffic = [{"revisionName": "new", "percent": share}]
                if share < 100:
                    traffic.append({"revisionName": "old", "percent": 100 - share})
                status = {"observedGeneration": g,
                          "conditions": [{"type": "Ready", "status": "True"}],
                          "components": {"predictor": {"latestReadyRevision": "new",
                                                       "traffic": traffic}}}  # fmt: skip
                self.services.api.patch_namespaced_custom_object_status(
                    isvc.GROUP, isvc.VERSION, NS, isvc.PLURAL, self.name, {"status": status}
                )
            time.sleep(0.05)


def test_the_experiment_decision_promotes_rolls_back_or_leaves_the_canary(experiments, kubeconfig):
    name = _name()
    controller = ServiceController(experiments, name)
    controller.start()
    try:
        _variants(experiments, name)  # the production model
        canary = _request(kubeconfig, name, action="canary", canary_traffic_percent=20)
        from kfpkit.components.kserve_push.deploy import Pusher

        Pusher(experiments.services.api.api_client, poll_interval=0.05).push(
            "canary", canary.settings, "step", 20, canary_percent=20
        )
        generation = experiments.services.get(NS, name)["metadata"]["generation"]

        kept = runner.push(_request(kubeconfig, name, experiment_decision="continue"))
        assert kept.action == "none" and kept.decision == "continue"
        assert "decision `continue`: no change" in kept.summary
        assert experiments.services.get(NS, name)["metadata"]["generation"] == generation

        promoted = runner.push(_request(kubeconfig, name, experiment_decision="promote"))
        assert promoted.action == "promote"
        assert promoted.traffic == [{"revisionName": "new", "percent": 100}]
        assert "canaryTrafficPercent" not in experiments.services.get(NS, name)["spec"]["predictor"]

        rolled = runner.push(_request(kubeconfig, name, experiment_decision="rollback"))
        assert rolled.action == "rollback" and "decision `rollback`" in rolled.summary
        assert experiments.services.get(NS, name)["spec"]["predictor"]["canaryTrafficPercent"] == 0
    finally:
        controller.stop.set()
        controller.join(5)

    with pytest.raises(ValueError, match="experiment_decision 'ship'"):
        runner.push(_request(kubeconfig, name, experiment_decision="ship"))


def _log_traffic(folder, variants_rewards: dict[str, list[int]]) -> None:
    """Served rows (through the logger sink's writer) and their feedback files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kfpkit.serving.logger_sink import REQUEST_TYPE, RESPONSE_TYPE, Event, Sink

    sink = Sink(str(folder.parent))
    feedback = {"request_id": [], "row": [], "label": [], "reward": [], "timestamp": []}
    for variant, labels in variants_rewards.items():
        for i, label in enumerate(labels):
            rid = f"{variant}-{i}"
            for kind, body in ((REQUEST_TYPE, {"instances": [{"AGEP": 30.0}]}),
                               (RESPONSE_TYPE, {"predictions": [0.9]})):  # fmt: skip
                sink.add(Event(rid, kind, "src", None, variant, "predictor", "default", body,
                               model_name=folder.name))  # fmt: skip
            feedback["request_id"].append(rid)
            feedback["row"].append(0)
            feedback["label"].append(float(label))  # predicted class 1: reward = label
            feedback["reward"].append(None)
            feedback["timestamp"].append(T_FEEDBACK)
    sink.close()
    (folder / "feedback").mkdir()
    schema = pa.schema([("request_id", pa.string()), ("row", pa.int32()),
                        ("label", pa.float64()), ("reward", pa.float64()),
                        ("timestamp", pa.timestamp("us", tz="UTC"))])  # fmt: skip
    pq.write_table(
        pa.table(feedback, schema=schema),
        folder / "feedback" / "feedback-20261202T120000Z-1-000000.parquet",
    )


T_FEEDBACK = datetime(2026, 12, 2, 12, tzinfo=UTC)


def test_bandit_weights_need_feedback_and_keep_the_floor():
    import pyarrow as pa

    schema = pa.schema([("variant", pa.string()), ("prediction", pa.float64()),
                        ("request_id", pa.string()), ("row", pa.int32()),
                        ("label", pa.float64()), ("reward", pa.float64())])  # fmt: skip
    row = {"variant": ["a"], "prediction": [0.9], "request_id": ["r"], "row": [0]}
    none = pa.table({**row, "label": [None], "reward": [None]}, schema=schema)
    update = experiment.bandit_weights(none, ["a", "b"])
    # no feedback: nobody is starved (the shares are Thompson draws' frequencies)
    assert update.shares == pytest.approx({"a": 0.5, "b": 0.5}, abs=0.03)
    assert update.rewarded == {"a": 0, "b": 0}

    n = 200
    rows = {"variant": ["a"] * n + ["b"] * n + ["c"], "prediction": [0.9] * (2 * n + 1),
            "request_id": [str(i) for i in range(2 * n + 1)], "row": [0] * (2 * n + 1),
            "label": [1.0] * n + [0.0] * n + [1.0], "reward": [None] * (2 * n + 1)}  # fmt: skip
    update = experiment.bandit_weights(pa.table(rows, schema=schema), ["a", "b"], floor=0.05)
    assert update.shares["a"] == pytest.approx(0.95) and update.shares["b"] == pytest.approx(0.05)
    assert update.rewarded == {"a": n, "b": n} and update.ignored_rows == 1  # "c" is not a variant


def test_experiment_then_bandit_actions_through_the_step(experiments, kubeconfig, tmp_path):
    name = _name()
    good, bad = f"{name}-good", f"{name}-bad"
    _variants(experiments, good, bad)
    with GraphController(experiments, name):
        started = runner.push(_request(kubeconfig, name, action="experiment",
                                       variant_weights={good: 1, bad: 1}, sticky=True))  # fmt: skip
        assert started.traffic == [{"variant": good, "percent": 50},
                                   {"variant": bad, "percent": 50}]  # fmt: skip
        assert started.objects == [f"InferenceGraph/{name}", f"VirtualService/{name}-ab"]

        logs = tmp_path / "logs" / name
        _log_traffic(logs, {good: [1] * 45 + [0] * 5, bad: [1] * 20 + [0] * 30})
        moved = runner.push(_request(kubeconfig, name, action="bandit", served_logs=str(logs),
                                     bandit_floor=0.05))  # fmt: skip
    weights = {t["variant"]: t["percent"] for t in moved.traffic}
    assert weights[good] >= 90 and weights[bad] >= 5 and sum(weights.values()) == 100
    assert {t["variant"]: t["feedback_rows"] for t in moved.traffic} == {good: 50, bad: 50}
    assert experiment.splitter_weights(experiments.graphs.get(NS, name)) == weights

    gone = runner.push(_request(kubeconfig, name, action="delete"))
    assert f"InferenceGraph/{name}" in gone.objects and f"VirtualService/{name}-ab" in gone.objects


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action": "bandit"}, "needs served_logs"),
        ({"action": "experiment", "variant_weights": {}}, "at least one variant"),
        ({"action": "experiment", "variant_weights": {"a": 0, "b": 0}}, "weight"),
        ({"action": "bandit", "served_logs": "/x", "bandit_floor": 0.9}, "bandit_floor"),
    ],
)
def test_bad_experiment_requests_are_refused_before_the_cluster(kubeconfig, fields, message):
    with pytest.raises(ValueError, match=message):
        runner.check_request(_request(kubeconfig, "exp", **fields))
