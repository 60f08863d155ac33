"""Feedback on served predictions: the body of ``POST /v1/models/<name>/feedback``, checked
against the requests this server answered, and the reward it gives the routing policy.

A feedback item is ``{"request_id": str, "row": int (default 0), "label": 0 | 1}`` and / or
``"reward": float``; a body is one item or ``{"feedback": [item, ...]}`` (all or nothing: one
bad item refuses the batch, naming it). Each problem is a :class:`Rejected` with its HTTP status
and a ``reason`` (the label of ``kfpkit_feedback_rejected_total``): ``bad_body``,
``missing_field``, ``unknown_field``, ``bad_label``, ``bad_reward``, ``bad_row`` (400),
``unknown_request`` (404), ``expired_request`` (410), ``duplicate`` (409).

:class:`ServedIndex` remembers the requests answered in the last ``retention_seconds`` (at most
``max_requests`` of them, oldest forgotten first): variant, predictions and which rows already
have feedback. It lives in memory and is rebuilt at start from what is on disk: the request log
(``request_id``, ``row``, ``prediction``, ``variant``, ``timestamp``) and the feedback files of
the retention window, so feedback for a request answered before a restart is accepted, and a
second feedback for one row is refused across restarts too.

The reward of a row for the bandit: the ``reward`` sent, else 1.0 when the label agrees with
the predicted class (probability >= 0.5), 0.0 when not.

:class:`FeedbackIntake` is the endpoint's one implementation, used by the local server
(``kfpkit.serving.experiment``, which adds the bandit's update) and by KServe's logger sink
(``kfpkit.serving.logger_sink``): a body in, a status and answer out, every refusal counted by
reason, accepted rows written by :class:`FeedbackLog` to
``<log_dir>/<model_name>/feedback/feedback-<UTC>-<pid>-<n>.parquet`` (``request_id``, ``row``,
``label``, ``reward``, ``timestamp``: what ``kfpkit.serving.served_logs.read_served`` joins).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import os
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from kfpkit.serving.request_log import ParquetBatchWriter
from kfpkit.serving.served_logs import (
    FEEDBACK_COLUMNS,
    FEEDBACK_FOLDER,
    REQUEST_FILES,
    read_served,
)

_log = logging.getLogger("kfpkit")

FIELDS = {"request_id", "row", "label", "reward"}
MAX_ITEMS = 10_000  # feedback items in one body
THRESHOLD = 0.5  # a probability at or above it predicts class 1
DEFAULT_RETENTION_SECONDS = 24 * 3600.0
DEFAULT_MAX_REQUESTS = 1_000_000
REASONS = (
    "bad_body",
    "missing_field",
    "unknown_field",
    "bad_label",
    "bad_reward",
    "bad_row",
    "unknown_request",
    "expired_request",
    "duplicate",
)


class Rejected(ValueError):
    """Feedback refused: an HTTP status, a metric label and a message naming the bad value."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class Feedback:
    request_id: str
    row: int
    label: float | None
    reward: float | None


def parse(body: Any, max_items: int = MAX_ITEMS) -> list[Feedback]:
    """The feedback items of a request body (JSON already decoded)."""
    if isinstance(body, Mapping) and "feedback" in body:
        extra = sorted(set(body) - {"feedback"})
        if extra:
            raise Rejected(
                400, "unknown_field", f"unknown top-level key(s) {extra} beside 'feedback'"
            )
        items = body["feedback"]
        if not isinstance(items, list) or not items:
            raise Rejected(400, "bad_body", "'feedback' must be a non-empty list of items")
        if len(items) > max_items:
            raise Rejected(
                400, "bad_body", f"'feedback' has {len(items)} items; at most {max_items} a request"
            )
        return [_item(item, f"feedback item {i}") for i, item in enumerate(items)]
    return [_item(body, "feedback")]


