"""Online experiments on KServe: variants of a model as KServe objects, and their weights.

The variants are InferenceServices kserve_push deployed already (``apply``, each
infra-validated, each with KServe's logger pointing at the log sink); an experiment puts
them behind one entry point, by deterministic names:

- ``InferenceGraph <name>`` (``serving.kserve.io/v1alpha1``): a ``root`` node of
  ``routerType: Splitter`` with one step a variant (``serviceName``: the InferenceService,
  ``name``: the same) and integer ``weight`` s that sum to 100, as KServe's router requires:
  weighted routing (fixed weights, or a bandit's, rewritten by :meth:`Experiments.set_weights`).
- with ``sticky``: ``VirtualService <name>-ab`` (Istio, mesh gateway) on the graph's
  cluster-local host: a request carrying ``x-kfpkit-variant: <variant>`` goes straight to
  that variant's predictor, any other request to the graph (the weighted split). Istio can
  match a header but cannot hash one into buckets, so the sticky assignment is computed
  where the unit is known, with the same function as offline and as ``kfpkit serve
  --routing ab`` (``kfpkit.serving.routing.assign_variant``: FarmHash buckets of
  ``salt|unit``), and carried in that header; one user then always reaches one variant.

Why a graph rather than Knative's ``canaryTrafficPercent``: that splits between two
revisions of one service only; a Splitter takes any number of variants, each its own
InferenceService with its own logger, scaling and rollback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kfpkit.components.kserve_push import isvc
from kfpkit.jobs import kube, wait

_log = logging.getLogger("kfpkit")

GRAPH_VERSION, GRAPH_PLURAL, GRAPH_KIND = "v1alpha1", "inferencegraphs", "InferenceGraph"
ROOT, SPLITTER = "root", "Splitter"
VARIANT_HEADER = "x-kfpkit-variant"
# online_experiment's decision -> kserve_push's action (continue: nothing changes)
DECISION_ACTIONS: dict[str, str | None] = {
    "promote": "promote",
    "rollback": "rollback",
    "continue": None,
}


def action_for_decision(decision: str) -> str | None:
    """The kserve_push action an ``online_experiment`` decision asks for; None: no change."""
    if decision not in DECISION_ACTIONS:
        raise ValueError(
            f"experiment_decision {decision!r}: expected one of {sorted(DECISION_ACTIONS)}"
        )
    return DECISION_ACTIONS[decision]


def percent_weights(weights: Mapping[str, float], minimum: int = 0) -> dict[str, int]:
    """Integer weights summing to 100 in the same proportions (largest remainder), a weight
    under ``minimum`` raised to it (taken from the others in proportion). ValueError for a
    negative, non-finite or all-zero weight."""
    from kfpkit.serving.routing import probabilities

    names = list(weights)
    if not names:
        raise ValueError("an experiment needs at least one variant")
    shares = dict(zip(names, probabilities(names, [float(weights[n]) for n in names]),
                      strict=True))  # fmt: skip  # probabilities checks the weights
    if minimum * len(names) > 100:
        raise ValueError(f"{len(names)} variants cannot each get {minimum} % of traffic")
    raised: dict[str, int] = {}
    free = list(names)
    while True:
        room = 100 - sum(raised.values())
        total = sum(shares[n] for n in free)
        exact = np.array([shares[n] / total * room if total else room / len(free)
                          for n in free])  # fmt: skip
        low = [n for n, e in zip(free, exact, strict=True) if e < minimum]
        if not low:
            break
        raised.update(dict.fromkeys(low, minimum))
        free = [n for n in free if n not in low]
    whole = np.floor(exact).astype(int)
    order = np.argsort(-(exact - whole), kind="stable")
    whole[order[: room - int(whole.sum())]] += 1
    out = {**raised, **{n: int(w) for n, w in zip(free, whole, strict=True)}}
    return {n: out[n] for n in names}


@dataclass(frozen=True)
class BanditUpdate:
    shares: dict[str, float]  # the Thompson-sampling traffic shares
    rewarded: dict[str, int]  # feedback rows counted, per variant
    ignored_rows: int  # rows of other variants, or whose reward could not be computed


def bandit_weights(served: Any, variants: list[str], floor: float = 0.05,
                   seed: int = 0) -> BanditUpdate:  # fmt: skip
    """Thompson-sampling shares of ``variants`` from served rows with feedback
    (``read_served``'s table): the serving layer's bandit (``kfpkit.serving.routing``, Beta
    posteriors of the binary reward, each variant kept at ``floor`` at least) fed every
    row's reward (``kfpkit.serving.feedback.reward_of``: the reward sent, else whether the
    label agrees with the predicted class). Recomputed from all the feedback each time, so
    the step keeps no state and a rerun gives the same weights."""
    from kfpkit.serving.feedback import Feedback, reward_of
    from kfpkit.serving.routing import Router

    router = Router(variants, [1.0] * len(variants), policy="bandit", bandit="thompson",
                    floor=floor, seed=seed)  # fmt: skip
    columns = ["variant", "prediction", "request_id", "row", "label", "reward"]
    ignored = 0
    for row in served.select(columns).to_pylist():
        if row["label"] is None and row["reward"] is None:
            continue  # no feedback (yet) for this row
        if row["variant"] not in router.arms or row["prediction"] is None:
            ignored += 1
            continue
        item = Feedback(row["request_id"], row["row"], row["label"], row["reward"])
        reward = reward_of(item, row["prediction"])
        if reward is None:
            ignored += 1
            continue
        router.reward(row["variant"], reward)
    return BanditUpdate(router.traffic_shares(),
                        {v: a.feedback for v, a in router.arms.items()}, ignored)  # fmt: skip


def graph_host(name: str, namespace: str) -> str:
    """The cluster-local host of an InferenceGraph (its router's Service)."""
    return f"{name}.{namespace}.svc.cluster.local"


def ab_name(name: str) -> str:
    return f"{name}-ab"


def check_experiment(name: str, namespace: str, weights: Mapping[str, float]) -> None:
    """ValueError naming the first bad name or weight."""
    kube.check_name(name, "model_name", max_length=45)
    kube.check_name(namespace, "namespace")
    for variant in weights:
        kube.check_name(variant, "variant (an InferenceService name)", max_length=45)
    if name in weights:
        raise ValueError(f"the experiment's name {name!r} cannot also name a variant")
    percent_weights(weights)


def inference_graph(name: str, namespace: str, weights: Mapping[str, int],
                    deployment_mode: str = isvc.SERVERLESS) -> dict[str, Any]:  # fmt: skip
    """The InferenceGraph body: a root Splitter over the variants (built with kserve's models)."""
    from kserve import models as km
    from kubernetes import client as k8s

    steps = [km.V1alpha1InferenceStep(name=v, service_name=v, weight=int(w))
             for v, w in weights.items()]  # fmt: skip
    graph = km.V1alpha1InferenceGraph(
        api_version=f"{isvc.GROUP}/{GRAPH_VERSION}",
        kind=GRAPH_KIND,
        metadata=k8s.V1ObjectMeta(
            name=name,
            namespace=namespace,
            annotations={isvc.DEPLOYMENT_MODE_ANNOTATION: deployment_mode},
            labels={isvc.MANAGED_BY_LABEL: isvc.MANAGED_BY},
        ),
        spec=km.V1alpha1InferenceGraphSpec(
            nodes={ROOT: km.V1alpha1InferenceRouter(router_type=SPLITTER, steps=steps)}
        ),
    )
    return isvc.to_dict(graph)


def ab_virtual_service(name: str, namespace: str, variants: list[str],
                       header: str = VARIANT_HEADER) -> dict[str, Any]:  # fmt: skip
    """Header match to each variant's predictor; everything else to the graph's split."""
    host = graph_host(name, namespace)
    routes: list[dict[str, Any]] = [
        {
            "name": variant,
            "match": [{"headers": {header: {"exact": variant}}}],
            "route": [{"destination": {"host": isvc.predictor_host(variant, namespace)}}],
        }
        for variant in variants
    ]
    routes.append({"name": "split", "route": [{"destination": {"host": host}}]})
    return {
        "apiVersion": f"{isvc.ISTIO_GROUP}/{isvc.ISTIO_VERSION}",
        "kind": "VirtualService",
        "metadata": {"name": ab_name(name), "namespace": namespace,
                     "labels": {isvc.MANAGED_BY_LABEL: isvc.MANAGED_BY}},
        "spec": {"hosts": [host], "gateways": ["mesh"], "http": routes},
    }  # fmt: skip


def splitter_weights(graph: Mapping[str, Any]) -> dict[str, int]:
    """The weights of a graph's root Splitter, by step (variant) name."""
    node = ((graph.get("spec") or {}).get("nodes") or {}).get(ROOT) or {}
    if node.get("routerType") != SPLITTER:
        raise ValueError(f"InferenceGraph {graph['metadata']['name']} has no root Splitter")
    return {s.get("name") or s["serviceName"]: int(s.get("weight") or 0)
            for s in node.get("steps") or []}  # fmt: skip


@dataclass
class ExperimentState:
    name: str
    namespace: str
    weights: dict[str, int]
    sticky: bool
    url: str = ""
    objects: list[str] = field(default_factory=list)

    def traffic(self) -> list[dict[str, Any]]:
        return [{"variant": v, "percent": w} for v, w in self.weights.items()]


class Experiments:
    """Experiments on one cluster (``api``: a kubernetes ApiClient)."""

    def __init__(self, api: Any, poll_interval: float = 5.0):
        self.services = kube.CustomObjects(api, isvc.GROUP, isvc.VERSION, isvc.PLURAL, isvc.KIND)
        self.graphs = kube.CustomObjects(api, isvc.GROUP, GRAPH_VERSION, GRAPH_PLURAL, GRAPH_KIND)
        self.virtual_services = kube.CustomObjects(
            api, isvc.ISTIO_GROUP, isvc.ISTIO_VERSION, "virtualservices", "VirtualService"
        )
        self.poll_interval = poll_interval

    def start(self, name: str, namespace: str, weights: Mapping[str, float], owner: str,
              *, sticky: bool = False, deployment_mode: str = isvc.SERVERLESS,
              timeout: float = 900.0) -> ExperimentState:  # fmt: skip
        """Creates or updates the graph (and the sticky VirtualService, or removes it when
        ``sticky`` is off), waits until the graph is Ready for this spec. Every variant must
        be an InferenceService kfpkit manages, in the same deployment mode."""
        check_experiment(name, namespace, weights)
        wait.check_wait_settings(self.poll_interval, timeout)
        if sticky and deployment_mode != isvc.SERVERLESS:
            raise ValueError(
                "sticky routing is an Istio VirtualService, which KServe uses in Serverless "
                f"mode only; the experiment is in {deployment_mode} mode"
            )
        for variant in weights:
            self._check_variant(namespace, variant, deployment_mode)
        percents = percent_weights(weights)
        body = inference_graph(name, namespace, percents, deployment_mode)
        graph = self._write(self.graphs, namespace, body, owner, timeout)
        state = ExperimentState(name, namespace, percents, sticky, _url(graph),
                                [f"InferenceGraph/{name}"])  # fmt: skip
        vs_name = ab_name(name)
        if sticky:
            vs = ab_virtual_service(name, namespace, list(percents))
            self._write(self.virtual_services, namespace, vs, owner, timeout=0)
            state.objects.append(f"VirtualService/{vs_name}")
        else:
            self._delete_managed(self.virtual_services, namespace, vs_name)
        return state

    def set_weights(self, name: str, namespace: str, weights: Mapping[str, float],
                    minimum: int = 0, timeout: float = 900.0) -> ExperimentState:  # fmt: skip
        """Rewrites the Splitter's weights (the same variants), waits until Ready."""
        graph = self.graphs.find(namespace, name)
        if graph is None:
            raise ValueError(f"no InferenceGraph {namespace}/{name}: start the experiment first")
        current = splitter_weights(graph)
        if set(weights) != set(current):
            raise ValueError(f"weights name {sorted(weights)}; the experiment's variants are "
                             f"{sorted(current)}")  # fmt: skip
        percents = percent_weights({v: weights[v] for v in current}, minimum)
        body = inference_graph(name, namespace, percents, isvc.mode_of(graph))
        written = self._write(self.graphs, namespace, body, owner="", timeout=timeout)
        sticky = self.virtual_services.find(namespace, ab_name(name)) is not None
        return ExperimentState(name, namespace, percents, sticky, _url(written),
                               [f"InferenceGraph/{name}"])  # fmt: skip

    def stop(self, name: str, namespace: str) -> list[str]:
        """Deletes the graph and the VirtualService (the variants stay)."""
        gone = []
        for objects, obj_name in ((self.virtual_services, ab_name(name)), (self.graphs, name)):
            if self._delete_managed(objects, namespace, obj_name):
                gone.append(f"{objects.kind}/{obj_name}")
        return gone

    def _check_variant(self, namespace: str, variant: str, mode: str) -> None:
        found = self.services.find(namespace, variant)
        if found is None:
            raise ValueError(f"variant {variant!r}: no InferenceService {namespace}/{variant}; "
                             "deploy it first (kserve_push action 'apply')")  # fmt: skip
        _check_managed(found, "InferenceService")
        if isvc.mode_of(found) != mode:
            raise ValueError(f"variant {variant!r} runs in {isvc.mode_of(found)} mode, the "
                             f"experiment in {mode}")  # fmt: skip

    def _write(self, objects: kube.CustomObjects, namespace: str, body: dict[str, Any],
               owner: str, timeout: float, attempts: int = 5) -> dict[str, Any]:  # fmt: skip
        """Creates (labelled as ``owner``'s) or replaces ``body``; for a graph, waits until
        it is Ready for what was written, restoring what was there before when it is not."""
        name = body["metadata"]["name"]
        for attempt in range(1, attempts + 1):
            existing = objects.find(namespace, name)
            if existing is None:
                if not owner:
                    raise ValueError(f"no {objects.kind} {namespace}/{name}")
                written, _ = objects.create_or_resume(namespace, body, owner)
                break
            _check_managed(existing, objects.kind)
            meta = existing["metadata"]
            doc = {**body, "metadata": {**body["metadata"],
                                        "resourceVersion": meta["resourceVersion"],
                                        "labels": {**(meta.get("labels") or {}),
                                                   **body["metadata"]["labels"]}}}  # fmt: skip
            if existing.get("spec") == body["spec"]:
                written = existing  # nothing to change: a restarted step, or the same weights
                break
            try:
                written = objects.replace(namespace, doc)
                break
            except kube.Conflict:
                if attempt == attempts:
                    raise
        if objects is not self.graphs or timeout <= 0:
            return written
        return self._wait_ready(namespace, written, existing, timeout)

    def _wait_ready(self, namespace: str, written: Mapping[str, Any],
                    previous: Mapping[str, Any] | None,
                    timeout: float) -> dict[str, Any]:  # fmt: skip
        from kfpkit.components.kserve_push.deploy import readiness

        name = written["metadata"]["name"]
        generation = int(written["metadata"].get("generation") or 1)

        def restore() -> None:
            if previous is None:
                self.graphs.delete(namespace, name)
                return
            current = self.graphs.get(namespace, name)["metadata"]
            meta = {k: current[k] for k in ("name", "labels", "annotations", "resourceVersion")
                    if k in current}  # fmt: skip
            self.graphs.replace(namespace, {"metadata": meta, "spec": previous["spec"]})

        try:
            return self.graphs.wait(namespace, name, readiness(generation, False),
                                    poll_interval=self.poll_interval, timeout=timeout,
                                    cancel=restore)  # fmt: skip
        except (wait.RemoteJobFailed, wait.RemoteJobTimeout) as e:
            if isinstance(e, wait.RemoteJobFailed):
                restore()
            reason = e.reason if isinstance(e, wait.RemoteJobFailed) else str(e)
            undone = "deleted it" if previous is None else "restored the previous weights"
            raise RuntimeError(f"InferenceGraph {namespace}/{name} did not become ready: "
                               f"{reason}; rolled back ({undone})") from e  # fmt: skip

    def _delete_managed(self, objects: kube.CustomObjects, namespace: str, name: str) -> bool:
        found = objects.find(namespace, name)
        if found is None:
            return False
        _check_managed(found, objects.kind)
        return objects.delete(namespace, name)


def _check_managed(obj: Mapping[str, Any], kind: str) -> None:
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(isvc.MANAGED_BY_LABEL) != isvc.MANAGED_BY:
        raise ValueError(
            f"{kind} {meta.get('namespace')}/{meta.get('name')} exists and is not managed by "
            f"kfpkit (label {isvc.MANAGED_BY_LABEL}={labels.get(isvc.MANAGED_BY_LABEL)!r}); "
            "it is left alone"
        )


def _url(graph: Mapping[str, Any]) -> str:
    return str((graph.get("status") or {}).get("url") or "")
