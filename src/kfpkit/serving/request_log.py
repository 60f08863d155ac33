"""Logs served requests and responses to Parquet files, in batches, off the request path.

The request handler only appends to an in-memory queue; one writer thread turns what has
queued into a Parquet file every ``batch_rows`` rows or ``flush_seconds``, whichever comes
first, and on :meth:`RequestLog.close` (server shutdown) writes the rest. Each file is written
under a temporary name that readers skip and renamed into place, so a reader never sees a
partial file.

Layout (the served-traffic contract; what ``kfpkit.serving.served_logs`` and ``tfdv_statistics``
read: a directory of ``*.parquet`` files that all have the same columns):
``<log_dir>/<model_name>/data-<UTC time>-<pid>-<n>.parquet`` with one row per example served:
every feature (numeric as double, categorical as string; nulls kept), then ``prediction``
(double), ``model_name``, ``model_version``, ``variant`` (the variant that answered; the model
version when one model is served), ``protocol`` (``v1``/``v2``), ``request_id`` (string),
``row`` (the example's index in its request), ``timestamp`` (UTC, when the request arrived),
``latency_ms`` (the whole request, decoding to answer), ``status`` (200) and
``out_of_domain`` (comma-separated features whose value is outside the schema's domain, ""
when none or without a schema; computed here, off the request path) and ``attributions``
(JSON ``{feature: attribution}`` of a row answered by ``:explain``, null otherwise). Point TFDV at
``<log_dir>/<model_name>/``; skew is measured on the schema's features only, so the extra
columns do not disturb it (validate the log statistics themselves in the schema's ``SERVING``
environment, and expect the extra columns to be reported as new).

:class:`ParquetBatchWriter` is the writer itself (queue, thread, batches, temporary name and
rename); the feedback log (``kfpkit.serving.feedback``) is one too.

Limits: the queue is unbounded (a writer that falls behind costs memory, never a request);
rows still queued when the process is killed with SIGKILL are lost; requests that were
refused (4xx) are not logged.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kfpkit.serving.domain import DomainCheck
from kfpkit.serving.served_logs import REQUEST_COLUMNS
from kfpkit.tabular import CATEGORICAL, FeatureSpec

_log = logging.getLogger("kfpkit")

_STOP = object()
_NO_ATTRIBUTIONS: list[str | None] = [None]  # a predicted row's (typed for the list below)


@dataclass(frozen=True)
class LoggedRequest:
    features: dict[str, np.ndarray]  # as decoded: float32 (NaN = missing) / str ("" = missing)
    predictions: np.ndarray
    protocol: str
    request_id: str
    received: float  # time.time()
    variant: str = ""  # "": the log's model version
    model_version: str = ""  # "": the log's model version
    latency_ms: float | None = None
    status: int = 200
    attributions: list[str] | None = None  # per row, JSON {feature: attribution} (:explain)


def log_schema(specs: Sequence[FeatureSpec]) -> pa.Schema:
    fields = [
        pa.field(s.name, pa.string() if s.kind == CATEGORICAL else pa.float64()) for s in specs
    ]
    fields += [pa.field(name, arrow_type) for name, arrow_type in REQUEST_COLUMNS.items()]
    return pa.schema(fields)


class ParquetBatchWriter:
    """Batches records into Parquet files ``<directory>/<prefix>-<UTC>-<pid>-<n>.parquet`` on
    a writer thread; subclasses say how records become a table (:meth:`table`)."""

    prefix = "data"

    def __init__(
        self,
        directory: str,
        batch_rows: int = 10_000,
        flush_seconds: float = 5.0,
        after_write: Callable[[], None] | None = None,
    ):
        if batch_rows < 1 or flush_seconds <= 0:
            raise ValueError(f"batch_rows must be >= 1 and flush_seconds > 0, got "
                             f"{batch_rows}, {flush_seconds}")  # fmt: skip
        self.directory = directory
        os.makedirs(self.directory, exist_ok=True)
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.after_write = after_write  # e.g. saving the routing policy beside the logs
        self.rows_written = 0
        self.files_written = 0
        self.errors = 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._sequence = 0
        # the first timestamp-with-zone conversion takes about a second (time zone data):
        # pay it at start-up, not in the writer while the server answers
        pa.array(np.zeros(1, dtype=np.int64), type=pa.timestamp("us", tz="UTC"))
        self._thread = threading.Thread(
            target=self._run, name=f"kfpkit-{self.prefix}-log", daemon=True
        )
        self._thread.start()

    def record(self, entry: Any) -> None:
        """Queues one record; never blocks, never raises for the caller."""
        self._queue.put(entry)

    def close(self, timeout: float = 60.0) -> None:
        """Writes what is queued and stops the writer."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    def rows(self, entry: Any) -> int:
        return 1

    def table(self, entries: list[Any]) -> pa.Table:
        raise NotImplementedError

    def _run(self) -> None:
        pending: list[Any] = []
        rows = 0
        deadline = time.monotonic() + self.flush_seconds
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                item = None
            stop = item is _STOP
            if item is not None and not stop:
                pending.append(item)
                rows += self.rows(item)
            if pending and (stop or rows >= self.batch_rows or time.monotonic() >= deadline):
                self._write(pending)
                pending, rows = [], 0
            if time.monotonic() >= deadline:
                deadline = time.monotonic() + self.flush_seconds
            if stop:
                return

    def _write(self, entries: list[Any]) -> None:
        try:
            table = self.table(entries)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            name = f"{self.prefix}-{stamp}-{os.getpid()}-{self._sequence:06d}.parquet"
            self._sequence += 1
            final = os.path.join(self.directory, name)
            tmp = os.path.join(self.directory, f".{name}.tmp")
            pq.write_table(table, tmp)
            os.replace(tmp, final)
            self.rows_written += table.num_rows
            self.files_written += 1
        except Exception:  # noqa: BLE001 - logging must never take the server down
            self.errors += 1
            _log.exception("%s log: could not write %d record(s)", self.prefix, len(entries))
            return
        if self.after_write is not None:
            try:
                self.after_write()
            except Exception:  # noqa: BLE001
                _log.exception("%s log: the after-write step failed", self.prefix)


