"""Applies a kserve_push action on a cluster and waits until KServe reports it ready.

Through the one Kubernetes helper (``kfpkit.jobs.kube``). Readiness is ``Ready=True`` *and*
``status.observedGeneration >= metadata.generation`` (an old Ready status never passes for
the new spec); a RawDeployment canary also needs ``CanaryReady=True``. A failed rollout
(KServe/Knative report a failed revision or model load) or a timeout rolls back: the
previous spec is written again (a first deployment is deleted), and the step fails with
KServe's reason. SIGTERM while waiting does the same rollback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kfpkit.components.kserve_push import isvc
from kfpkit.jobs import kube, wait

_log = logging.getLogger("kfpkit")

# Condition reasons (KServe, Knative) that mean the rollout failed, not that it is in progress.
FAILED_REASONS = frozenset(
    {"RevisionFailed", "ContainerMissing", "ExitCode", "ImagePullBackOff", "ErrImagePull",
     "CrashLoopBackOff", "ModelLoadFailed", "InvalidSpec", "ProgressDeadlineExceeded"}
)  # fmt: skip
FAILED_MODEL_STATES = frozenset({"BlockedByFailedLoad", "InvalidSpec"})


@dataclass
class Deployment:
    action: str
    name: str
    namespace: str
    deployment_mode: str
    endpoint_url: str = ""
    revision: str = ""
    traffic: list[dict[str, Any]] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)


def _reason_of(obj: Mapping[str, Any]) -> str | None:
    """KServe's failure reason, when the status says the rollout failed."""
    status = obj.get("status") or {}
    model = status.get("modelStatus") or {}
    if model.get("transitionStatus") in FAILED_MODEL_STATES:
        info = model.get("lastFailureInfo") or {}
        return (f"model {model['transitionStatus']}: {info.get('reason', '')} "
                f"{info.get('message', '')}").strip()  # fmt: skip
    for cond in status.get("conditions") or []:
        if str(cond.get("status")) == "False" and cond.get("reason") in FAILED_REASONS:
            return f"{cond.get('type')}: {cond.get('reason')}: {cond.get('message', '')}".strip()
    return None


def readiness(generation: int, need_canary: bool) -> Callable[[dict[str, Any]], wait.Progress]:
    def check(obj: dict[str, Any]) -> wait.Progress:
        status = obj.get("status") or {}
        observed = int(status.get("observedGeneration") or 0)
        failed = _reason_of(obj) if observed >= generation else None
        if failed:
            return wait.Progress.failed(failed)
        if observed < generation:
            return wait.Progress.pending(f"KServe has seen generation {observed} of {generation}")
        if not kube.condition_true(obj, "Ready"):
            cond = kube.condition(obj, "Ready") or {}
            return wait.Progress.pending(f"Ready={cond.get('status')}: {cond.get('message', '')}")
        if need_canary and not kube.condition_true(obj, "CanaryReady"):
            return wait.Progress.pending("waiting for CanaryReady")
        return wait.Progress.done()

    return check


def describe(obj: Mapping[str, Any], action: str) -> Deployment:
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    mode = isvc.mode_of(obj)
    out = Deployment(action, meta.get("name", ""), meta.get("namespace", ""), mode)
    out.endpoint_url = str(status.get("url") or (status.get("address") or {}).get("url") or "")
    predictor = (status.get("components") or {}).get("predictor") or {}
    if mode == isvc.SERVERLESS:
        out.revision = predictor.get("latestReadyRevision") or predictor.get(
            "latestCreatedRevision", ""
        )
        out.traffic = [
            {k: t[k] for k in ("revisionName", "percent", "tag", "latestRevision") if k in t}
            for t in predictor.get("traffic") or []
        ]
    else:
        spec_predictor = (obj.get("spec") or {}).get("predictor") or {}
        canaries = status.get("canaryStatuses") or []
        out.revision = spec_predictor.get("name") or "predictor"
        canary_share = sum(int(c.get("trafficPercent") or 0) for c in canaries)
        out.traffic = [{"name": out.revision, "percent": 100 - canary_share}] + [
            {"name": c.get("name"), "percent": c.get("trafficPercent"), "ready": c.get("ready")}
            for c in canaries
        ]
    return out


