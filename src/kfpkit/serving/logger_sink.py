"""A sink for KServe's inference logger: CloudEvents in, the served-traffic log layout out.

KServe's logger (``spec.predictor.logger: {url, mode}``; the agent beside the model server)
sends each request and each HTTP-200 response as a CloudEvent in binary mode, an HTTP POST
whose body is the V1/V2 payload as the client sent or got it and whose headers are:

- ``ce-id``: the request id (the client's ``Ce-Id`` header, else a UUID), the same on the
  request's and the response's event; ``ce-type``: ``org.kubeflow.serving.inference.request``
  or ``...inference.response``; ``ce-source``; ``ce-time`` (when the logger sent it);
- extensions ``ce-inferenceservicename``, ``ce-namespace``, ``ce-component`` (predictor,
  transformer...), ``ce-endpoint`` (``default`` or ``canary``), ``ce-metadata`` (JSON).

The sink pairs the two events by id and writes the log contract's Parquet files (what
``kfpkit.serving.served_logs.read_served`` reads) under ``<log_dir>/<model_name>/``:
``model_name`` is the first path segment of the URL the logger posts to (``logger.url:
http://sink/<model_name>``; every variant of one experiment logs to the same one), else the
InferenceService's name. ``variant`` is the InferenceService's name (``<name>-canary`` for
KServe's canary endpoint), ``model_version`` a V2 response's ``model_version`` (else "").

Features are typed from the payload: a JSON string makes a categorical (string) column,
numbers and booleans numeric (double); a feature's type is fixed the first time the model's
folder sees a non-null value of it (``categorical`` pre-declares names), so every file of a
folder has one schema. ``latency_ms`` is the time between the two events' ``ce-time``
(the logger's send times: close to, not exactly, the request's latency). A request whose
response never came (KServe logs no response for a non-200 answer) is written after
``pair_timeout`` seconds with a null prediction and ``status`` 0; ``out_of_domain`` is ""
(the sink has no schema). Files are written under a hidden temporary name and renamed, every
``flush_seconds`` or ``batch_rows``, and on SIGTERM / SIGINT (everything held is written
before the process exits).

Feedback: ``POST /v1/models/<model_name>/feedback`` takes the true outcomes of logged
requests, with the local server's body, rules and files (``kfpkit.serving.feedback``:
``{"request_id": ce-id, "row": 0, "label": 0 | 1}`` and / or ``"reward"``, or
``{"feedback": [...]}``): a request id is accepted once the sink has both events of that request
(or wrote it unpaired) and for ``feedback_retention_seconds`` after, a row once; an unknown or
expired id, a second feedback for a row and a bad label are 4xx, counted in ``GET /metrics`` as
``kfpkit_feedback_rejected_total{reason=...}``; accepted rows go to
``<log_dir>/<model_name>/feedback/feedback-*.parquet``, which ``read_served`` joins by
(``request_id``, ``row``). The requests of the retention window are read back from the folder
when a model is first seen after a restart.

Run: ``kfpkit serve-sink --log-dir DIR`` (or ``python -m kfpkit.serving.logger_sink``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import signal
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: `kfpkit serve-sink --help` needs no pyarrow
    import pyarrow as pa

    from kfpkit.serving.feedback import FeedbackIntake

_log = logging.getLogger("kfpkit")

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
NO_RESPONSE_STATUS = 0
_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?\Z")
FEEDBACK_PATH = re.compile(r"^/v1/models/([^/?]+)/feedback\Z")
_MAX_BODY = 64 * 1024 * 1024


def _check_name(value: str, what: str) -> str:
    if not _NAME.match(value or ""):
        raise ValueError(f"{what} {value!r} must be 1-63 lower-case letters, digits or '-', "
                         "starting with a letter")  # fmt: skip
    return value


@dataclass
class Event:
    """One CloudEvent of KServe's logger, as received."""

    id: str
    type: str
    source: str
    sent: datetime | None  # ce-time: when the logger sent it
    inference_service: str
    component: str
    endpoint: str
    body: Any
    model_name: str = ""  # from the URL path; "" -> the InferenceService's name
    received: float = field(default_factory=time.time)

    @classmethod
    def from_http(cls, path: str, headers: Mapping[str, str], body: bytes) -> Event:
        """ValueError naming what is missing or malformed (the sink answers 400)."""
        h = {k.lower(): v for k, v in headers.items()}
        for required in ("ce-id", "ce-type", "ce-source", "ce-specversion"):
            if not h.get(required):
                raise ValueError(f"not a binary-mode CloudEvent: no {required} header")
        if h["ce-type"] not in (REQUEST_TYPE, RESPONSE_TYPE):
            raise ValueError(f"ce-type {h['ce-type']!r} is not one of KServe's logger types "
                             f"({REQUEST_TYPE}, {RESPONSE_TYPE})")  # fmt: skip
        service = h.get("ce-inferenceservicename", "")
        if not service:
            raise ValueError("no ce-inferenceservicename header (KServe's logger sends one)")
        _check_name(service, "ce-inferenceservicename")
        segment = path.split("?", 1)[0].strip("/").split("/", 1)[0]
        model_name = _check_name(segment, "model name (the URL path)") if segment else ""
        try:
            payload = json.loads(body) if body else None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"event {h['ce-id']}: the body is not JSON: {e}") from None
        return cls(
            id=h["ce-id"],
            type=h["ce-type"],
            source=h["ce-source"],
            sent=_parse_time(h.get("ce-time", "")),
            inference_service=service,
            component=h.get("ce-component", ""),
            endpoint=h.get("ce-endpoint", ""),
            body=payload,
            model_name=model_name,
        )

    @property
    def folder(self) -> str:
        return self.model_name or self.inference_service

    @property
    def variant(self) -> str:
        canary = self.endpoint == "canary"
        return f"{self.inference_service}-canary" if canary else self.inference_service


