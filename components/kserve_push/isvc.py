"""The Kubernetes objects kserve_push writes, built with the kserve SDK's own models.

Pure: no cluster. :func:`desired` turns (action, settings, the object as it is now) into the
InferenceService body to write, for both KServe 0.21 rollout paths:

- Serverless (Knative): one predictor, revisions kept by Knative. ``canary`` sets
  ``spec.predictor.canaryTrafficPercent`` on the new predictor (the new revision gets that
  share, the previously rolled-out one the rest); ``promote`` drops the field; ``rollback``
  sets it to 0 (all traffic back on ``previousRolledoutRevision``).
- RawDeployment: ``canaryTrafficPercent`` is silently ignored there (kserve#5335), so it is
  never written; ``canary`` adds a named predictor in ``spec.canary`` with
  ``trafficPercent``; ``promote`` makes it the predictor and removes the list; ``rollback``
  removes the list (or, after a promote, restores the predictor kfpkit recorded before it).

Every apply/promote records the predictor it replaces in the annotation
``kfpkit.dev/previous-predictor``, so a later rollback has something to return to.
``shadow`` is a second InferenceService (``<name>-shadow``) plus an Istio VirtualService
that mirrors a share of the production predictor's traffic to it (:func:`virtual_service`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kfpkit.components.kserve_push import defaults
from kfpkit.jobs import kube

GROUP, VERSION, PLURAL, KIND = (
    "serving.kserve.io",
    "v1beta1",
    "inferenceservices",
    "InferenceService",
)
ISTIO_GROUP, ISTIO_VERSION = "networking.istio.io", "v1"
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
PREVIOUS_PREDICTOR_ANNOTATION = "kfpkit.dev/previous-predictor"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "kfpkit"
SERVERLESS, RAW = "Serverless", "RawDeployment"
DEPLOYMENT_MODES = (SERVERLESS, RAW)
ACTIONS = ("apply", "canary", "promote", "rollback", "shadow", "delete")
# Actions on an experiment (an InferenceGraph over variant InferenceServices: experiment.py)
EXPERIMENT_ACTIONS = ("experiment", "bandit")
RUNTIMES = ("tensorflow",)  # model formats supported so far (the design leaves room)
LOGGER_MODES = ("all", "request", "response")
STORAGE_SCHEMES = ("gs://", "s3://", "pvc://")
MODEL_CONTAINER = "kserve-container"  # what KServe names the model container itself
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?\Z")


@dataclass(frozen=True)
class ServingSettings:
    """What the user asked for: one InferenceService's predictor."""

    name: str
    namespace: str
    storage_uri: str
    runtime: str = defaults.RUNTIME
    deployment_mode: str = defaults.DEPLOYMENT_MODE
    cpu: str = defaults.CPU
    memory: str = defaults.MEMORY
    gpu: int = defaults.GPU
    min_replicas: int = defaults.MIN_REPLICAS
    max_replicas: int = defaults.MAX_REPLICAS
    scale_target: int = defaults.SCALE_TARGET
    scale_metric: str = ""  # concurrency, rps, cpu, memory; "": KServe's default
    service_account: str = ""
    logger_url: str = ""
    logger_mode: str = defaults.LOGGER_MODE
    runtime_version: str = ""

    def check(self) -> ServingSettings:
        """ValueError naming the first bad value."""
        kube.check_name(self.name, "model_name", max_length=45)  # KServe adds suffixes
        kube.check_name(self.namespace, "namespace")
        if self.service_account:
            kube.check_name(self.service_account, "service_account", max_length=253)
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime {self.runtime!r} is not supported; supported: {RUNTIMES}")
        if self.deployment_mode not in DEPLOYMENT_MODES:
            raise ValueError(
                f"deployment_mode {self.deployment_mode!r}: expected one of {DEPLOYMENT_MODES}"
            )
        if not self.storage_uri.startswith(STORAGE_SCHEMES):
            raise ValueError(
                f"storage_uri {self.storage_uri!r} must start with one of {STORAGE_SCHEMES} "
                "(a cluster cannot read a path on the pipeline's machine)"
            )
        for what, value in (("cpu", self.cpu), ("memory", self.memory)):
            if not _QUANTITY.match(str(value)):
                raise ValueError(
                    f"{what} {value!r} is not a Kubernetes quantity (e.g. 1, 500m, 2Gi)"
                )
        if not 0 <= self.gpu <= 16:
            raise ValueError(f"gpu must be 0-16, got {self.gpu}")
        if not 0 <= self.min_replicas <= self.max_replicas or self.max_replicas < 1:
            raise ValueError(
                f"replicas: need 0 <= min_replicas <= max_replicas and max_replicas >= 1, got "
                f"{self.min_replicas}..{self.max_replicas}"
            )
        if self.scale_target < 0:
            raise ValueError(f"scale_target must be >= 0, got {self.scale_target}")
        if self.scale_metric not in ("", "concurrency", "rps", "cpu", "memory"):
            raise ValueError(f"scale_metric {self.scale_metric!r} is not one KServe knows")
        if self.logger_url and not self.logger_url.startswith(("http://", "https://")):
            raise ValueError(f"logger_url {self.logger_url!r} must be an http(s) URL")
        if self.logger_mode not in LOGGER_MODES:
            raise ValueError(f"logger_mode {self.logger_mode!r}: expected one of {LOGGER_MODES}")
        return self


