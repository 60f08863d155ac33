"""A total deadline for a block of remote calls, whatever the client library does inside it.

Client libraries bound single requests at best (aiplatform's REST calls have no read timeout
by default, kfp.Client none at all, and their retries add up): a service that accepts the TCP
connection and never answers holds them for ever. :func:`deadline` bounds the whole block:
in the main thread an interval timer (SIGALRM) raises :class:`DeadlineExceeded` wherever the
block is, a blocked socket read included; every socket the block opens also gets a timeout of
at most what is left, so off the main thread each read is bounded too.
"""

from __future__ import annotations

import contextlib
import math
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any


class DeadlineExceeded(RuntimeError):
    """The block did not finish in time (a system error: the service did not answer).

    Not an ``OSError``: libraries that retry socket errors do not catch and retry it."""


def check_timeout(timeout: float, what: str = "timeout") -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise ValueError(f"{what} must be a number of seconds > 0, not {timeout!r}")
    if not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"{what} must be a number of seconds > 0, not {timeout!r}")
    return float(timeout)


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """Runs the block within ``seconds`` or raises :class:`DeadlineExceeded` naming ``what``.

    Nests: an inner deadline never extends an outer one. The previous SIGALRM handler, timer
    and default socket timeout are restored on exit."""
    seconds = check_timeout(seconds)
    message = f"{what} did not answer within {seconds:g} s (a total deadline)"
    previous_socket_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(
        seconds if previous_socket_timeout is None else min(seconds, previous_socket_timeout)
    )
    if threading.current_thread() is not threading.main_thread():
        try:
            yield
        finally:
            socket.setdefaulttimeout(previous_socket_timeout)
        return

    def expire(_signum: int, _frame: Any) -> None:
        raise DeadlineExceeded(message)

    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)
    started = time.monotonic()
    previous_handler = signal.signal(signal.SIGALRM, expire)
    if outer_left and outer_left < seconds:  # the outer deadline comes first: keep it
        signal.signal(signal.SIGALRM, previous_handler)
    signal.setitimer(signal.ITIMER_REAL, min(seconds, outer_left or seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        socket.setdefaulttimeout(previous_socket_timeout)
        if outer_left:  # give the outer deadline back what it had left
            left = outer_left - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))
