"""KServe's own model server, listening on a loopback address only.

``kserve.ModelServer`` hard-codes its REST host to ``0.0.0.0`` (every interface). Uvicorn,
which it runs on, accepts already-bound sockets (``RESTServer.run(sockets=...)``): this
module binds the socket itself, on a loopback address (anything else is refused), and
hands it to KServe's REST server, so nothing is ever listening on another interface, not
even for a moment. KServe's gRPC server is not started (it too would bind every interface).

Run as ``python3 -m kfpkit.serving.server --model-dir DIR [--shadow-dir DIR]
[--log-dir DIR] [--port N]``; it prints one JSON line ``{"kfpkit_server": "listening", ...}``
with the address once the socket is bound, and stops cleanly on SIGTERM/SIGINT (queued
requests answered, request logs flushed, shadow report written).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

from kfpkit.serving.limits import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ROWS

_log = logging.getLogger("kfpkit")
MODEL_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?\Z")
SHADOW_REPORT = "shadow_report.json"


def check_model_name(name: str) -> str:
    """A model name usable in URLs and as a Kubernetes name (DNS-1035 label)."""
    if not MODEL_NAME.match(name):
        raise ValueError(
            f"model name {name!r} must be 1-63 lowercase letters, digits or '-', starting "
            "with a letter and not ending with '-'"
        )
    return name


def default_model_name(model_dir: str) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", os.path.basename(os.path.normpath(model_dir)).lower())
    base = base.strip("-")[:63].rstrip("-")
    return base if MODEL_NAME.match(base) else "model"


def loopback_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on a loopback address; ValueError for any other address."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"host {host!r} is not an IP address (use 127.0.0.1)") from None
    if not address.is_loopback:
        raise ValueError(
            f"host {host!r} is not a loopback address: the local server never listens on the "
            "network (use 127.0.0.1 or ::1)"
        )
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be 0-65535, got {port}")
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=1024)
    except OSError as e:
        raise RuntimeError(f"cannot listen on {host}:{port}: {e}") from e


def _body_limit_app(app: Any, max_body_bytes: int) -> None:
    """Refuses bodies over ``max_body_bytes`` with 413, before they are read whole."""
    from fastapi.responses import ORJSONResponse

    class PayloadTooLarge(Exception):
        pass

    def too_large(_request: Any, exc: Exception) -> Any:
        return ORJSONResponse(status_code=413, content={"error": str(exc)})

    message = f"request body over {max_body_bytes} bytes, the most this server accepts"

    class BodyLimit:
        def __init__(self, inner: Any):
            self.inner = inner

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await self.inner(scope, receive, send)
                return
            for key, value in scope.get("headers", ()):
                if key == b"content-length" and value.isdigit() and int(value) > max_body_bytes:
                    await too_large(None, PayloadTooLarge(message))(scope, receive, send)
                    return
            seen = 0

            async def limited() -> Any:
                nonlocal seen
                event = await receive()
                if event.get("type") == "http.request":
                    seen += len(event.get("body", b""))
                    if seen > max_body_bytes:  # chunked uploads announce no length
                        raise PayloadTooLarge(message)
                return event

            await self.inner(scope, limited, send)

    app.add_middleware(BodyLimit)
    app.add_exception_handler(PayloadTooLarge, too_large)


def _plain_validation_errors(app: Any) -> None:
    """422 for a V2 body that does not fit KServe's schema, naming where, without echoing the
    input: FastAPI's default echo cannot encode a NaN the body held, and answered 500."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import ORJSONResponse

    def invalid(_request: Any, exc: Exception) -> Any:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        where = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors[:5]
        )
        return ORJSONResponse(status_code=422, content={"error": f"invalid request: {where}"})

    app.add_exception_handler(RequestValidationError, invalid)


