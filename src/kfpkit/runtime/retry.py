"""Retry with exponential backoff for transient failures of remote services."""

from __future__ import annotations

import logging
import random
import ssl
import sys
import time
import urllib.error
from collections.abc import Callable, Mapping
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


# Connection failures of the HTTP stacks kfpkit's clients use, by module: several are not the
# built-in ConnectionError (requests' ConnectionError is an OSError, urllib3's errors are not
# OSErrors at all), so checking the built-in class alone misses a dropped connection.
_CONNECTION_ERRORS = {
    "requests.exceptions": ("ConnectionError", "Timeout", "ChunkedEncodingError"),
    "urllib3.exceptions": ("ProtocolError", "NewConnectionError", "TimeoutError"),
    "google.auth.exceptions": ("TransportError",),
    "aiohttp": ("ClientConnectionError", "ClientPayloadError"),
    "http.client": ("IncompleteRead", "RemoteDisconnected"),
}
# Certificate and TLS set-up errors: retrying does not change them.
_NOT_TRANSIENT = {"requests.exceptions": ("SSLError",), "urllib3.exceptions": ("SSLError",)}
# Errors that only wrap the one that counts, in ``reason``.
_WRAPPERS = {"urllib3.exceptions": ("MaxRetryError",), "urllib.error": ("URLError",)}


def _types(table: Mapping[str, tuple[str, ...]]) -> tuple[type, ...]:
    # only modules already imported: an error cannot be of a class nobody has loaded
    found = []
    for module_name, names in table.items():
        module = sys.modules.get(module_name)
        found += [getattr(module, n) for n in names if module is not None and hasattr(module, n)]
    return tuple(found)


def is_connection_error(error: BaseException) -> bool:
    """A connection that could not be made, was dropped or timed out, in any of the HTTP
    stacks kfpkit's clients use (sockets and urllib, requests, urllib3, google-auth's
    transport, aiohttp); TLS and certificate errors are not (retrying does not change them)."""
    if isinstance(error, (*_types(_NOT_TRANSIENT), ssl.SSLError, urllib.error.HTTPError)):
        return False
    if isinstance(error, _types(_WRAPPERS)):
        reason = getattr(error, "reason", None)
        return isinstance(reason, BaseException) and is_connection_error(reason)
    return isinstance(error, (ConnectionError, TimeoutError, *_types(_CONNECTION_ERRORS)))
