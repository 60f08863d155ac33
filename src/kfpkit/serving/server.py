"""KServe's own model server, listening on a loopback address only.

``kserve.ModelServer`` hard-codes its REST host to ``0.0.0.0`` (every interface). Uvicorn,
which it runs on, accepts already-bound sockets (``RESTServer.run(sockets=...)``): this
module binds the socket itself, on a loopback address (anything else is refused), and
hands it to KServe's REST server, so nothing is ever listening on another interface, not
even for a moment. KServe's gRPC server is not started (it too would bind every interface).

Run as ``python3 -m kfpkit.serving.server --model-dir DIR [--shadow-dir DIR]
[--log-dir DIR] [--port N]``, or with ``--variant NAME=DIR[:WEIGHT]`` (repeatable) and
``--routing fixed|ab|bandit`` instead of ``--model-dir`` (see ``kfpkit.serving.routing`` and
``kfpkit.serving.experiment``; feedback: ``POST /v1/models/<name>/feedback``); it prints one
JSON line ``{"kfpkit_server": "listening", ...}`` with the address once the socket is bound,
and stops cleanly on SIGTERM/SIGINT (queued requests answered; request log, feedback log,
policy state and shadow report written).
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
import warnings
from collections.abc import Sequence
from typing import Any

from kfpkit.serving.limits import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ROWS

_log = logging.getLogger("kfpkit")
MODEL_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?\Z")
SHADOW_REPORT = "shadow_report.json"
V2_INFER = re.compile(r"^/v2/models/[^/]+(/versions/[^/]+)?/infer\Z")


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


def _plain_refusals(app: Any) -> None:
    """A refused request (:class:`RefusedRequest`, 4xx) answers its message and logs nothing:
    KServe's own handler logged a traceback for every bad request. GET (or any method but
    POST) on ``:predict`` / ``:explain`` is 405, where KServe's ``GET /v1/models/{name}``
    matched first and answered 404 "Model with name x:predict does not exist". A V2 infer body
    that is neither JSON nor the binary extension (``Inference-Header-Content-Length``) is 415
    naming its Content-Type, where KServe answered that the binary header was missing."""
    from fastapi.responses import JSONResponse  # ORJSONResponse warns once a call site

    from kfpkit.serving.model import RefusedRequest, is_json, not_json

    async def refused(_request: Any, exc: Exception) -> Any:
        status = exc.status if isinstance(exc, RefusedRequest) else 400
        return JSONResponse(status_code=status, content={"error": str(exc)})

    async def post_only(request: Any) -> Any:  # a Starlette route: gets the request as is
        return JSONResponse(
            status_code=405,
            headers={"Allow": "POST"},
            content={"error": f"{request.url.path} takes POST only, not {request.method}"},
        )

    class V2ContentType:
        def __init__(self, inner: Any):
            self.inner = inner

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if (scope["type"] == "http" and scope["method"] == "POST"
                    and V2_INFER.match(scope["path"])):  # fmt: skip
                headers = dict(scope.get("headers", ()))
                content_type = headers.get(b"content-type", b"").decode("latin-1")
                binary = b"inference-header-content-length" in headers
                if content_type and not binary and not is_json(content_type):
                    error = {"error": not_json(content_type)}
                    await JSONResponse(status_code=415, content=error)(scope, receive, send)
                    return
            await self.inner(scope, receive, send)

    app.add_middleware(V2ContentType)
    app.add_exception_handler(RefusedRequest, refused)
    for verb in ("predict", "explain"):  # routes added before KServe's, so matched first
        app.add_route(f"/v1/models/{{model_name}}:{verb}", post_only,
                      methods=["GET", "PUT", "PATCH", "DELETE"])  # fmt: skip


def build_models(
    model_dir: str,
    name: str,
    shadow_dir: str | None = None,
    log_dir: str | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    log_batch_rows: int = 10_000,
    log_flush_seconds: float = 5.0,
    experiment: Any = None,
    explain: Any = None,
) -> Any:
    """Loads the primary model or the variants of ``experiment`` (an ExperimentOptions), and
    the shadow candidate beside them; ``explain`` (ExplainOptions): the ``:explain`` baseline."""
    from kfpkit.serving.loading import load_serving_model
    from kfpkit.serving.model import TabularModel, model_version
    from kfpkit.serving.request_log import LoggedRequest, RequestLog
    from kfpkit.serving.shadow import Shadow, check_candidate_features

    check_model_name(name)
    model = TabularModel(name, model_dir, max_rows, log_dir, log_batch_rows, log_flush_seconds,
                         experiment, explain)  # fmt: skip
    model.load()
    if shadow_dir:
        candidate = load_serving_model(shadow_dir, "shadow candidate")
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
    _plain_refusals(app)
    # KServe 0.21 answers with FastAPI's deprecated ORJSONResponse: a warning no user can act on
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")

    async def status() -> dict[str, Any]:
        return model.status()

    app.add_api_route("/kfpkit/v1/status", status, methods=["GET"])
    _feedback_route(app, model)
    rest = RESTServer(
        FASTAPI_APP_IMPORT_STRING,
        server.dataplane,
        server.model_repository_extension,
        bound_port,
        workers=1,
    )
    if not access_log:  # a log line per request costs more than the model call at batch 1
        # uvicorn logs a request when "uvicorn.access" has handlers, its root's included
        # (config.access_log is read only when uvicorn configures logging, which KServe skips)
        access = logging.getLogger("uvicorn.access")
        access.handlers, access.propagate = [], False
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


def _feedback_route(app: Any, model: Any) -> None:
    """``POST /v1/models/<name>/feedback``: outcomes of answered requests (see
    ``kfpkit.serving.feedback``); every refusal is a 4xx naming the problem."""
    from fastapi import Request
    from fastapi.responses import ORJSONResponse

    async def feedback(model_name: str, request: Request) -> Any:
        if model_name != model.name:
            return ORJSONResponse(status_code=404, content={
                "error": f"model {model_name!r} is not served here (this server serves "
                         f"{model.name!r})", "reason": "unknown_model"})  # fmt: skip
        status, answer = model.experiment.feedback(await request.body())
        return ORJSONResponse(status_code=status, content=answer)

    # this module's annotations are strings (PEP 563) and Request is no global here: give
    # FastAPI the classes, or it takes ``request`` for a query parameter
    feedback.__annotations__.update(model_name=str, request=Request)
    app.add_api_route("/v1/models/{model_name}/feedback", feedback, methods=["POST"])


def _note_signal(signum: int, _frame: Any) -> None:
    _log.info("model server stopped by %s", signal.Signals(signum).name)


def _print_json(event: dict[str, Any]) -> None:
    print(json.dumps(event, sort_keys=True), flush=True)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m kfpkit.serving.server")
    p.add_argument("--model-dir", default="", help="SavedModel folder with <version>/ folders")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=MODEL_DIR[:WEIGHT]",
        help="a variant of the model (repeatable; instead of --model-dir)",
    )
    p.add_argument("--routing", default="fixed", choices=["fixed", "ab", "bandit"])
    p.add_argument("--unit-field", default="", help="ab: the request field naming the unit")
    p.add_argument("--unit-header", default="", help="ab: the header naming the unit")
    p.add_argument(
        "--unit-salt",
        default=None,
        help="ab: hashed before the unit (default: the "
        "model name; '' hashes the unit alone, as a split keyed on it)",
    )
    p.add_argument("--bandit", default="thompson", choices=["thompson", "epsilon-greedy"])
    p.add_argument("--epsilon", type=float, default=0.1, help="epsilon-greedy's exploration")
    p.add_argument(
        "--bandit-floor",
        type=float,
        default=0.05,
        help="thompson: the least share of traffic each variant keeps",
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the routing's random draws")
    p.add_argument(
        "--schema",
        default="",
        help="TFDV schema (schema.pbtxt or its folder): "
        "values outside its domains are flagged in the request log",
    )
    p.add_argument(
        "--feedback-retention-seconds",
        type=float,
        default=24 * 3600.0,
        help="how long an answered request takes feedback",
    )
    p.add_argument(
        "--feedback-max-requests",
        type=int,
        default=1_000_000,
        help="answered requests remembered for feedback (oldest forgotten first)",
    )
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
    p.add_argument(
        "--explain-baseline",
        default="",
        help=":explain's baseline: a JSON file {feature: value}, evaluate's explanation.json, "
        "or Parquet data (medians, most frequent values); default: the missing-value row",
    )
    p.add_argument("--explain-method", default="auto",
                   help="auto, integrated_gradients or sampled_shapley")  # fmt: skip
    return p.parse_args(list(argv))


def experiment_options(args: argparse.Namespace) -> Any:
    from kfpkit.serving.experiment import ExperimentOptions
    from kfpkit.serving.routing import parse_variant

    options = ExperimentOptions(
        variants=tuple(parse_variant(v) for v in args.variant), routing=args.routing,
        unit_field=args.unit_field, unit_header=args.unit_header, unit_salt=args.unit_salt,
        bandit=args.bandit, epsilon=args.epsilon, floor=args.bandit_floor, seed=args.seed,
        schema=args.schema, retention_seconds=args.feedback_retention_seconds,
        max_requests=args.feedback_max_requests,
    )  # fmt: skip
    options.check()  # before TensorFlow is imported: a bad flag is refused at once
    return options


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # kserve parses sys.argv when imported: leave it nothing of ours to misread
    sys.argv = sys.argv[:1]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        if args.max_rows < 1 or args.max_body_bytes < 1:
            raise ValueError("--max-rows and --max-body-bytes must be >= 1")
        experiment = experiment_options(args)
        if bool(args.model_dir) == bool(args.variant):
            raise ValueError("give --model-dir or --variant NAME=MODEL_DIR[:WEIGHT], not both")
        folder = args.model_dir or experiment.variants[0].model_dir
        name = check_model_name(args.name) if args.name else default_model_name(folder)
        from kfpkit.serving.explaining import ExplainOptions

        explain = ExplainOptions(args.explain_baseline, args.explain_method)
        explain.check()  # before TensorFlow is imported
        model = build_models(
            args.model_dir, name, args.shadow_dir or None, args.log_dir or None,
            args.max_rows, args.log_batch_rows, args.log_flush_seconds, experiment, explain,
        )  # fmt: skip
        serve(model, args.host, args.port, args.max_body_bytes, access_log=args.access_log)
    except ValueError as e:
        _print_json({"kfpkit_server": "refused", "error": str(e)})  # for ServerProcess.start
        print(f"kfpkit serve: error: {e}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