def _item(item: Any, where: str) -> Feedback:
    if not isinstance(item, Mapping):
        raise Rejected(
            400,
            "bad_body",
            f'{where} must be an object {{"request_id": ..., '
            f'"row": 0, "label": 0 or 1}}, got {_show(item)}',
        )
    unknown = sorted(set(item) - FIELDS)
    if unknown:
        raise Rejected(
            400,
            "unknown_field",
            f"{where} has unknown field(s) {unknown}; expected {sorted(FIELDS)}",
        )
    request_id = item.get("request_id")
    if request_id is None:
        raise Rejected(400, "missing_field", f"{where} lacks 'request_id'")
    if not isinstance(request_id, str) or not request_id:
        raise Rejected(
            400,
            "missing_field",
            f"{where}: 'request_id' must be a non-empty string, got {_show(request_id)}",
        )
    row = item.get("row", 0)
    if type(row) is not int or row < 0:  # a bool is not a row
        raise Rejected(400, "bad_row", f"{where}: 'row' must be an integer >= 0, got {_show(row)}")
    label, reward = item.get("label"), item.get("reward")
    if label is None and reward is None:
        raise Rejected(400, "missing_field", f"{where} has neither 'label' (0 or 1) nor 'reward'")
    if label is not None and (type(label) not in (int, float) or label not in (0, 1)):
        raise Rejected(400, "bad_label", f"{where}: 'label' must be 0 or 1, got {_show(label)}")
    if reward is not None and (type(reward) not in (int, float) or not math.isfinite(reward)):
        raise Rejected(
            400, "bad_reward", f"{where}: 'reward' must be a finite number, got {_show(reward)}"
        )
    return Feedback(
        request_id,
        row,
        None if label is None else float(label),
        None if reward is None else float(reward),
    )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "..."


@dataclass
class Served:
    """One answered request, as feedback needs it."""

    variant: str
    predictions: np.ndarray
    served_at: float  # time.time()
    answered_rows: set[int] = field(default_factory=set)


class ServedIndex:
    """The requests answered recently, by request id (thread-safe)."""

    def __init__(
        self,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        max_requests: int = DEFAULT_MAX_REQUESTS,
    ):
        if retention_seconds <= 0 or max_requests < 1:
            raise ValueError(
                f"feedback retention must be > 0 s and max requests >= 1, got "
                f"{retention_seconds}, {max_requests}"
            )
        self.retention_seconds = retention_seconds
        self.max_requests = max_requests
        self._served: OrderedDict[str, Served] = OrderedDict()  # oldest first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._served)

    def __contains__(self, request_id: str) -> bool:
        with self._lock:
            return request_id in self._served

    def add(
        self, request_id: str, variant: str, predictions: np.ndarray, served_at: float | None = None
    ) -> None:
        served_at = time.time() if served_at is None else served_at
        with self._lock:
            self._served[request_id] = Served(variant, predictions, served_at)
            self._forget(time.time())

    def _forget(self, now: float) -> None:
        cutoff = now - self.retention_seconds
        served = self._served
        while served and (
            len(served) > self.max_requests or next(iter(served.values())).served_at < cutoff
        ):
            served.popitem(last=False)

    def accept(
        self, items: Iterable[Feedback], now: float | None = None, unit_rewards: bool = False
    ) -> list[tuple[Feedback, Served, float | None]]:
        """Checks every item (all or nothing), marks their rows answered and returns each
        with its request and the row's reward in [0, 1] (None: a reward outside it, refused
        when ``unit_rewards``: a bandit learns from rewards in [0, 1] only)."""
        now = time.time() if now is None else now
        with self._lock:
            accepted = []
            seen: set[tuple[str, int]] = set()
            for item in items:
                served = self._served.get(item.request_id)
                if served is None:
                    raise Rejected(
                        404,
                        "unknown_request",
                        f"request id {item.request_id!r} is unknown: not answered by "
                        f"this server in the last {self.retention_seconds:g} s "
                        "(the feedback retention), or never",
                    )
                if served.served_at < now - self.retention_seconds:
                    raise Rejected(
                        410,
                        "expired_request",
                        f"request id {item.request_id!r} was answered "
                        f"{now - served.served_at:.0f} s ago, beyond the feedback "
                        f"retention of {self.retention_seconds:g} s",
                    )
                rows = len(served.predictions)
                if item.row >= rows:
                    raise Rejected(
                        400,
                        "bad_row",
                        f"request {item.request_id!r} had {rows} "
                        f"row(s); there is no row {item.row}",
                    )
                key = (item.request_id, item.row)
                if item.row in served.answered_rows or key in seen:
                    raise Rejected(
                        409,
                        "duplicate",
                        f"request {item.request_id!r} row {item.row} already has feedback",
                    )
                seen.add(key)
                reward = reward_of(item, served.predictions[item.row])
                if reward is None and unit_rewards:
                    raise Rejected(
                        400,
                        "bad_reward",
                        f"request {item.request_id!r} row "
                        f"{item.row}: the bandit takes rewards in "
                        f"[0, 1], got {item.reward}",
                    )
                accepted.append((item, served, reward))
            for item, served, _ in accepted:
                served.answered_rows.add(item.row)
            return accepted

    def restore(
        self, requests: Mapping[str, np.ndarray], answered: Mapping[str, np.ndarray]
    ) -> None:
        """Rebuilds the index from logged columns: ``requests`` (``request_id``, ``row``,
        ``prediction``, ``variant``, ``timestamp`` as seconds) and ``answered`` (``request_id``,
        ``row`` of the feedback files)."""
        ids, rows = requests["request_id"], requests["row"]
        order = np.lexsort((rows, requests["timestamp"]))  # oldest request first, rows in order
        with self._lock:
            for i in order:
                request_id = str(ids[i])
                served = self._served.get(request_id)
                if served is None:
                    served = self._served[request_id] = Served(
                        str(requests["variant"][i]), np.zeros(0), float(requests["timestamp"][i])
                    )
                served.predictions = np.append(served.predictions, requests["prediction"][i])
            for request_id, row in zip(answered["request_id"], answered["row"], strict=True):
                if str(request_id) in self._served:
                    self._served[str(request_id)].answered_rows.add(int(row))
            self._forget(time.time())