def _parse_time(text: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def request_rows(body: Any) -> tuple[str, list[dict[str, Any]]]:
    """(protocol, one dict of feature values a row) of a V1 or V2 request payload."""
    if isinstance(body, Mapping) and isinstance(body.get("instances"), list):
        rows = body["instances"]
        if not all(isinstance(r, Mapping) for r in rows):
            raise ValueError("V1 'instances' must be objects {feature: value}")
        return "v1", [dict(r) for r in rows]
    if isinstance(body, Mapping) and isinstance(body.get("inputs"), list):
        columns: dict[str, list[Any]] = {}
        for tensor in body["inputs"]:
            if not isinstance(tensor, Mapping) or "name" not in tensor:
                raise ValueError("V2 'inputs' must be tensors {name, datatype, shape, data}")
            columns[str(tensor["name"])] = _flat(tensor.get("data"))
        sizes = {len(v) for v in columns.values()}
        if len(sizes) > 1:
            raise ValueError(f"V2 inputs of different lengths {sorted(sizes)}")
        n = sizes.pop() if sizes else 0
        return "v2", [{name: values[i] for name, values in columns.items()} for i in range(n)]
    raise ValueError("neither a V1 ('instances') nor a V2 ('inputs') request")


def response_predictions(body: Any) -> tuple[list[float | None], str]:
    """(one prediction a row, model_version) of a V1 or V2 response payload."""
    if isinstance(body, Mapping) and isinstance(body.get("predictions"), list):
        return [_number(p) for p in body["predictions"]], ""
    if isinstance(body, Mapping) and isinstance(body.get("outputs"), list) and body["outputs"]:
        first = body["outputs"][0]
        data = _flat(first.get("data") if isinstance(first, Mapping) else None)
        return [_number(p) for p in data], str(body.get("model_version") or "")
    raise ValueError("neither a V1 ('predictions') nor a V2 ('outputs') response")


def _flat(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise ValueError("tensor data must be a list")
    return [d[0] if isinstance(d, list) and len(d) == 1 else d for d in data]


def _number(value: Any) -> float | None:
    """A row's prediction: the number, or the first of a one-row list / an object's values."""
    if isinstance(value, list) and value:
        value = value[0]
    elif isinstance(value, Mapping) and value:
        value = next(iter(value.values()))
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass
class _Pending:
    request: Event | None = None
    response: Event | None = None
    first_seen: float = field(default_factory=time.monotonic)


class Sink:
    """Pairs events and writes Parquet files; thread-safe (the HTTP handler threads add,
    one writer thread flushes)."""

    def __init__(self, log_dir: str, *, flush_seconds: float = 5.0, batch_rows: int = 10_000,
                 pair_timeout: float = 60.0, categorical: Iterable[str] = (),
                 feedback_retention_seconds: float | None = None,
                 feedback_max_requests: int | None = None):  # fmt: skip
        from kfpkit.serving import feedback  # None: the local server's defaults

        if flush_seconds <= 0 or batch_rows < 1 or pair_timeout <= 0:
            raise ValueError("flush_seconds and pair_timeout must be > 0, batch_rows >= 1")
        self.feedback_retention_seconds = (feedback.DEFAULT_RETENTION_SECONDS
                                           if feedback_retention_seconds is None
                                           else feedback_retention_seconds)  # fmt: skip
        self.feedback_max_requests = (feedback.DEFAULT_MAX_REQUESTS if feedback_max_requests
                                      is None else feedback_max_requests)  # fmt: skip
        feedback.ServedIndex(self.feedback_retention_seconds, self.feedback_max_requests)  # checks
        self.log_dir = log_dir
        self.flush_seconds, self.batch_rows, self.pair_timeout = (
            flush_seconds, batch_rows, pair_timeout)  # fmt: skip
        self.declared_categorical = frozenset(categorical)
        self.counts = {"events": 0, "rejected": 0, "undecodable": 0, "rows_written": 0,
                       "files_written": 0, "unpaired_requests": 0, "write_errors": 0,
                       "unreadable_logs": 0}  # fmt: skip
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._ready: dict[str, list[dict[str, Any]]] = {}
        self._types: dict[str, dict[str, pa.DataType]] = {}  # folder -> feature -> type
        self._sequence = 0
        self._intakes: dict[str, FeedbackIntake] = {}  # model folder -> its feedback
        self._intakes_lock = threading.Lock()
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kfpkit-sink", daemon=True)
        os.makedirs(log_dir, exist_ok=True)

    def start(self) -> Sink:
        self._thread.start()
        return self

    def add(self, event: Event) -> None:
        key = (event.folder, event.id)
        self.intake(event.folder)  # before the lock: the first one of a folder reads its log
        with self._lock:
            self.counts["events"] += 1
            pending = self._pending.setdefault(key, _Pending())
            if event.type == REQUEST_TYPE:
                pending.request = event
            else:
                pending.response = event
            if pending.request is not None and pending.response is not None:
                del self._pending[key]
                self._rows(pending)
            held = sum(len(r) for r in self._ready.values())
        if held >= self.batch_rows:
            self.flush()

    def _rows(self, pending: _Pending) -> None:
        """The log rows of a pair (or of a lone request/response); under the lock."""
        import numpy as np

        request, response = pending.request, pending.response
        event = request or response
        assert event is not None
        try:
            protocol, features = request_rows(request.body) if request else ("", [])
            predictions, version = (response_predictions(response.body) if response
                                    else ([], ""))  # fmt: skip
        except ValueError as e:
            self.counts["undecodable"] += 1
            _log.warning("logger sink: event %s of %s skipped: %s", event.id,
                         event.inference_service, e)  # fmt: skip
            return
        if not protocol and response is not None:
            protocol = "v2" if isinstance(response.body, Mapping) and "outputs" in response.body \
                else "v1"  # fmt: skip
        n = max(len(features), len(predictions))
        if request and response and features and predictions and len(features) != len(predictions):
            self.counts["undecodable"] += 1
            _log.warning("logger sink: event %s: %d rows in, %d predictions out", event.id,
                         len(features), len(predictions))  # fmt: skip
            return
        if request is not None and response is None:
            self.counts["unpaired_requests"] += 1
        start = (request or event).sent
        latency = None
        if request and response and request.sent and response.sent:
            latency = (response.sent - request.sent).total_seconds() * 1000.0
        stamp = start or datetime.fromtimestamp(event.received, UTC)
        status = 200 if response is not None else NO_RESPONSE_STATUS
        # what feedback may name: a null prediction (no response) is NaN there
        answered = [math.nan if p is None else p for p in predictions] + [math.nan] * (
            n - len(predictions))  # fmt: skip
        self._intakes[event.folder].index.add(event.id, event.variant,
                                              np.array(answered, dtype=float),
                                              stamp.timestamp())  # fmt: skip
        rows = self._ready.setdefault(event.folder, [])
        for i in range(n):
            rows.append({
                "features": features[i] if i < len(features) else {},
                "prediction": predictions[i] if i < len(predictions) else None,
                "model_name": event.folder, "model_version": version,
                "variant": event.variant, "protocol": protocol, "request_id": event.id,
                "row": i, "timestamp": stamp, "latency_ms": latency, "status": status,
            })  # fmt: skip

    def intake(self, folder: str, create: bool = True) -> FeedbackIntake | None:
        """The feedback of a model folder; made (its log's requests of the retention window
        read back) when first needed. Without ``create``: None for a folder that has neither
        events in this process nor request files."""
        with self._intakes_lock:
            intake = self._intakes.get(folder)
            if intake is not None:
                return intake
            from kfpkit.serving.feedback import FeedbackIntake, has_request_log

            directory = os.path.join(self.log_dir, folder)
            if not create and not has_request_log(directory):
                return None
            settings = (directory, self.feedback_retention_seconds, self.feedback_max_requests,
                        self.batch_rows, self.flush_seconds)  # fmt: skip
            try:
                intake = FeedbackIntake(*settings)
            except ValueError as e:  # logging goes on; feedback for the old requests is lost
                _log.error("logger sink: the requests logged in %s cannot be read back for "
                           "feedback: %s", directory, e)  # fmt: skip
                with self._lock:
                    self.counts["unreadable_logs"] += 1
                intake = FeedbackIntake(*settings, restore=False)
            self._intakes[folder] = intake
            return intake

    def feedback(self, model_name: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON answer) of ``POST /v1/models/<model_name>/feedback``."""
        intake = self.intake(model_name, create=False) if _NAME.match(model_name) else None
        if intake is None:
            folder = os.path.join(self.log_dir, model_name)
            return 404, {"error": f"model {model_name!r} has no logged traffic in this sink "
                                  f"(no events, no request files in {folder})",
                         "reason": "unknown_model"}  # fmt: skip
        status, answer, _ = intake.receive(body)
        return status, answer

    def feedback_counts(self) -> dict[str, Any]:
        """The feedback of every model folder, summed: accepted, rejected by reason, rows
        written, write errors."""
        from kfpkit.serving.feedback import REASONS

        with self._intakes_lock:
            states = [intake.status() for intake in self._intakes.values()]
        return {
            "accepted": sum(s["accepted"] for s in states),
            "rejected": {r: sum(s["rejected"].get(r, 0) for s in states) for r in REASONS},
            "rows_written": sum(s["rows_written"] for s in states),
            "errors": sum(s["errors"] for s in states),
        }

    def _expire(self, everything: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            for key in [k for k, p in self._pending.items()
                        if everything or now - p.first_seen >= self.pair_timeout]:  # fmt: skip
                self._rows(self._pending.pop(key))

    def flush(self, everything: bool = False) -> None:
        """Writes the rows held (after expiring unpaired events; all of them with
        ``everything``), one file per model folder."""
        self._expire(everything)
        with self._write_lock:
            with self._lock:
                ready, self._ready = self._ready, {}
            for folder, rows in ready.items():
                if rows:
                    self._write(folder, rows)

    def _table(self, folder: str, rows: Sequence[dict[str, Any]]) -> pa.Table:
        import pyarrow as pa

        types = self._types.setdefault(folder, {})
        for row in rows:
            for name, value in row["features"].items():
                if name not in types or pa.types.is_null(types[name]):
                    types[name] = _feature_type(name, value, self.declared_categorical)
        columns: dict[str, pa.Array] = {}
        for name, kind in types.items():
            values = [_cast(row["features"].get(name), kind) for row in rows]
            columns[name] = pa.array(values, type=kind)
        meta = {
            "prediction": pa.float64(), "model_name": pa.string(), "model_version": pa.string(),
            "variant": pa.string(), "protocol": pa.string(), "request_id": pa.string(),
            "row": pa.int32(), "timestamp": pa.timestamp("us", tz="UTC"),
            "latency_ms": pa.float64(), "status": pa.int32(),
        }  # fmt: skip
        for name, kind in meta.items():
            columns[name] = pa.array([row[name] for row in rows], type=kind)
        columns["out_of_domain"] = pa.array([""] * len(rows), type=pa.string())
        return pa.table(columns)

    def _write(self, folder: str, rows: Sequence[dict[str, Any]]) -> None:
        import pyarrow.parquet as pq

        directory = os.path.join(self.log_dir, folder)
        try:
            table = self._table(folder, rows)
            os.makedirs(directory, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            name = f"data-{stamp}-{os.getpid()}-{self._sequence:06d}.parquet"
            self._sequence += 1
            tmp = os.path.join(directory, f".{name}.tmp")
            pq.write_table(table, tmp)
            os.replace(tmp, os.path.join(directory, name))
            self.counts["rows_written"] += table.num_rows
            self.counts["files_written"] += 1
        except Exception:  # noqa: BLE001 - one bad batch must not stop the sink
            self.counts["write_errors"] += 1
            _log.exception("logger sink: could not write %d row(s) of %s", len(rows), folder)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()

    def close(self) -> None:
        """Stops the writers and writes everything held, unpaired events and feedback
        included."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)
        self.flush(everything=True)
        with self._intakes_lock:
            intakes = list(self._intakes.values())
        for intake in intakes:
            intake.close()


def _feature_type(name: str, value: Any, categorical: frozenset[str]) -> pa.DataType:
    import pyarrow as pa

    if name in categorical or isinstance(value, str):
        return pa.string()
    if value is None:
        return pa.null()
    return pa.float64()


def _cast(value: Any, kind: pa.DataType) -> Any:
    import pyarrow as pa

    if value is None or pa.types.is_null(kind):
        return None
    if pa.types.is_string(kind):
        return value if isinstance(value, str) else json.dumps(value)
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, int | float) else None


def make_server(sink: Sink, host: str = "0.0.0.0", port: int = 8080) -> ThreadingHTTPServer:
    """An HTTP server feeding ``sink``: ``POST /v1/models/<name>/feedback`` takes feedback
    (200; a counted 4xx when refused), POST any other path (the first segment names the model
    folder) an event (202; 400 for a malformed one); GET /healthz and /metrics."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            if length > _MAX_BODY:
                self._answer(413, {"error": f"body over {_MAX_BODY} bytes"})
                return
            body = self.rfile.read(length) if length else b""
            feedback = FEEDBACK_PATH.match(self.path.split("?", 1)[0])
            if feedback:
                self._answer(*sink.feedback(feedback.group(1), body))
                return
            try:
                event = Event.from_http(self.path, dict(self.headers.items()), body)
            except ValueError as e:
                with sink._lock:
                    sink.counts["rejected"] += 1
                self._answer(400, {"error": str(e)})
                return
            sink.add(event)
            self._answer(202, {"id": event.id})

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/healthz":
                self._answer(200, {"status": "ok"})
            elif self.path == "/metrics":
                with sink._lock:
                    counts = dict(sink.counts)
                feedback = sink.feedback_counts()
                text = "".join(f"kfpkit_sink_{k}_total {v}\n" for k, v in counts.items())
                text += "".join(f"kfpkit_sink_feedback_{k}_total {feedback[k]}\n"
                                for k in ("accepted", "rows_written", "errors"))  # fmt: skip
                # the local server's metric, by the same reasons
                text += "".join(f'kfpkit_feedback_rejected_total{{reason="{r}"}} {n}\n'
                                for r, n in feedback["rejected"].items())  # fmt: skip
                self._answer(200, text)
            else:
                self._answer(404, {"error": "GET /healthz or /metrics"})

        def _answer(self, status: int, body: Any) -> None:
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            kind = "text/plain" if isinstance(body, str) else "application/json"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return ThreadingHTTPServer((host, port), Handler)


def serve(log_dir: str, host: str = "0.0.0.0", port: int = 8080, **settings: Any) -> None:
    """Runs the sink until SIGTERM / SIGINT, then writes everything held and returns."""
    sink = Sink(log_dir, **settings).start()
    server = make_server(sink, host, port)

    def stop(signum: int, _frame: Any) -> None:
        _log.info("logger sink: %s, writing what is held", signal.Signals(signum).name)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    _log.info("logger sink on %s:%d writing to %s", host, server.server_address[1], log_dir)
    print(f"listening on {host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        sink.close()
        _log.info("logger sink stopped: %s", sink.counts)


SINK_NAME = "kfpkit-logger-sink"


def kubernetes_manifests(
    namespace: str,
    image: str,
    claim: str,
    *,
    name: str = SINK_NAME,
    port: int = 8080,
    categorical: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """A Deployment and a Service running the sink in a cluster, writing to the
    PersistentVolumeClaim ``claim`` (mounted at ``/logs``; a GCS bucket through GKE's Cloud
    Storage FUSE CSI driver works the same and is then read as ``gs://``). Point each
    variant's logger at ``http://<name>.<namespace>.svc.cluster.local/<model_name>``; whatever
    knows the true outcomes posts them to the same Service, at
    ``/v1/models/<model_name>/feedback`` (one port serves events, feedback, ``/healthz`` and
    ``/metrics``).

    One replica, replaced with ``Recreate``: the two events of a request must reach the same
    sink to be paired, and the old pod writes what it holds when it gets SIGTERM (within
    the grace period) before the new one starts on the same volume."""
    _check_name(name, "sink name")
    _check_name(namespace, "namespace")
    _check_name(claim, "claim")
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "kfpkit"}
    args = ["--log-dir", "/logs", "--port", str(port)]
    for feature in categorical:
        args += ["--categorical", feature]
    container = {
        "name": "sink",
        "image": image,
        "command": ["python3", "-m", "kfpkit.serving.logger_sink"],
        "args": args,
        "ports": [{"name": "http", "containerPort": port}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": port}},
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                      "limits": {"memory": "1Gi"}},
        "volumeMounts": [{"name": "logs", "mountPath": "/logs"}],
    }  # fmt: skip
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 60,
                    "containers": [container],
                    "volumes": [{"name": "logs",
                                 "persistentVolumeClaim": {"claimName": claim}}],
                },
            },
        },
    }  # fmt: skip
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"selector": {"app.kubernetes.io/name": name},
                 "ports": [{"name": "http", "port": 80, "targetPort": port}]},
    }  # fmt: skip
    return [deployment, service]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-dir", required=True, help="the served-traffic log folder")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--flush-seconds", type=float, default=5.0)
    parser.add_argument("--batch-rows", type=int, default=10_000)
    parser.add_argument(
        "--pair-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for a request's response event",
    )
    parser.add_argument(
        "--feedback-retention-seconds",
        type=float,
        default=None,
        help="how long a logged request takes feedback (default: a day, as kfpkit serve)",
    )
    parser.add_argument(
        "--feedback-max-requests",
        type=int,
        default=None,
        help="logged requests remembered for feedback, oldest forgotten first (default: "
        "1,000,000, as kfpkit serve)",
    )
    parser.add_argument(
        "--categorical",
        action="append",
        default=[],
        metavar="FEATURE",
        help="a categorical (string) feature; repeatable",
    )


def run_from_args(args: argparse.Namespace) -> None:
    serve(args.log_dir, args.host, args.port, flush_seconds=args.flush_seconds,
          batch_rows=args.batch_rows, pair_timeout=args.pair_timeout,
          categorical=args.categorical,
          feedback_retention_seconds=args.feedback_retention_seconds,
          feedback_max_requests=args.feedback_max_requests)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="kfpkit serve-sink", description=__doc__.split("\n")[0])
    add_arguments(parser)
    run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    main()
