"""The one reader of served traffic: request logs left-joined with their feedback.

Every consumer of served traffic (``online_experiment``, ``monitor_serving``, the bandit's
weight update) reads it here, so that the log layout has one definition:

- ``<dir>/data-*.parquet`` (top level only): one row per served example: the features, then
  the contract's columns (:data:`REQUEST_COLUMNS`);
- ``<dir>/feedback/feedback-*.parquet``: ``request_id``, ``row``, ``label``, ``reward``,
  ``timestamp``: outcomes sent back after the fact, joined on (``request_id``, ``row``).

``source`` is a local folder (or KFP's ``/gcs/...`` mount), a ``gs://bucket/folder`` (read with
pyarrow's own GCS file system: no gcsfs), or ``bq://project.dataset.table``: the BigQuery table
a Vertex AI endpoint's request-response logging writes (``endpoint``, ``deployed_model_id``,
``logging_time``, ``request_id``, ``request_payload``, ``response_payload``), translated into the
same columns (see :func:`read_vertex_table`).

Pure pyarrow (and google-cloud-bigquery, imported only for ``bq://``): this module runs in
every image family, including tfdv's pyarrow 10.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

_log = logging.getLogger("kfpkit")

TIMESTAMP = pa.timestamp("us", tz="UTC")
REQUEST_FILES = "data-*.parquet"
FEEDBACK_FOLDER = "feedback"
FEEDBACK_FILES = "feedback-*.parquet"

# The contract's request columns, besides the features. Optional ones (absent from older
# logs) are filled: ``variant`` with the model version, ``status`` with 200 (only answered
# requests were logged), ``out_of_domain`` with "" and ``latency_ms`` with null (unknown),
# ``attributions`` with null (a row answered by ``:explain`` carries its attributions as JSON
# ``{feature: attribution}``; a predicted row has none).
REQUEST_COLUMNS: dict[str, pa.DataType] = {
    "prediction": pa.float64(),
    "model_name": pa.string(),
    "model_version": pa.string(),
    "variant": pa.string(),
    "protocol": pa.string(),
    "request_id": pa.string(),
    "row": pa.int32(),
    "timestamp": TIMESTAMP,
    "latency_ms": pa.float64(),
    "status": pa.int32(),
    "out_of_domain": pa.string(),
    "attributions": pa.string(),
}
OPTIONAL_COLUMNS = ("variant", "latency_ms", "status", "out_of_domain", "attributions")
FEEDBACK_COLUMNS: dict[str, pa.DataType] = {
    "request_id": pa.string(),
    "row": pa.int32(),
    "label": pa.float64(),
    "reward": pa.float64(),
    "timestamp": TIMESTAMP,
}
# What the join adds to each request row (null when no feedback came for it).
JOINED_COLUMNS: dict[str, pa.DataType] = {
    "label": pa.float64(),
    "reward": pa.float64(),
    "feedback_timestamp": TIMESTAMP,
}
# Schema metadata of the table read_served returns: how much feedback was dropped, and why.
DUPLICATE_FEEDBACK_KEY = b"kfpkit.duplicate_feedback_rows"
UNMATCHED_FEEDBACK_KEY = b"kfpkit.unmatched_feedback_rows"

_BQ_SOURCE = re.compile(r"^bq://([a-z][a-z0-9\-]{4,28}[a-z0-9])\.([A-Za-z0-9_]{1,1024})\."
                        r"([A-Za-z0-9_\-]{1,1024})$")  # fmt: skip


@dataclass(frozen=True)
class Window:
    """A half-open time window ``[start, end)``; None: unbounded on that side."""

    start: datetime | None = None
    end: datetime | None = None


def as_utc(value: datetime | str | None, name: str) -> datetime | None:
    """A datetime or ISO-8601 text as an aware UTC datetime (naive means UTC); "" is None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{name} is not an ISO-8601 time: {value!r}") from None
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime or ISO-8601 text, not {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def empty_table(features: pa.Schema | None = None) -> pa.Table:
    """The columns :func:`read_served` returns, without rows (features as given, or none)."""
    fields = list(features or [])
    fields += [pa.field(n, t) for n, t in REQUEST_COLUMNS.items()]
    fields += [pa.field(n, t) for n, t in JOINED_COLUMNS.items()]
    return pa.schema(fields).empty_table()


def read_served(
    source: str,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    *,
    filesystem: pafs.FileSystem | None = None,
    bigquery_endpoint: str = "",
) -> pa.Table:
    """Served rows with ``start <= timestamp < end``, each with its feedback (if any).

    Returns the features (as logged), the contract's columns (:data:`REQUEST_COLUMNS`, in
    that order, optional ones filled for older logs) and ``label``, ``reward``,
    ``feedback_timestamp`` from the first feedback for the row (null when none). Rows are in
    file-name order (the UTC time in the name), then file order. Feedback is joined whatever
    its own time: a label arrives after the request it belongs to. When several feedback
    rows name one (request_id, row), the earliest (by its timestamp, then file order) is kept;
    the number dropped is logged and kept in the schema metadata
    (:data:`DUPLICATE_FEEDBACK_KEY`), as is the number of feedback rows naming no logged row
    (:data:`UNMATCHED_FEEDBACK_KEY`, counted over the whole log, not only the window).

    An empty window (or no log files yet) gives an empty table with the right columns: the
    caller decides what that means.

    Args:
        source: A folder (local, or ``gs://bucket/folder``) in the log layout, or
            ``bq://project.dataset.table`` (a Vertex AI request-response logging table).
        start: Start of the window (inclusive), an aware or naive-UTC datetime or ISO text.
        end: End of the window (exclusive).
        filesystem: The file system of a ``gs://`` source instead of GCS (tests use a
            local root; any pyarrow file system whose paths are ``bucket/folder``).
        bigquery_endpoint: BigQuery API endpoint for ``bq://`` (the emulator); empty for
            BigQuery itself.

    Raises:
        ValueError: A malformed source, a local folder that does not exist, a time that is
            not ISO-8601, ``start >= end``, a request file that lacks a contract column,
            or files of two incompatible schemas (both files named).
    """
    window = Window(as_utc(start, "start"), as_utc(end, "end"))
    if window.start and window.end and window.start >= window.end:
        raise ValueError(f"start {window.start.isoformat()} is not before end "
                         f"{window.end.isoformat()}")  # fmt: skip
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"source must be a folder, gs:// folder or bq:// table, not {source!r}")
    source = source.strip()
    if source.startswith("bq://"):
        return read_vertex_table(source, window, bigquery_endpoint)
    fs, folder = _filesystem(source, filesystem)
    requests = _read_requests(fs, folder, window)
    feedback = _read_feedback(fs, _join(folder, FEEDBACK_FOLDER))
    return join_feedback(requests, feedback)