def reward_of(item: Feedback, prediction: float) -> float | None:
    """The bandit's reward for one row (see the module docstring)."""
    if item.reward is not None:
        return item.reward if 0.0 <= item.reward <= 1.0 else None
    assert item.label is not None
    return float((prediction >= THRESHOLD) == (item.label == 1.0))


class FeedbackLog(ParquetBatchWriter):
    """Accepted feedback rows as Parquet files (the contract's feedback columns)."""

    prefix = "feedback"
    schema = pa.schema([pa.field(n, t) for n, t in FEEDBACK_COLUMNS.items()])

    def table(self, entries: list[tuple[Feedback, float]]) -> pa.Table:
        return pa.Table.from_pydict(
            {
                "request_id": [f.request_id for f, _ in entries],
                "row": [f.row for f, _ in entries],
                "label": [f.label for f, _ in entries],
                "reward": [f.reward for f, _ in entries],
                "timestamp": [int(t * 1e6) for _, t in entries],
            },
            schema=self.schema,
        )


Accepted = tuple[Feedback, Served, float | None]


def has_request_log(folder: str) -> bool:
    """Whether ``folder`` holds request log files (what feedback may name)."""
    return os.path.isdir(folder) and any(
        fnmatch.fnmatch(name, REQUEST_FILES) for name in os.listdir(folder)
    )


