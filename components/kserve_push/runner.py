"""kserve_push's runtime: infra validation first, then the action on the chosen backend.

Pure of kfp: the launcher turns the executor input into a :class:`PushRequest` and records
what :func:`push` returns. Actions that put a new model in front of traffic (apply, canary,
shadow) are infra-validated first (``infra_validation``); a model that fails is never
deployed and the step fails with the reasons. promote / rollback / delete change only
traffic or remove objects, so they deploy no new model and skip it.

``experiment_decision`` (``online_experiment``'s ``decision_value``) replaces the action:
promote -> ``promote``, rollback -> ``rollback``, continue -> nothing changes (reported).
``experiment`` and ``bandit`` act on an experiment's InferenceGraph (``experiment.py``):
its variants are InferenceServices deployed (and infra-validated) by earlier ``apply``s.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from kfpkit.components.kserve_push import defaults, experiment, infra_validation, isvc
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
    canary_traffic_percent: int = defaults.CANARY_TRAFFIC_PERCENT
    mirror_percent: float = defaults.MIRROR_PERCENT
    timeout_seconds: float = defaults.TIMEOUT_SECONDS
    infra_validation_rows: int = defaults.INFRA_VALIDATION_ROWS
    owner: str = "kfpkit"
    kubeconfig: str = ""
    experiment_decision: str = ""  # online_experiment's: promote | rollback | continue
    variant_weights: dict[str, float] = field(default_factory=dict)  # experiment
    sticky: bool = defaults.STICKY  # experiment: the header-matching VirtualService
    served_logs: str = ""  # bandit: the log folder / gs:// folder its feedback is read from
    bandit_floor: float = defaults.BANDIT_FLOOR  # bandit: the least share a variant keeps


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
    decision: str = ""  # the experiment decision taken, when one was given
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


def decided_action(request: PushRequest) -> str | None:
    """The action to take: ``action``, or the one ``experiment_decision`` asks for (None:
    ``continue``, nothing changes)."""
    if not request.experiment_decision:
        return request.action
    return experiment.action_for_decision(request.experiment_decision)


def check_request(request: PushRequest) -> None:
    """ValueError naming the first bad value, before anything starts."""
    if request.backend not in BACKENDS:
        raise ValueError(f"backend {request.backend!r}: expected one of {BACKENDS}")
    actions = isvc.ACTIONS + isvc.EXPERIMENT_ACTIONS
    if request.action not in actions:
        raise ValueError(f"action {request.action!r}: expected one of {actions}")
    check_model_name(request.settings.name)
    if request.experiment_decision:
        decided_action(request)  # names a bad decision
        if request.backend != "kserve":
            raise ValueError("experiment_decision needs backend 'kserve' (a canary on a cluster)")
        request.settings.check()  # as for promote / rollback given as the action
        return
    if request.action in isvc.EXPERIMENT_ACTIONS:
        if request.backend != "kserve":
            raise ValueError(f"action {request.action!r} needs backend 'kserve'")
        if request.action == "experiment":
            experiment.check_experiment(request.settings.name, request.settings.namespace,
                                        request.variant_weights)  # fmt: skip
        elif not request.served_logs:
            raise ValueError(
                "action 'bandit' needs served_logs: the folder (or gs:// folder) "
                "the log sink writes the experiment's traffic and feedback to"
            )
        if not 0 <= request.bandit_floor <= 0.5:
            raise ValueError(f"bandit_floor must be in [0, 0.5], got {request.bandit_floor}")
        return
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


def _experiment(request: PushRequest, result: PushResult) -> PushResult:
    """``experiment``: the graph (and sticky VirtualService) over the variants;
    ``bandit``: the Splitter's weights from the feedback logged so far."""
    from kfpkit.jobs import kube
    from kfpkit.serving.served_logs import read_served

    s = request.settings
    experiments = experiment.Experiments(kube.api_client(request.kubeconfig))
    if request.action == "experiment":
        state = experiments.start(s.name, s.namespace, request.variant_weights, request.owner,
                                  sticky=request.sticky, deployment_mode=s.deployment_mode,
                                  timeout=request.timeout_seconds)  # fmt: skip
    else:
        graph = experiments.graphs.find(s.namespace, s.name)
        if graph is None:
            raise ValueError(f"no InferenceGraph {s.namespace}/{s.name}: start the experiment "
                             "first (action 'experiment')")  # fmt: skip
        variants = list(experiment.splitter_weights(graph))
        update = experiment.bandit_weights(read_served(request.served_logs), variants,
                                           floor=request.bandit_floor)  # fmt: skip
        state = experiments.set_weights(s.name, s.namespace, update.shares, minimum=1,
                                        timeout=request.timeout_seconds)  # fmt: skip
        result.traffic = [{"variant": v, "percent": state.weights[v],
                           "feedback_rows": update.rewarded[v]} for v in variants]  # fmt: skip
    result.endpoint_url = state.url
    result.objects = state.objects
    result.traffic = result.traffic or state.traffic()
    result.summary = summary_markdown(result, s.name)
    return result


def summary_markdown(result: PushResult, name: str) -> str:
    lines = [f"# kserve_push: `{result.action}` of `{name}` ({result.backend})", ""]
    if result.decision:
        taken = "no change" if result.action == "none" else f"action `{result.action}`"
        lines += [f"online_experiment's decision `{result.decision}`: {taken}.", ""]
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
    action = decided_action(request)
    result = PushResult(action or "none", request.backend, decision=request.experiment_decision)
    name = request.settings.name
    if action is None:  # online_experiment says continue: the canary keeps its share
        result.summary = summary_markdown(result, name)
        return result
    if action in isvc.EXPERIMENT_ACTIONS:
        return _experiment(request, result)
    if action in DEPLOYING_ACTIONS:
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
            action, request.settings, request.owner, request.timeout_seconds,
            canary_percent=request.canary_traffic_percent, mirror_percent=request.mirror_percent,
        )  # fmt: skip
        result.endpoint_url = deployment.endpoint_url
        result.revision = deployment.revision
        result.traffic = deployment.traffic
        result.objects = deployment.objects
        if action == "delete":  # an experiment of that name goes too (its variants stay)
            result.objects += experiment.Experiments(pusher.services.api.api_client).stop(
                request.settings.name, request.settings.namespace
            )
    result.summary = summary_markdown(result, name)
    return result