def _filesystem(source: str, filesystem: pafs.FileSystem | None) -> tuple[pafs.FileSystem, str]:
    if source.startswith("gs://"):
        path = source[len("gs://") :].strip("/")
        if not path:
            raise ValueError(f"source {source!r} names no bucket")
        if filesystem is not None:
            return filesystem, path
        return pafs.GcsFileSystem(), path
    if "://" in source and not source.startswith("file://"):
        raise ValueError(
            f"unsupported log source {source!r}: a folder, gs://bucket/folder or "
            "bq://project.dataset.table"
        )
    path = os.path.abspath(source[len("file://") :] if source.startswith("file://") else source)
    if not os.path.isdir(path):
        raise ValueError(f"log folder {source!r} does not exist (or is not a folder)")
    return filesystem or pafs.LocalFileSystem(), path


def _join(folder: str, name: str) -> str:
    return f"{folder.rstrip('/')}/{name}"


def _list(fs: pafs.FileSystem, folder: str, pattern: str) -> list[str]:
    """Files directly in ``folder`` whose name matches ``pattern``, in name order.

    Writers write under a temporary name (not matching the pattern) and rename, so every
    file listed is whole.
    """
    try:
        infos = fs.get_file_info(pafs.FileSelector(folder, recursive=False, allow_not_found=True))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(
        i.path
        for i in infos
        if i.type == pafs.FileType.File and fnmatch.fnmatchcase(i.base_name, pattern)
    )


def _read_file(fs: pafs.FileSystem, path: str) -> pa.Table:
    try:
        with fs.open_input_file(path) as f:
            return pq.read_table(f)
    except (pa.ArrowInvalid, OSError) as e:
        raise ValueError(f"log file {path!r} is not readable Parquet: {e}") from e