class RequestLog(ParquetBatchWriter):
    """Batches :class:`LoggedRequest` records into Parquet files on a writer thread."""

    def __init__(
        self,
        log_dir: str,
        model_name: str,
        model_version: str,
        specs: Sequence[FeatureSpec],
        batch_rows: int = 10_000,
        flush_seconds: float = 5.0,
        domain_check: DomainCheck | None = None,
        after_write: Callable[[], None] | None = None,
    ):
        self.model_name = model_name
        self.model_version = model_version
        self.specs = list(specs)
        self.schema = log_schema(self.specs)
        self.domain_check = domain_check
        super().__init__(os.path.join(log_dir, model_name), batch_rows, flush_seconds,
                         after_write)  # fmt: skip

    def rows(self, entry: LoggedRequest) -> int:
        return len(entry.predictions)

    def table(self, entries: list[LoggedRequest]) -> pa.Table:
        columns: list[pa.Array] = []
        features = {}
        for spec in self.specs:
            values = np.concatenate([e.features[spec.name] for e in entries])
            features[spec.name] = values
            # a missing value is logged as null: what the client sent as null (or "")
            if spec.kind == CATEGORICAL:  # "" -> null in Arrow's C++, not row by row here
                text = pa.array(values, type=pa.string())
                columns.append(pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text))
            else:
                columns.append(pa.array(values, type=pa.float64(), mask=np.isnan(values)))
        counts = [len(e.predictions) for e in entries]
        total = sum(counts)

        def repeat(values: list, arrow_type: pa.DataType) -> pa.Array:
            return pa.array(np.repeat(np.array(values, dtype=object), counts), type=arrow_type)

        flags = (self.domain_check.flags(features, total) if self.domain_check
                 else [""] * total)  # fmt: skip
        by_name = {
            "prediction": pa.array(
                np.concatenate([e.predictions for e in entries]), type=pa.float64()
            ),  # fmt: skip
            "model_name": pa.array([self.model_name] * total, type=pa.string()),
            "model_version": repeat(
                [e.model_version or self.model_version for e in entries], pa.string()
            ),  # fmt: skip
            "variant": repeat(
                [e.variant or e.model_version or self.model_version for e in entries], pa.string()
            ),  # fmt: skip
            "protocol": repeat([e.protocol for e in entries], pa.string()),
            "request_id": repeat([e.request_id for e in entries], pa.string()),
            "row": pa.array(np.concatenate([np.arange(c, dtype=np.int32) for c in counts])),
            "timestamp": pa.array(
                np.repeat(np.array([int(e.received * 1e6) for e in entries]), counts),
                type=pa.timestamp("us", tz="UTC"),
            ),
            "latency_ms": repeat([e.latency_ms for e in entries], pa.float64()),
            "status": repeat([e.status for e in entries], pa.int32()),
            "out_of_domain": pa.array(flags, type=pa.string()),
            "attributions": pa.array(
                [a for e in entries for a in (e.attributions or _NO_ATTRIBUTIONS * self.rows(e))],
                type=pa.string(),
            ),
        }
        columns += [by_name[name] for name in REQUEST_COLUMNS]
        return pa.Table.from_arrays(columns, schema=self.schema)