def _models() -> Any:
    from kserve import models as km
    from kubernetes import client as k8s

    return km, k8s


def predictor_spec(s: ServingSettings, name: str | None = None) -> Any:
    """A ``V1beta1PredictorSpec`` for the settings (``name`` names a RawDeployment canary)."""
    km, k8s = _models()
    requests = {"cpu": s.cpu, "memory": s.memory}
    limits = dict(requests)
    if s.gpu:
        limits["nvidia.com/gpu"] = str(s.gpu)
    model = km.V1beta1ModelSpec(
        name=MODEL_CONTAINER,  # the SDK's default "" would be written as an empty name
        model_format=km.V1beta1ModelFormat(name=s.runtime),
        storage_uri=s.storage_uri,
        runtime_version=s.runtime_version or None,
        resources=k8s.V1ResourceRequirements(requests=requests, limits=limits),
    )
    logger = km.V1beta1LoggerSpec(url=s.logger_url, mode=s.logger_mode) if s.logger_url else None
    return km.V1beta1PredictorSpec(
        name=name,
        model=model,
        min_replicas=s.min_replicas,
        max_replicas=s.max_replicas,
        scale_target=s.scale_target or None,
        scale_metric=s.scale_metric or None,
        service_account_name=s.service_account or None,
        logger=logger,
    )


def to_dict(obj: Any) -> Any:
    """A kserve/kubernetes model as the JSON the API server takes (camelCase, no nulls)."""
    from kserve import ApiClient

    return ApiClient().sanitize_for_serialization(obj)


def model_class(name: str) -> Any:
    """A kserve SDK model class, or a kubernetes client one (the SDK's models use both)."""
    km, k8s = _models()
    for module in (km, k8s):
        if hasattr(module, name):
            return getattr(module, name)
    return None


# Type names in the SDKs' openapi_types: kserve writes dict(str, T), kubernetes dict[str, T].
LIST_TYPE = re.compile(r"^list\[(.+)\]\Z")
DICT_TYPE = re.compile(r"^dict[(\[]([^,]+), (.+)[)\]]\Z")


def from_dict(data: Any, type_name: str = "V1beta1InferenceService") -> Any:
    """The SDK model of a JSON object, strictly: a key the model does not define is a
    ValueError (kserve's own deserializer cannot resolve the kubernetes types it uses)."""
    if data is None or type_name in ("str", "int", "float", "bool", "object", "datetime"):
        return data
    if m := LIST_TYPE.match(type_name):
        return [from_dict(item, m.group(1)) for item in data]
    if m := DICT_TYPE.match(type_name):
        return {k: from_dict(v, m.group(2)) for k, v in data.items()}
    klass = model_class(type_name)
    if klass is None:
        raise ValueError(f"no SDK model named {type_name}")
    by_json = {j: a for a, j in klass.attribute_map.items()}
    unknown = sorted(set(data) - set(by_json))
    if unknown:
        raise ValueError(f"{type_name} has no field(s) {unknown}")
    return klass(**{by_json[k]: from_dict(v, klass.openapi_types[by_json[k]])
                    for k, v in data.items()})  # fmt: skip


