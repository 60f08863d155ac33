"""The one recording HTTP server every REST stand-in builds on (registries, pipelines).

A threaded server on 127.0.0.1 (port chosen by the OS) that records every request for the
tests to assert the wire format, answers JSON from the subclass's :meth:`RecordingServer.answer`
(a document, or ``(status, document)``; :class:`HttpError` for an error document), and fails
chosen requests on demand to exercise retries.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                404: "NOT_FOUND", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED",
                500: "INTERNAL", 503: "UNAVAILABLE"}  # fmt: skip


def send_json(handler: BaseHTTPRequestHandler, code: int, doc: Any) -> None:
    """Answers ``handler``'s request with ``doc`` as JSON and status ``code``."""
    body = json.dumps(doc).encode()
    handler.send_response(code)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@dataclass
class Request:
    method: str
    path: str  # URL-decoded, without the query
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    raw: bytes

    @property
    def body(self) -> Any:
        """The JSON document sent; None for an empty body."""
        return json.loads(self.raw) if self.raw else None

    def json(self) -> Any:
        """The JSON document sent; {} for an empty body."""
        return json.loads(self.raw or b"{}")

    def multipart_file(self) -> bytes:
        """The first file part of a multipart/form-data body."""
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + self.headers["content-type"].encode() + b"\r\n\r\n" + self.raw
        )
        for part in message.iter_parts():  # type: ignore[attr-defined]
            return bytes(part.get_payload(decode=True))
        raise AssertionError("no file part in the multipart body")


class HttpError(Exception):
    def __init__(self, code: int, status: str, message: str):
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


@dataclass
class _Failure:
    matches: Callable[[Request], bool]
    code: int
    times: int


class RecordingServer:
    """Serves from construction until :meth:`close` (or the end of a ``with`` block).
    Subclasses answer in :meth:`answer` and may shape errors in :meth:`error_body`."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._failures: list[_Failure] = []
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.command,
                    unquote(split.path),
                    {k: v[0] for k, v in parse_qs(split.query).items()},
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                with server._lock:
                    server.requests.append(request)
                    try:
                        server._fail_if_asked(request)
                        result = server.answer(request)
                        code, doc = result if isinstance(result, tuple) else (200, result)
                    except HttpError as e:
                        code, doc = e.code, server.error_body(e)
                send_json(self, code, doc)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._http.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, request: Request) -> Any:
        """A JSON document (status 200) or ``(status, document)``; or raise HttpError. Here:
        404, for the routes a subclass does not answer."""
        error = HttpError(404, "NOT_FOUND", f"no route for {request.method} {request.path}")
        return 404, self.error_body(error)

    def error_body(self, error: HttpError) -> Any:
        return {"error": {"code": error.code, "message": error.message, "status": error.status}}

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._counter)}"

    def fail(self, matches: Callable[[Request], bool], code: int = 503, times: int = 1) -> None:
        """The next ``times`` requests that ``matches`` accepts get HTTP ``code``."""
        with self._lock:
            self._failures.append(_Failure(matches, code, times))

    def _fail_if_asked(self, request: Request) -> None:
        for failure in self._failures:
            if failure.times > 0 and failure.matches(request):
                failure.times -= 1
                status = STATUS_NAMES.get(failure.code, "UNKNOWN")
                raise HttpError(failure.code, status, f"injected failure ({status})")

    def calls(self, method: str, pattern: str = "") -> list[Request]:
        """The requests of ``method`` whose path ``pattern`` (a regular expression) is in."""
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