def _conform(table: pa.Table, columns: dict[str, pa.DataType], path: str,
             optional: Sequence[str] = ()) -> pa.Table:  # fmt: skip
    """The contract's columns cast to their types (in place); optional ones filled."""
    for name, kind in columns.items():
        index = table.schema.get_field_index(name)
        if index < 0:
            if name not in optional:
                raise ValueError(f"log file {path!r} has no {name!r} column (the log contract's)")
            table = table.append_column(pa.field(name, kind), _default(table, name, kind))
            continue
        column = table.column(index)
        if column.type != kind:
            try:
                column = column.cast(kind)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise ValueError(
                    f"log file {path!r}: column {name!r} is {column.type}, not {kind}: {e}"
                ) from e
            table = table.set_column(index, pa.field(name, kind), column)
    return table


def _default(table: pa.Table, name: str, kind: pa.DataType) -> pa.Array:
    n = table.num_rows
    if name == "variant":  # one model served: the variant is its version
        return table.column("model_version").combine_chunks().cast(kind)
    if name == "status":
        return pa.array([200] * n, kind)
    if name == "out_of_domain":
        return pa.array([""] * n, kind)
    return pa.nulls(n, kind)


def _feature_schema(table: pa.Table, columns: dict[str, pa.DataType]) -> pa.Schema:
    return pa.schema([f for f in table.schema if f.name not in columns])


def _compatible(seen: pa.Schema, schema: pa.Schema) -> bool:
    """Same feature names; same types, except that an all-null column fits any type."""
    if seen.names != schema.names:
        return False
    return all(
        a.type == b.type or pa.types.is_null(a.type) or pa.types.is_null(b.type)
        for a, b in zip(seen, schema, strict=True)
    )


def _window_mask(table: pa.Table, window: Window) -> pa.ChunkedArray | None:
    ts = table.column("timestamp")
    mask = None
    if window.start is not None:
        mask = pc.greater_equal(ts, pa.scalar(window.start, TIMESTAMP))
    if window.end is not None:
        below = pc.less(ts, pa.scalar(window.end, TIMESTAMP))
        mask = below if mask is None else pc.and_(mask, below)
    return mask


def _read_requests(fs: pafs.FileSystem, folder: str, window: Window) -> pa.Table:
    tables: list[pa.Table] = []
    features: pa.Schema | None = None
    first = ""
    for path in _list(fs, folder, REQUEST_FILES):
        table = _conform(_read_file(fs, path), REQUEST_COLUMNS, path, OPTIONAL_COLUMNS)
        schema = _feature_schema(table, REQUEST_COLUMNS)
        if features is None:
            features, first = schema, path
        elif not _compatible(features, schema):
            raise ValueError(
                f"log files of two incompatible schemas: {first!r} has features "
                f"{_describe(features)}; {path!r} has {_describe(schema)}"
            )
        else:  # an all-null feature in one file takes the type the others give it
            features = pa.schema([b if pa.types.is_null(a.type) else a
                                  for a, b in zip(features, schema, strict=True)])  # fmt: skip
        mask = _window_mask(table, window)
        tables.append(table if mask is None else table.filter(mask))
    if features is None:
        return empty_table().drop([n for n in JOINED_COLUMNS])
    ordered = [*features.names, *REQUEST_COLUMNS]
    target = pa.schema([*features, *(pa.field(n, t) for n, t in REQUEST_COLUMNS.items())])
    return pa.concat_tables([t.select(ordered).cast(target) for t in tables])


def _describe(schema: pa.Schema) -> str:
    return "(" + ", ".join(f"{f.name}: {f.type}" for f in schema) + ")"


def _read_feedback(fs: pafs.FileSystem, folder: str) -> pa.Table:
    tables = []
    for path in _list(fs, folder, FEEDBACK_FILES):
        table = _conform(_read_file(fs, path), FEEDBACK_COLUMNS, path, ("label", "reward"))
        tables.append(table.select(list(FEEDBACK_COLUMNS)))
    if not tables:
        return pa.schema([pa.field(n, t) for n, t in FEEDBACK_COLUMNS.items()]).empty_table()
    return pa.concat_tables(tables)


def _keys(table: pa.Table) -> pa.Array:
    """(request_id, row) as one string per row: ``<request_id>|<row>`` (the row is a number
    after the last ``|``, so no two pairs share a key)."""
    row = pc.cast(table.column("row"), pa.string())
    return pc.binary_join_element_wise(table.column("request_id"), row, "|").combine_chunks()