class FeedbackIntake:
    """The feedback of one model: the requests it may name, the refusals by reason, the
    accepted rows' files.

    With a ``folder`` (``<log_dir>/<model_name>``) the index is first rebuilt from the request
    and feedback files of the retention window there (a restart keeps taking feedback, and
    keeps refusing a second one for a row), and accepted rows are written under
    ``<folder>/feedback/`` (made by the first); without one, feedback is checked and counted
    only.

    Args:
        folder: the model's log folder, or None.
        retention_seconds: how long an answered request takes feedback.
        max_requests: answered requests remembered (oldest forgotten first).
        batch_rows: feedback rows a file at most.
        flush_seconds: the longest an accepted row waits to be written.
        after_write: called after each feedback file is written.
        on_rejected: called with the reason of each refusal (e.g. a Prometheus counter).
        restore: False: start with no requests remembered (the folder is not read).

    Raises:
        ValueError: the folder's logs cannot be read back (e.g. files of two schemas).
    """

    def __init__(
        self,
        folder: str | None = None,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        batch_rows: int = 10_000,
        flush_seconds: float = 5.0,
        after_write: Callable[[], None] | None = None,
        on_rejected: Callable[[str], None] | None = None,
        restore: bool = True,
    ):
        self.index = ServedIndex(retention_seconds, max_requests)
        self.folder = folder
        self.rejected: Counter[str] = Counter()
        self.accepted = 0
        self._on_rejected = on_rejected
        self._log_settings = (batch_rows, flush_seconds, after_write)
        self._count_lock = threading.Lock()
        self._closed = False
        self.log: FeedbackLog | None = None  # opened by the first accepted feedback
        if folder is not None and restore:
            self.restore()

    def restore(self) -> None:
        """Remembers the requests of the retention window logged in the folder, and which of
        their rows have feedback already."""
        folder = self.folder
        if folder is None or not has_request_log(folder):
            return
        start = datetime.now(UTC) - timedelta(seconds=self.index.retention_seconds)
        table = read_served(folder, start=start)
        if table.num_rows == 0:
            return
        seconds = table["timestamp"].cast(pa.int64()).to_numpy() / 1e6
        answered = table.filter(table["feedback_timestamp"].is_valid())
        self.index.restore(
            {
                "request_id": table["request_id"].to_numpy(zero_copy_only=False),
                "row": table["row"].to_numpy(),
                "prediction": table["prediction"].to_numpy(zero_copy_only=False),
                "variant": table["variant"].to_numpy(zero_copy_only=False),
                "timestamp": seconds,
            },
            {
                "request_id": answered["request_id"].to_numpy(zero_copy_only=False),
                "row": answered["row"].to_numpy(),
            },
        )
        _log.info("feedback: %d request(s) of the last %g s from %s (%s)", len(self.index),
                  self.index.retention_seconds, folder, REQUEST_FILES)  # fmt: skip

    def receive(self, body: bytes, unit_rewards: bool = False) -> tuple[int, dict, list[Accepted]]:
        """(HTTP status, JSON answer, the accepted items with their request and reward) of a
        feedback request body; a refusal is a counted 4xx and accepts nothing."""
        try:
            try:
                decoded = json.loads(body)
            except ValueError as e:
                raise Rejected(400, "bad_body", f"the body is not JSON: {e}") from None
            now = time.time()
            accepted = self.index.accept(parse(decoded), now, unit_rewards)
        except Rejected as e:
            with self._count_lock:
                self.rejected[e.reason] += 1
            if self._on_rejected is not None:
                self._on_rejected(e.reason)
            return e.status, {"error": str(e), "reason": e.reason}, []
        with self._count_lock:
            self.accepted += len(accepted)
            if self.log is None and self.folder is not None and not self._closed:
                self.log = FeedbackLog(os.path.join(self.folder, FEEDBACK_FOLDER),
                                       *self._log_settings)  # fmt: skip
        if self.log is not None:
            for item, _, _ in accepted:
                self.log.record((item, now))
        return 200, {"accepted": len(accepted)}, accepted

    def close(self) -> None:
        """Writes the feedback still queued."""
        with self._count_lock:
            self._closed = True
        if self.log is not None:
            self.log.close()

    def status(self) -> dict[str, Any]:
        with self._count_lock:
            accepted, rejected = self.accepted, dict(self.rejected)
        return {
            "accepted": accepted,
            "rejected": rejected,
            "requests_remembered": len(self.index),
            "retention_seconds": self.index.retention_seconds,
            "rows_written": self.log.rows_written if self.log else 0,
            "errors": self.log.errors if self.log else 0,
        }
