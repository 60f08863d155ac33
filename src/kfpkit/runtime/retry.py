"""Retry with exponential backoff for transient failures of remote services."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
_log = logging.getLogger("kfpkit")


def retry(
    fn: Callable[[], T],
    is_transient: Callable[[BaseException], bool],
    attempts: int = 5,
    initial_delay: float = 1.0,
    max_delay: float = 30.0,
    what: str = "call",
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Calls ``fn`` until it succeeds, retrying only errors ``is_transient`` accepts.

    Non-transient errors propagate at once; the last transient error propagates after
    ``attempts`` tries. Delays grow exponentially with full jitter.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    delay = initial_delay
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as e:
            if attempt == attempts or not is_transient(e):
                raise
            wait = random.uniform(0, delay)
            _log.warning(
                "%s failed (attempt %d/%d): %s; retrying in %.1fs",
                what,
                attempt,
                attempts,
                e,
                wait,
            )
            sleep(wait)
            delay = min(max_delay, delay * 2)
    raise AssertionError("unreachable")