def inference_service(
    s: ServingSettings,
    predictor: Any,
    canary: list[Any] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    km, k8s = _models()
    obj = km.V1beta1InferenceService(
        api_version=f"{GROUP}/{VERSION}",
        kind=KIND,
        metadata=k8s.V1ObjectMeta(
            name=s.name,
            namespace=s.namespace,
            annotations={DEPLOYMENT_MODE_ANNOTATION: s.deployment_mode, **(annotations or {})},
            labels={MANAGED_BY_LABEL: MANAGED_BY},
        ),
        spec=km.V1beta1InferenceServiceSpec(predictor=predictor, canary=canary or None),
    )
    return to_dict(obj)


def mode_of(existing: Mapping[str, Any]) -> str:
    annotations = existing.get("metadata", {}).get("annotations") or {}
    return annotations.get(DEPLOYMENT_MODE_ANNOTATION) or SERVERLESS


def canary_name(storage_uri: str) -> str:
    """A RawDeployment canary's predictor name, from what it serves (stable on restart)."""
    from kfpkit.runtime.identity import step_key

    return f"canary-{step_key(storage_uri, 8)}"


def check_action(action: str, s: ServingSettings, existing: Mapping[str, Any] | None,
                 canary_percent: int) -> None:  # fmt: skip
    """ValueError for an action KServe would refuse or silently ignore."""
    if action not in ACTIONS:
        raise ValueError(f"action {action!r}: expected one of {ACTIONS}")
    if action == "canary" and not 1 <= canary_percent <= 99:
        raise ValueError(f"canary_traffic_percent must be 1-99 for a canary, got {canary_percent}")
    if action in ("canary", "promote", "rollback", "shadow") and existing is None:
        raise ValueError(
            f"action {action!r} needs the InferenceService {s.namespace}/{s.name} to exist; "
            "deploy it first with action 'apply'"
        )
    if existing is not None:
        labels = existing.get("metadata", {}).get("labels") or {}
        if labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
            raise ValueError(
                f"InferenceService {s.namespace}/{s.name} exists and is not managed by kfpkit "
                f"(label {MANAGED_BY_LABEL}={labels.get(MANAGED_BY_LABEL)!r}); it is left alone"
            )
        if mode_of(existing) != s.deployment_mode:
            raise ValueError(
                f"InferenceService {s.namespace}/{s.name} runs in {mode_of(existing)} mode; "
                f"KServe does not switch a running service to {s.deployment_mode}"
            )
    if action == "shadow" and s.deployment_mode != SERVERLESS:
        raise ValueError(
            "action 'shadow' mirrors traffic with an Istio VirtualService, which KServe uses in "
            f"Serverless mode only; the service is in {s.deployment_mode} mode"
        )
    raw_promote = s.deployment_mode == RAW and existing is not None and action == "promote"
    if raw_promote and not ((existing or {}).get("spec") or {}).get("canary"):
        raise ValueError(f"nothing to promote: {s.name} has no canary in spec.canary")


def desired(action: str, s: ServingSettings, existing: Mapping[str, Any] | None,
            canary_percent: int = 10) -> dict[str, Any]:  # fmt: skip
    """The InferenceService body for ``action`` (apply, canary, promote, rollback)."""
    check_action(action, s, existing, canary_percent)
    spec = dict((existing or {}).get("spec") or {})
    current = spec.get("predictor")
    annotations = dict((existing or {}).get("metadata", {}).get("annotations") or {})
    annotations.pop(DEPLOYMENT_MODE_ANNOTATION, None)
    new = to_dict(predictor_spec(s))
    if action == "apply":
        if current is not None and current != new:
            annotations[PREVIOUS_PREDICTOR_ANNOTATION] = json.dumps(current, sort_keys=True)
        return inference_service(s, new, annotations=annotations)
    if s.deployment_mode == SERVERLESS:
        predictor = dict(current or {})
        if action == "canary":
            if current is not None and _without_canary(current) != new:
                annotations[PREVIOUS_PREDICTOR_ANNOTATION] = json.dumps(
                    _without_canary(current), sort_keys=True
                )
            predictor = {**new, "canaryTrafficPercent": canary_percent}
        elif action == "promote":
            predictor.pop("canaryTrafficPercent", None)
        elif action == "rollback":
            predictor["canaryTrafficPercent"] = 0
        return inference_service(s, predictor, annotations=annotations)
    # RawDeployment: spec.canary, never canaryTrafficPercent
    base = _without_canary(current or {})
    canaries = list(spec.get("canary") or [])
    if action == "canary":
        named = to_dict(predictor_spec(s, name=canary_name(s.storage_uri)))
        return inference_service(
            s, base, canary=[{"predictor": named, "trafficPercent": canary_percent}],
            annotations=annotations,
        )  # fmt: skip
    if action == "promote":
        annotations[PREVIOUS_PREDICTOR_ANNOTATION] = json.dumps(base, sort_keys=True)
        return inference_service(s, canaries[0]["predictor"], annotations=annotations)
    # rollback: drop the canary; with none, return to the predictor recorded before the last
    if canaries:
        return inference_service(s, base, annotations=annotations)
    previous = annotations.pop(PREVIOUS_PREDICTOR_ANNOTATION, None)
    if previous is None:
        raise ValueError(f"nothing to roll back to: {s.name} has no canary and no recorded "
                         "previous predictor")  # fmt: skip
    return inference_service(s, json.loads(previous), annotations=annotations)


def _without_canary(predictor: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in predictor.items() if k != "canaryTrafficPercent"}


def shadow_name(name: str) -> str:
    return f"{name}-shadow"


def predictor_host(name: str, namespace: str) -> str:
    """The cluster-local host of an InferenceService's predictor (KServe's naming)."""
    return f"{name}-predictor.{namespace}.svc.cluster.local"


def virtual_service(name: str, namespace: str, mirror_percent: float) -> dict[str, Any]:
    """An Istio VirtualService mirroring ``mirror_percent`` % of the production predictor's
    in-mesh traffic to the shadow InferenceService's predictor; answers come from
    production only (Istio discards mirrored responses)."""
    if not 0 < mirror_percent <= 100:
        raise ValueError(f"mirror_percent must be in (0, 100], got {mirror_percent}")
    production = predictor_host(name, namespace)
    shadow = predictor_host(shadow_name(name), namespace)
    return {
        "apiVersion": f"{ISTIO_GROUP}/{ISTIO_VERSION}",
        "kind": "VirtualService",
        "metadata": {
            "name": f"{name}-mirror",
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY},
        },
        "spec": {
            "hosts": [production],
            "gateways": ["mesh"],
            "http": [
                {
                    "route": [{"destination": {"host": production}, "weight": 100}],
                    "mirror": {"host": shadow},
                    "mirrorPercentage": {"value": float(mirror_percent)},
                }
            ],
        },
    }
