"""kserve_push's runtime: infra validation first, then the action on the chosen backend.

Pure of kfp: the launcher turns the executor input into a :class:`PushRequest` and records
what :func:`push` returns. Actions that put a new model in front of traffic (apply, canary,
shadow) are infra-validated first (``infra_validation``); a model that fails is never
deployed and the step fails with the reasons. promote / rollback / delete change only
traffic or remove objects, so they deploy no new model and skip it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from kfpkit.components.kserve_push import infra_validation, isvc
from kfpkit.runtime.model_versions import versions
from kfpkit.serving.server import check_model_name

_log = logging.getLogger("kfpkit")

BACKENDS = ("local", "kserve")
DEPLOYING_ACTIONS = ("apply", "canary", "shadow")
LOCAL_PORT = 8080


@dataclass(frozen=True)
class PushRequest:
    action: str
    backend: str
    settings: isvc.ServingSettings
    model_path: str | None  # local path of the model artifact (version folders under it)
    test_path: str | None
    canary_traffic_percent: int = 10
    mirror_percent: float = 100.0
    timeout_seconds: float = 900.0
    infra_validation_rows: int = infra_validation.DEFAULT_ROWS
    owner: str = "kfpkit"
    kubeconfig: str = ""


@dataclass
class PushResult:
    action: str
    backend: str
    endpoint_url: str = ""
    revision: str = ""
    traffic: list[dict[str, Any]] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    validation: infra_validation.InfraValidation | None = None
    serve_command: str = ""
    summary: str = ""

    def metadata(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k not in ("summary", "validation")}
        if self.validation is not None:
            data["infra_validation"] = self.validation.metrics()
        return data


def storage_uri(model_uri: str, metadata: dict[str, Any]) -> str:
    """Where the cluster reads the model: the folder holding the numbered version folders.

    A ``publish_model`` output names its version folder in ``published_uri``: its parent is
    the serving directory (KServe's TensorFlow runtime serves the highest version there).
    """
    published = str(metadata.get("published_uri") or "")
    if published:
        return published.rstrip("/").rsplit("/", 1)[0]
    return model_uri.rstrip("/")


def check_request(request: PushRequest) -> None:
    """ValueError naming the first bad value, before anything starts."""
    if request.backend not in BACKENDS:
        raise ValueError(f"backend {request.backend!r}: expected one of {BACKENDS}")
    if request.action not in isvc.ACTIONS:
        raise ValueError(f"action {request.action!r}: expected one of {isvc.ACTIONS}")
    check_model_name(request.settings.name)
    if request.backend == "local" and request.action != "apply":
        raise ValueError(
            f"action {request.action!r} needs backend 'kserve' (a cluster): locally a step "
            "validates the model and says how to serve it (kfpkit serve)"
        )
    if request.action in DEPLOYING_ACTIONS:
        if not request.model_path or not versions(request.model_path):
            raise ValueError(
                f"action {request.action!r} needs a model with <version>/saved_model.pb "
                f"folders; got {request.model_path!r}"
            )
        if not request.test_path:
            raise ValueError(
                f"action {request.action!r} needs test_data: the model is infra-validated on "
                "rows of it before it is deployed"
            )
    if request.infra_validation_rows < 1:
        raise ValueError(f"infra_validation_rows must be >= 1, got {request.infra_validation_rows}")
    if request.backend == "kserve":
        request.settings.check()


def summary_markdown(result: PushResult, name: str) -> str:
    lines = [f"# kserve_push: `{result.action}` of `{name}` ({result.backend})", ""]
    v = result.validation
    if v is not None:
        lines += ["## Infra validation", "",
                  f"**{'passed' if v.passed else 'FAILED'}** on {v.rows} test rows: KServe's "
                  f"model server started in {v.start_seconds:.1f} s.", "",
                  "| protocol | p50 ms | p99 ms | max abs difference vs in-process |",
                  "|---|---|---|---|"]  # fmt: skip
        for protocol, latency in sorted(v.latency_ms.items()):
            diff = v.max_abs_difference.get(protocol)
            lines.append(f"| {protocol} | {latency['p50']:.2f} | {latency['p99']:.2f} | "
                         f"{'' if diff is None else f'{diff:.2e}'} |")  # fmt: skip
        lines += [f"- {reason}" for reason in v.reasons]
        lines.append("")
    lines += ["## Deployment", ""]
    if result.endpoint_url:
        lines.append(f"- endpoint: `{result.endpoint_url}`")
    if result.revision:
        lines.append(f"- revision: `{result.revision}`")
    for t in result.traffic:
        lines.append("- traffic: " + ", ".join(f"{k}={t[k]}" for k in t))
    for obj in result.objects:
        lines.append(f"- object: `{obj}`")
    if result.serve_command:
        lines.append(f"- serve it locally: `{result.serve_command}`")
    return "\n".join(lines) + "\n"


def push(request: PushRequest) -> PushResult:
    check_request(request)
    result = PushResult(request.action, request.backend)
    name = request.settings.name
    if request.action in DEPLOYING_ACTIONS:
        assert request.model_path is not None and request.test_path is not None
        result.validation = infra_validation.validate(
            request.model_path, request.test_path, name, rows=request.infra_validation_rows
        )
        if not result.validation.passed:
            raise RuntimeError(
                f"model {name!r} failed infra validation and was not deployed: "
                + "; ".join(result.validation.reasons)
            )
    if request.backend == "local":
        model_dir = os.path.abspath(request.model_path or "")
        result.endpoint_url = f"http://127.0.0.1:{LOCAL_PORT}/v1/models/{name}:predict"
        result.revision = str(versions(model_dir)[-1])
        result.traffic = [{"revision": result.revision, "percent": 100}]
        result.serve_command = f"kfpkit serve {model_dir} --name {name} --port {LOCAL_PORT}"
    else:
        from kfpkit.components.kserve_push.deploy import Pusher
        from kfpkit.jobs import kube

        pusher = Pusher(kube.api_client(request.kubeconfig))
        deployment = pusher.push(
            request.action, request.settings, request.owner, request.timeout_seconds,
            canary_percent=request.canary_traffic_percent, mirror_percent=request.mirror_percent,
        )  # fmt: skip
        result.endpoint_url = deployment.endpoint_url
        result.revision = deployment.revision
        result.traffic = deployment.traffic
        result.objects = deployment.objects
    result.summary = summary_markdown(result, name)
    return result
