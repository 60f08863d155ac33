"""An online experiment on the local server: the routing policy, the unit of a request, the
answered requests that feedback may name, the feedback log and the policy's saved state.

The model (``kfpkit.serving.model``) asks it which variant answers a request and tells it what
was answered; ``POST /v1/models/<name>/feedback`` is answered by :meth:`Experiment.feedback`
(``kfpkit.serving.feedback.FeedbackIntake``'s rules and files, shared with the logger sink,
plus the bandit's update).

Files, beside the request log in ``<log_dir>/<model_name>/`` (the served-traffic contract):

- ``feedback/feedback-<UTC>-<pid>-<n>.parquet``: ``request_id``, ``row``, ``label``,
  ``reward``, ``timestamp``; batched on a writer like the request log's (temporary name,
  rename);
- ``policy.json``: the routing state (:meth:`kfpkit.serving.routing.Router.state`), written
  atomically (temporary file, fsync, rename) whenever a log or feedback file is written and at
  shutdown; read back at start (a state of other variants refuses the start). A server killed
  with SIGKILL loses what was queued since the last write: requests, feedback and the counts
  of ``policy.json`` alike (SIGTERM and SIGINT flush all three).

Without ``--log-dir`` the experiment lives in memory only (feedback still moves a bandit).
Refused feedback is counted in ``kfpkit_feedback_rejected_total{reason}`` on KServe's own
Prometheus endpoint (``GET /metrics``) and in the server's status.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from kfpkit.serving import feedback, routing
from kfpkit.serving.requests import BadRequest

POLICY_FILE = "policy.json"


@dataclass(frozen=True)
class ExperimentOptions:
    """The server's experiment flags (``--variant``, ``--routing`` ...)."""

    variants: tuple[routing.VariantSpec, ...] = ()
    routing: str = "fixed"
    unit_field: str = ""
    unit_header: str = ""
    unit_salt: str | None = None  # None: the model name
    bandit: str = "thompson"
    epsilon: float = 0.1
    floor: float = 0.05
    seed: int | None = None
    schema: str = ""
    retention_seconds: float = feedback.DEFAULT_RETENTION_SECONDS
    max_requests: int = feedback.DEFAULT_MAX_REQUESTS

    def check(self) -> None:
        """What can be refused before any model is loaded."""
        if self.variants:
            routing.check_variants(self.variants)
            routing.probabilities(
                [v.name for v in self.variants], [v.weight for v in self.variants]
            )
        if self.routing not in routing.POLICIES:
            raise ValueError(
                f"--routing {self.routing!r}: expected one of {list(routing.POLICIES)}"
            )
        if self.routing == "ab" and not (self.unit_field or self.unit_header):
            raise ValueError(
                "--routing ab needs --unit-field or --unit-header (the unit whose "
                "hash picks the variant)"
            )
        if self.unit_field and self.unit_header:
            raise ValueError("give --unit-field or --unit-header, not both")


_REJECTED_METRIC: Any = None


def _rejected_metric() -> Any:
    """``kfpkit_feedback_rejected_total`` in prometheus_client's default registry (the one
    KServe's ``/metrics`` serves); created once a process."""
    global _REJECTED_METRIC
    if _REJECTED_METRIC is None:
        from prometheus_client import Counter as PrometheusCounter

        _REJECTED_METRIC = PrometheusCounter(
            "kfpkit_feedback_rejected", "Feedback requests refused, by reason", ["reason"]
        )
    return _REJECTED_METRIC


