"""Waiting on remote work, whatever runs it (Kubernetes objects, KFP runs, Vertex jobs).

One loop for every backend: fetch the remote object, let the caller judge it (done, failed
with the service's reason, or still pending), sleep the poll interval, give up at the timeout.
A step being stopped (:class:`~kfpkit.runtime.executor.Cancelled`, raised by
SIGTERM in the main thread) cancels the remote work before the step ends, so a terminated
pipeline run leaves nothing running on the service.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from kfpkit.runtime.executor import Cancelled

_log = logging.getLogger("kfpkit")
T = TypeVar("T")

State = Literal["done", "failed", "pending"]


@dataclass(frozen=True)
class Progress:
    """What a check function concludes from one fetched object."""

    state: State
    reason: str = ""  # the service's reason when failed; a short status note when pending

    @classmethod
    def done(cls, note: str = "") -> Progress:
        return cls("done", note)

    @classmethod
    def failed(cls, reason: str) -> Progress:
        return cls("failed", reason or "no reason given")

    @classmethod
    def pending(cls, note: str = "") -> Progress:
        return cls("pending", note)


class RemoteJobFailed(RuntimeError):
    """The service reports the job failed; the message carries the service's reason."""

    def __init__(self, what: str, reason: str):
        super().__init__(f"{what} failed: {reason}")
        self.reason = reason


class RemoteJobTimeout(RuntimeError):
    """The job did not finish within the step's timeout."""


def check_wait_settings(poll_interval: float, timeout: float) -> None:
    """ValueError naming a poll interval or timeout that cannot work."""
    if not poll_interval > 0:
        raise ValueError(f"poll_interval must be > 0 seconds, not {poll_interval!r}")
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, not {timeout!r}")


def wait_for(
    fetch: Callable[[], T],
    check: Callable[[T], Progress],
    *,
    what: str,
    poll_interval: float,
    timeout: float,
    cancel: Callable[[], None] | None = None,
    cancel_on_timeout: bool = True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Polls ``fetch()`` until ``check`` says done; returns that last fetched object.

    Raises :class:`RemoteJobFailed` (a RuntimeError) with the reason ``check`` gives,
    :class:`RemoteJobTimeout` after ``timeout`` seconds. ``cancel`` is called when the step is
    cancelled (then ``Cancelled`` propagates) and, with ``cancel_on_timeout``, on a timeout, so
    the service stops spending resources on a job nobody waits for. ``fetch`` should retry
    transient errors itself; anything it raises ends the wait (and does not cancel: the job
    may be fine, only our view of it is lost, and a restarted step resumes it).
    """
    check_wait_settings(poll_interval, timeout)
    deadline = clock() + timeout
    last_note = None
    try:
        while True:
            obj = fetch()
            progress = check(obj)
            if progress.state == "done":
                return obj
            if progress.state == "failed":
                raise RemoteJobFailed(what, progress.reason)
            if progress.reason != last_note:
                _log.info("%s: %s", what, progress.reason or "pending")
                last_note = progress.reason
            remaining = deadline - clock()
            if remaining <= 0:
                if cancel is not None and cancel_on_timeout:
                    _cancel(cancel, what)
                raise RemoteJobTimeout(
                    f"{what} did not finish within {timeout:g} s (last state: "
                    f"{progress.reason or 'pending'})"
                )
            sleep(min(poll_interval, remaining))
    except Cancelled:
        if cancel is not None:
            _log.warning("%s: step cancelled, cancelling the remote job", what)
            _cancel(cancel, what)
        raise


def _cancel(cancel: Callable[[], None], what: str) -> None:
    # A failed cancel must not hide why we cancelled; it is logged, the original error wins.
    try:
        cancel()
    except Exception as e:  # noqa: BLE001
        _log.error("%s: cancelling failed: %s", what, e)