class Pusher:
    """The actions, on one cluster (``api``: a kubernetes ApiClient)."""

    def __init__(self, api: Any, poll_interval: float = 5.0):
        self.services = kube.CustomObjects(api, isvc.GROUP, isvc.VERSION, isvc.PLURAL, isvc.KIND)
        self.virtual_services = kube.CustomObjects(
            api, isvc.ISTIO_GROUP, isvc.ISTIO_VERSION, "virtualservices", "VirtualService"
        )
        self.poll_interval = poll_interval

    def push(self, action: str, s: isvc.ServingSettings, owner: str, timeout: float,
             canary_percent: int = 10, mirror_percent: float = 100.0) -> Deployment:  # fmt: skip
        s.check()
        wait.check_wait_settings(self.poll_interval, timeout)
        if action == "delete":
            return self._delete(s)
        if action == "shadow":
            return self._shadow(s, owner, timeout, mirror_percent)
        need_canary = s.deployment_mode == isvc.RAW and action == "canary"
        written, existing = self._apply(
            s, owner, lambda existing: isvc.desired(action, s, existing, canary_percent)
        )
        ready = self._wait(s, written, need_canary, timeout, _previous(s, existing))
        return describe(ready, action)

    def _apply(self, s: isvc.ServingSettings, owner: str,
               make: Callable[[dict[str, Any] | None], dict[str, Any]],
               attempts: int = 5) -> tuple[dict[str, Any], dict[str, Any] | None]:  # fmt: skip
        """Read, build, write; again from a fresh read when the object changed in between
        (KServe writes status all the time). Returns (written, as it was before)."""
        for attempt in range(1, attempts + 1):
            existing = self.services.find(s.namespace, s.name)
            body = make(existing)
            if existing is None:
                created, resumed = self.services.create_or_resume(s.namespace, body, owner)
                _log.info("%s InferenceService %s/%s", "resumed" if resumed else "created",
                          s.namespace, s.name)  # fmt: skip
                return created, None
            meta = existing["metadata"]
            body["metadata"] = {**body["metadata"], "resourceVersion": meta["resourceVersion"],
                                "labels": {**(meta.get("labels") or {}),
                                           **body["metadata"]["labels"]}}  # fmt: skip
            try:
                return self.services.replace(s.namespace, body), existing
            except kube.Conflict:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def _wait(self, s: isvc.ServingSettings, written: Mapping[str, Any], need_canary: bool,
              timeout: float, previous: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
        generation = int(written["metadata"].get("generation") or 1)

        def roll_back() -> None:
            if previous is None:
                _log.warning("rolling back: deleting the new InferenceService %s", s.name)
                self.services.delete(s.namespace, s.name)
                return
            _log.warning("rolling back InferenceService %s to its previous spec", s.name)
            self._apply(s, "rollback", lambda _current: dict(previous))

        try:
            return self.services.wait(
                s.namespace, s.name, readiness(generation, need_canary),
                poll_interval=self.poll_interval, timeout=timeout, cancel=roll_back,
            )  # fmt: skip
        except (wait.RemoteJobFailed, wait.RemoteJobTimeout) as e:
            if isinstance(e, wait.RemoteJobFailed):
                roll_back()  # the wait rolls back itself on a timeout
            undone = "deleted it" if previous is None else "restored the previous spec"
            reason = e.reason if isinstance(e, wait.RemoteJobFailed) else str(e)
            raise RuntimeError(
                f"InferenceService {s.namespace}/{s.name} did not become ready: {reason}; "
                f"rolled back ({undone})"
            ) from e

    def _delete(self, s: isvc.ServingSettings) -> Deployment:
        out = Deployment("delete", s.name, s.namespace, s.deployment_mode)
        for objects, name in ((self.virtual_services, f"{s.name}-mirror"),
                              (self.services, isvc.shadow_name(s.name)),
                              (self.services, s.name)):  # fmt: skip
            if objects.delete(s.namespace, name):
                out.objects.append(f"{objects.kind}/{name}")
        return out

    def _shadow(self, s: isvc.ServingSettings, owner: str, timeout: float,
                mirror_percent: float) -> Deployment:  # fmt: skip
        isvc.check_action("shadow", s, self.services.find(s.namespace, s.name), 0)
        vs = isvc.virtual_service(s.name, s.namespace, mirror_percent)  # checks the percent
        candidate = isvc.ServingSettings(**{**s.__dict__, "name": isvc.shadow_name(s.name)})
        written, candidate_existing = self._apply(
            candidate, owner, lambda existing: isvc.desired("apply", candidate, existing)
        )
        self._wait(candidate, written, False, timeout, _previous(candidate, candidate_existing))
        current = self.virtual_services.find(s.namespace, vs["metadata"]["name"])
        if current is None:
            self.virtual_services.create_or_resume(s.namespace, vs, owner)
        else:
            vs["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self.virtual_services.replace(s.namespace, vs)
        out = describe(self.services.get(s.namespace, s.name), "shadow")
        out.objects = [
            f"InferenceService/{candidate.name}",
            f"VirtualService/{vs['metadata']['name']}",
        ]
        out.traffic = out.traffic + [{"mirror": candidate.name, "percent": mirror_percent}]
        return out


def _previous(s: isvc.ServingSettings, existing: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The body that restores ``existing`` (None when there was nothing before)."""
    if existing is None:
        return None
    spec = existing.get("spec") or {}
    annotations = dict(existing.get("metadata", {}).get("annotations") or {})
    annotations.pop(isvc.DEPLOYMENT_MODE_ANNOTATION, None)
    return isvc.inference_service(s, spec.get("predictor"), spec.get("canary"), annotations)