def build_models(
    model_dir: str,
    name: str,
    shadow_dir: str | None = None,
    log_dir: str | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    log_batch_rows: int = 10_000,
    log_flush_seconds: float = 5.0,
) -> Any:
    """Loads the primary model (and the shadow candidate beside it)."""
    from kfpkit.serving.model import TabularModel, model_version
    from kfpkit.serving.request_log import LoggedRequest, RequestLog
    from kfpkit.serving.shadow import Shadow, check_candidate_features
    from kfpkit.tabular import ServingModel

    check_model_name(name)
    model = TabularModel(name, model_dir, max_rows, log_dir, log_batch_rows, log_flush_seconds)
    model.load()
    if shadow_dir:
        candidate = ServingModel(shadow_dir, "shadow candidate")
        check_candidate_features(model.specs, candidate.feature_specs)
        candidate_log = (
            RequestLog(log_dir, f"{name}-shadow", model_version(candidate.path),
                       candidate.feature_specs, log_batch_rows, log_flush_seconds)
            if log_dir else None
        )  # fmt: skip

        def log_candidate(features: Any, answer: Any, context: Any) -> None:
            if candidate_log is not None:
                protocol, request_id, received = context
                subset = {s.name: features[s.name] for s in candidate.feature_specs}
                candidate_log.record(LoggedRequest(subset, answer, protocol, request_id, received))

        shadow = Shadow(candidate.predict, [s.name for s in candidate.feature_specs], log_candidate)
        shadow.candidate_path = candidate.path  # type: ignore[attr-defined]
        shadow.candidate_log = candidate_log  # type: ignore[attr-defined]
        model.attach_shadow(shadow)
    return model


def serve(
    model: Any,
    host: str = "127.0.0.1",
    port: int = 8080,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    announce: Any = None,
    access_log: bool = False,
) -> None:
    """Serves ``model`` (a loaded TabularModel) until SIGTERM/SIGINT, then stops it."""
    import kserve
    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.model_server import app
    from kserve.protocol.rest.server import RESTServer

    sock = loopback_socket(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    server = kserve.ModelServer(
        http_port=bound_port, enable_grpc=False, workers=1, enable_latency_logging=False
    )
    server.register_model(model)
    _body_limit_app(app, max_body_bytes)
    _plain_validation_errors(app)

    async def status() -> dict[str, Any]:
        return model.status()

    app.add_api_route("/kfpkit/v1/status", status, methods=["GET"])
    rest = RESTServer(
        FASTAPI_APP_IMPORT_STRING,
        server.dataplane,
        server.model_repository_extension,
        bound_port,
        workers=1,
    )
    if not access_log:  # a log line per request costs more than the model call at batch 1
        rest.config.access_log = False
        logging.getLogger("kserve.trace").setLevel(logging.WARNING)
    event = {"kfpkit_server": "listening", "host": bound_host, "port": bound_port,
             "model": model.name, "version": model.version}  # fmt: skip
    (announce or _print_json)(event)
    # Uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the handler
    # that was there before it: make that one a no-op, so the logs are flushed below.
    stop_signals = (signal.SIGTERM, signal.SIGINT)
    previous = {s: signal.signal(s, _note_signal) for s in stop_signals}
    try:
        rest.run(sockets=[sock])
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        sock.close()
        model.stop()
        if model.shadow is not None and model.request_log is not None:
            path = os.path.join(os.path.dirname(model.request_log.directory), SHADOW_REPORT)
            with open(path, "w", encoding="utf-8") as f:
                json.dump(model.shadow.report(), f, indent=2, sort_keys=True)
        (announce or _print_json)({"kfpkit_server": "stopped", **model.status()})


def _note_signal(signum: int, _frame: Any) -> None:
    _log.info("model server stopped by %s", signal.Signals(signum).name)


def _print_json(event: dict[str, Any]) -> None:
    print(json.dumps(event, sort_keys=True), flush=True)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m kfpkit.serving.server")
    p.add_argument("--model-dir", required=True, help="SavedModel folder with <version>/ folders")
    p.add_argument("--name", default="", help="model name in URLs (default: from --model-dir)")
    p.add_argument("--shadow-dir", default="", help="candidate SavedModel folder to shadow")
    p.add_argument("--log-dir", default="", help="log requests to Parquet under this folder")
    p.add_argument("--host", default="127.0.0.1", help="a loopback address")
    p.add_argument("--port", type=int, default=8080, help="0: any free port")
    p.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS)
    p.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    p.add_argument("--log-batch-rows", type=int, default=10_000)
    p.add_argument("--log-flush-seconds", type=float, default=5.0)
    p.add_argument("--access-log", action="store_true", help="log every HTTP request")
    return p.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # kserve parses sys.argv when imported: leave it nothing of ours to misread
    sys.argv = sys.argv[:1]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        if args.max_rows < 1 or args.max_body_bytes < 1:
            raise ValueError("--max-rows and --max-body-bytes must be >= 1")
        name = check_model_name(args.name) if args.name else default_model_name(args.model_dir)
        model = build_models(
            args.model_dir, name, args.shadow_dir or None, args.log_dir or None,
            args.max_rows, args.log_batch_rows, args.log_flush_seconds,
        )  # fmt: skip
        serve(model, args.host, args.port, args.max_body_bytes, access_log=args.access_log)
    except ValueError as e:
        print(f"kfpkit serve: error: {e}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