def join_feedback(requests: pa.Table, feedback: pa.Table) -> pa.Table:
    """The request rows (their order kept) left-joined with their first feedback.

    A lookup of each row's key in the feedback's keys (``index_in`` answers the first match),
    not a hash join: the requests keep their order and only the feedback columns move. When
    one key has several feedback rows they are first put in time order (then file order), so
    that the first match is the earliest.
    """
    n = requests.num_rows
    duplicates = unmatched = 0
    columns = {name: pa.nulls(n, kind) for name, kind in JOINED_COLUMNS.items()}
    if feedback.num_rows:
        keys = _keys(feedback)
        distinct = pc.unique(keys)
        duplicates = feedback.num_rows - len(distinct)
        if duplicates:
            _log.warning("feedback: %d duplicate rows for an already answered (request_id, "
                         "row) ignored; the earliest of each was kept", duplicates)  # fmt: skip
            order = pc.sort_indices(
                feedback.append_column("_order", pa.array(range(feedback.num_rows), pa.int64())),
                [("timestamp", "ascending"), ("_order", "ascending")],
            )
            feedback, keys = feedback.take(order), keys.take(order)
        if n:
            request_keys = _keys(requests)
            index = pc.index_in(request_keys, value_set=keys)
            sources = {"label": "label", "reward": "reward", "feedback_timestamp": "timestamp"}
            for name, source in sources.items():
                column = feedback.column(source).combine_chunks().take(index)
                columns[name] = column.cast(JOINED_COLUMNS[name])
            found = pc.is_in(distinct, value_set=request_keys)
            unmatched = len(distinct) - int(pc.sum(found).as_py() or 0)
        else:
            unmatched = len(distinct)
    table = requests
    for name, kind in JOINED_COLUMNS.items():
        table = table.append_column(pa.field(name, kind), columns[name])
    metadata = {DUPLICATE_FEEDBACK_KEY: str(duplicates).encode(),
                UNMATCHED_FEEDBACK_KEY: str(unmatched).encode()}  # fmt: skip
    return table.replace_schema_metadata(metadata)


def duplicate_feedback(table: pa.Table) -> int:
    """How many duplicate feedback rows :func:`read_served` dropped (its metadata)."""
    return int((table.schema.metadata or {}).get(DUPLICATE_FEEDBACK_KEY, b"0"))


def unmatched_feedback(table: pa.Table) -> int:
    """How many feedback rows named no logged request row (:func:`read_served`'s metadata)."""
    return int((table.schema.metadata or {}).get(UNMATCHED_FEEDBACK_KEY, b"0"))


# --- Vertex AI request-response logging (BigQuery) ----------------------------------------


def parse_bq_source(source: str) -> tuple[str, str, str]:
    """``bq://project.dataset.table`` -> (project, dataset, table); ValueError naming it."""
    match = _BQ_SOURCE.match(source)
    if not match:
        raise ValueError(f"not a BigQuery table source (bq://project.dataset.table): {source!r}")
    return match.group(1), match.group(2), match.group(3)


def _bigquery_client(project: str, endpoint: str) -> Any:
    from google.cloud import bigquery

    if endpoint:  # the emulator: anonymous
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        return bigquery.Client(project=project, credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                               client_options=ClientOptions(api_endpoint=endpoint))  # fmt: skip
    return bigquery.Client(project=project)


