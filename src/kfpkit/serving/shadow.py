"""Shadow serving: a candidate model answers every request too, off the client's path.

The primary model answers the client; the request's features and the primary's answer are
then queued for one worker thread, which calls the candidate and compares. The client never
waits for the candidate and never sees its errors. The agreement report counts requests and
rows compared, rows where both models predict the same class (probability >= threshold),
and the absolute probability difference (mean, max); candidate failures are counted with
the last error message.

Limits: the queue holds at most ``max_queued`` requests; beyond that (a candidate slower than
the traffic) requests are dropped from the comparison and counted as ``dropped``, so memory
stays bounded. The candidate must take a subset of the primary's features (it sees exactly
the requests the primary accepted).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kfpkit.tabular import FeatureSpec

_log = logging.getLogger("kfpkit")
_STOP = object()

Predict = Callable[[dict[str, np.ndarray]], np.ndarray]


@dataclass
class Agreement:
    """Running comparison of candidate and primary answers."""

    threshold: float = 0.5
    mirrored_requests: int = 0
    requests: int = 0
    rows: int = 0
    same_class: int = 0
    abs_difference_sum: float = 0.0
    max_abs_difference: float = 0.0
    failed_requests: int = 0
    dropped_requests: int = 0
    last_error: str = ""

    def add(self, primary: np.ndarray, candidate: np.ndarray) -> None:
        diff = np.abs(primary - candidate)
        self.requests += 1
        self.rows += len(primary)
        self.same_class += int(np.sum((primary >= self.threshold) == (candidate >= self.threshold)))
        self.abs_difference_sum += float(diff.sum())
        self.max_abs_difference = max(self.max_abs_difference, float(diff.max(initial=0.0)))

    def report(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "requests_mirrored": self.mirrored_requests,
            "requests_compared": self.requests,
            "rows_compared": self.rows,
            "same_class_rows": self.same_class,
            "class_agreement": self.same_class / self.rows if self.rows else None,
            "abs_difference_sum": self.abs_difference_sum,
            "mean_abs_difference": self.abs_difference_sum / self.rows if self.rows else None,
            "max_abs_difference": self.max_abs_difference if self.rows else None,
            "failed_requests": self.failed_requests,
            "dropped_requests": self.dropped_requests,
            "last_error": self.last_error,
        }


def check_candidate_features(
    primary: Sequence[FeatureSpec], candidate: Sequence[FeatureSpec]
) -> None:
    """ValueError when the candidate needs a feature the primary does not take, or reads
    one differently (numeric vs categorical): every mirrored request would fail."""
    kinds = {s.name: s.kind for s in primary}
    extra = sorted(s.name for s in candidate if s.name not in kinds)
    if extra:
        raise ValueError(
            f"shadow candidate takes feature(s) {extra} that the primary model does not; "
            f"clients send only {sorted(kinds)}"
        )
    differ = sorted(s.name for s in candidate if kinds[s.name] != s.kind)
    if differ:
        raise ValueError(f"shadow candidate reads feature(s) {differ} as another kind")


class Shadow:
    """Mirrors answered requests to a candidate on a worker thread and keeps the agreement."""

    def __init__(
        self,
        predict: Predict,
        feature_names: Sequence[str],
        on_answer: Callable[[dict[str, np.ndarray], np.ndarray, Any], None] | None = None,
        threshold: float = 0.5,
        max_queued: int = 10_000,
    ):
        self._predict = predict
        self._names = list(feature_names)
        self._on_answer = on_answer  # e.g. the candidate's own request log
        self.agreement = Agreement(threshold=threshold)
        self._queue: queue.Queue = queue.Queue(maxsize=max_queued)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="kfpkit-shadow", daemon=True)
        self._thread.start()

    def mirror(self, features: dict[str, np.ndarray], primary: np.ndarray, context: Any) -> None:
        """Queues one answered request for the candidate; never blocks the caller."""
        with self._lock:
            self.agreement.mirrored_requests += 1
        try:
            self._queue.put_nowait((features, primary, context))
        except queue.Full:
            with self._lock:
                self.agreement.dropped_requests += 1

    def report(self) -> dict[str, Any]:
        with self._lock:
            return self.agreement.report()

    def drain(self, timeout: float = 60.0) -> None:
        """Waits until every queued request has been compared (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self, timeout: float = 60.0) -> None:
        self.drain(timeout)
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                features, primary, context = item
                try:
                    answer = self._predict({n: features[n] for n in self._names})
                    if answer.shape != primary.shape:
                        raise RuntimeError(
                            f"candidate answered {answer.shape} for {primary.shape} rows"
                        )
                except Exception as e:  # noqa: BLE001 - a candidate's failure is data here
                    with self._lock:
                        self.agreement.failed_requests += 1
                        self.agreement.last_error = f"{type(e).__name__}: {e}"[:500]
                    continue
                with self._lock:
                    self.agreement.add(primary, answer)
                if self._on_answer is not None:
                    self._on_answer(features, answer, context)
            finally:
                self._queue.task_done()