class Experiment:
    """Routing, feedback and the policy state of one served model."""

    def __init__(
        self,
        model_name: str,
        variants: Sequence[str],
        weights: Sequence[float],
        options: ExperimentOptions,
        log_dir: str | None = None,
        batch_rows: int = 10_000,
        flush_seconds: float = 5.0,
        feature_names: Sequence[str] = (),
    ):
        options.check()
        self.options = options
        self.features = set(feature_names)
        self.router = routing.Router(
            variants,
            weights,
            options.routing,
            options.bandit,
            options.epsilon,
            options.floor,
            model_name if options.unit_salt is None else options.unit_salt,
            options.seed,
        )
        self._save_lock = threading.Lock()
        folder = os.path.join(log_dir, model_name) if log_dir else None
        self.policy_path = os.path.join(folder, POLICY_FILE) if folder else None
        if self.policy_path is not None:
            self._restore_policy()
        self.intake = feedback.FeedbackIntake(
            folder,
            options.retention_seconds,
            options.max_requests,
            batch_rows,
            flush_seconds,
            after_write=self.save_policy,
            on_rejected=lambda reason: _rejected_metric().labels(reason).inc(),
        )
        self.index = self.intake.index

    @property
    def feedback_log(self) -> feedback.FeedbackLog | None:
        return self.intake.log

    def _restore_policy(self) -> None:
        """The policy state a former run saved."""
        assert self.policy_path is not None
        if os.path.exists(self.policy_path):
            try:
                with open(self.policy_path, encoding="utf-8") as f:
                    state = json.load(f)
            except (OSError, ValueError) as e:
                raise ValueError(f"{self.policy_path}: cannot read the routing state: {e}") from e
            self.router.restore(state, self.policy_path)

    # -- requests ---------------------------------------------------------------------------

    def unit_of(self, payload: Any, headers: Mapping[str, str] | None) -> tuple[Any, Any]:
        """(the request's unit value or None, the payload without a unit field that is no
        model feature). BadRequest when ``ab`` routing finds no single unit."""
        if not self.router.needs_unit:
            return None, payload
        if self.options.unit_header:
            value = (headers or {}).get(self.options.unit_header.lower())
            if not value:
                raise BadRequest(
                    f"--routing ab: the request lacks the unit header {self.options.unit_header!r}"
                )
            return value, payload
        field = self.options.unit_field
        parameters = (
            getattr(payload, "parameters", None)
            if not isinstance(payload, Mapping)
            else payload.get("parameters")
        )
        if isinstance(parameters, Mapping) and field in parameters:
            value = parameters[field]
            return (value.value if hasattr(value, "value") else value), payload
        instances = payload.get("instances") if isinstance(payload, Mapping) else None
        if (
            isinstance(instances, list)
            and instances
            and all(isinstance(i, Mapping) and field in i for i in instances)
        ):
            values = {json.dumps(i[field], sort_keys=True) for i in instances}
            if len(values) > 1:
                raise BadRequest(
                    f"--routing ab routes one unit a request: the instances carry "
                    f"{len(values)} different {field!r} values"
                )
            value = instances[0][field]
            if field not in self.features:  # the unit is no model input: drop it
                payload = {
                    **payload,
                    "instances": [{k: v for k, v in i.items() if k != field} for i in instances],
                }
            return value, payload
        raise BadRequest(
            f"--routing ab: the request has no unit {field!r} (in 'parameters', or "
            "in every instance)"
        )

    def choose(self, unit: Any) -> str:
        try:
            return self.router.choose(unit)
        except ValueError as e:
            raise BadRequest(str(e)) from None

    def served(
        self, request_id: str, variant: str, predictions: np.ndarray, received: float
    ) -> None:
        self.index.add(request_id, variant, predictions, received)

    # -- feedback ---------------------------------------------------------------------------

    def feedback(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON answer) of a feedback request; a refusal is a counted 4xx."""
        bandit = self.router.policy == "bandit"
        status, answer, accepted = self.intake.receive(body, unit_rewards=bandit)
        for _, served, reward in accepted:
            # a request of a former run's variant (its policy.json moved away) is logged only
            if reward is not None and served.variant in self.router.arms:
                self.router.reward(served.variant, reward)
        return status, answer

    # -- state ------------------------------------------------------------------------------

    def save_policy(self) -> None:
        """Writes ``policy.json`` atomically (no-op without a log folder)."""
        if self.policy_path is None:
            return
        state = {**self.router.state(), "saved_at": datetime.now(UTC).isoformat()}
        with self._save_lock:
            fd, tmp = tempfile.mkstemp(
                prefix=f".{POLICY_FILE}.", suffix=".tmp", dir=os.path.dirname(self.policy_path)
            )
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(state, f, indent=2, sort_keys=True)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.policy_path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise

    def close(self) -> None:
        """Flushes the feedback log, then saves the policy (after the request log closed)."""
        self.intake.close()
        self.save_policy()

    def status(self) -> dict[str, Any]:
        return {
            "routing": self.router.state(),
            "feedback": self.intake.status(),
        }