def read_vertex_table(source: str, window: Window, bigquery_endpoint: str = "") -> pa.Table:
    """A Vertex AI endpoint's request-response logging table as served rows.

    Each logged request holds ``request_payload`` (JSON strings, one per instance; a single
    ``{"instances": [...]}`` text is accepted too) and ``response_payload`` (one prediction per
    instance). Each instance becomes a row: an object's fields are the features (numbers as
    double, others as string; a list instance gives ``x0``, ``x1``, ...); ``prediction`` is a
    numeric prediction, the only number of a one-element list or object, or the last of a
    list of class probabilities. ``model_name`` is the endpoint, ``model_version`` and
    ``variant`` the deployed model id (a traffic split across deployed models is the
    experiment), ``protocol`` ``v1`` (Vertex's instances/predictions), ``status`` 200 (only
    answered requests are logged) and ``latency_ms`` null (Vertex does not log it).

    Feedback: a table ``<table>_feedback`` in the same dataset, when it exists, with the
    feedback files' columns (``request_id`` as text).
    """
    project, dataset, name = parse_bq_source(source)
    try:
        from google.api_core import exceptions as gexc
        from google.cloud import bigquery
    except ImportError as e:  # the train image has no BigQuery client
        raise RuntimeError(f"reading {source} needs google-cloud-bigquery: {e}") from e
    client = _bigquery_client(project, bigquery_endpoint)
    conditions, params = [], []
    if window.start is not None:
        conditions.append("logging_time >= @start")
        params.append(bigquery.ScalarQueryParameter("start", "TIMESTAMP", window.start))
    if window.end is not None:
        conditions.append("logging_time < @end")
        params.append(bigquery.ScalarQueryParameter("end", "TIMESTAMP", window.end))
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = (
        "SELECT endpoint, deployed_model_id, logging_time, request_id, request_payload, "
        f"response_payload FROM `{project}.{dataset}.{name}` "
        f"{where} ORDER BY logging_time"
    )
    config = bigquery.QueryJobConfig(query_parameters=params)
    try:
        rows = list(client.query(sql, job_config=config).result())
    except gexc.NotFound as e:
        raise ValueError(f"BigQuery table {source!r} not found: {e.message}") from e
    requests = _vertex_rows(rows, source)
    try:
        feedback_rows = list(client.query(
            "SELECT request_id, `row`, label, reward, timestamp "
            f"FROM `{project}.{dataset}.{name}_feedback`"
        ).result())  # fmt: skip
    except gexc.NotFound:
        feedback_rows = []
    feedback = pa.Table.from_pylist(
        [{**dict(r.items()), "request_id": _request_id(r["request_id"])} for r in feedback_rows],
        schema=pa.schema([pa.field(n, t) for n, t in FEEDBACK_COLUMNS.items()]),
    )
    return join_feedback(requests, feedback)


def _request_id(value: Any) -> str:
    """Vertex logs request ids as NUMERIC: the integer's digits, as the response header has it."""
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return str(int(value))
    return str(value)


def _payload(value: Any) -> list[Any]:
    """One logged payload as a list of instances (or predictions)."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out: list[Any] = []
    for item in items:
        doc = json.loads(item) if isinstance(item, str) else item
        if isinstance(doc, dict) and len(items) == 1:
            for key in ("instances", "predictions"):
                if isinstance(doc.get(key), list):
                    out.extend(doc[key])
                    break
            else:
                out.append(doc)
        else:
            out.append(doc)
    return out


def _prediction(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list) and value and all(isinstance(v, int | float) for v in value):
        return float(value[-1])  # one score, or class probabilities: the positive (last) class
    if isinstance(value, dict):
        numbers = [v for v in value.values() if isinstance(v, int | float | list)]
        return _prediction(numbers[0]) if len(numbers) == 1 else None
    return None


def _vertex_rows(rows: Sequence[Any], source: str) -> pa.Table:
    records: list[dict[str, Any]] = []
    kinds: dict[str, pa.DataType] = {}
    keys: set[str] = set()  # a feature null in every instance is kept (as string)
    for r in rows:
        try:
            instances = _payload(r["request_payload"])
            predictions = _payload(r["response_payload"])
        except json.JSONDecodeError as e:
            raise ValueError(f"{source}: request {r['request_id']} has a payload that is not "
                             f"JSON: {e}") from e  # fmt: skip
        for i, instance in enumerate(instances):
            fields = (instance if isinstance(instance, dict)
                      else {f"x{j}": v for j, v in enumerate(instance)}
                      if isinstance(instance, list) else {"x0": instance})  # fmt: skip
            record: dict[str, Any] = {}
            for key, value in fields.items():
                numeric = isinstance(value, int | float) and not isinstance(value, bool)
                kind = pa.float64() if numeric else pa.string()
                keys.add(key)
                if value is not None and kinds.setdefault(key, kind) != kind:
                    kinds[key] = pa.string()  # mixed types: keep as text
                record[key] = value
            record.update(
                prediction=_prediction(predictions[i]) if i < len(predictions) else None,
                model_name=r["endpoint"],
                model_version=r["deployed_model_id"],
                variant=r["deployed_model_id"],
                protocol="v1",
                request_id=_request_id(r["request_id"]),
                row=i,
                timestamp=r["logging_time"],
                latency_ms=None,
                status=200,
                out_of_domain="",
            )
            records.append(record)
    features = pa.schema([pa.field(k, kinds.get(k, pa.string())) for k in sorted(keys)])
    schema = pa.schema([*features, *(pa.field(n, t) for n, t in REQUEST_COLUMNS.items())])
    for record in records:
        for f in features:
            value = record.get(f.name)
            if f.type == pa.string() and value is not None and not isinstance(value, str):
                record[f.name] = json.dumps(value)
    return pa.Table.from_pylist(records, schema=schema)
