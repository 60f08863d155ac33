"""Parquet and CSV data as the split reads it: files of a path or gs:// URI, one schema,
record batches, and the types BigQuery would give the columns.

Shared by the embedded split engine (bigquery_split) and host-side checks (``kfpkit run
--data``), which look at a source's files and schema without reading its rows.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

BATCH_ROWS = 65_536
CSV_INFERENCE_BYTES = 4 << 20  # a CSV's column types are inferred from its first 4 MiB
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
_BIGQUERY_TYPES = (  # Arrow type predicate -> BigQuery type name, for the schema metadata
    ("is_boolean", "BOOLEAN"),
    ("is_integer", "INTEGER"),
    ("is_floating", "FLOAT"),
    ("is_string", "STRING"),
    ("is_binary", "BYTES"),
    ("is_date", "DATE"),
    ("is_timestamp", "TIMESTAMP"),
    ("is_decimal", "NUMERIC"),
)


@dataclass
class Source:
    """The data files of a source, all of one format, in a stable order."""

    uri: str
    filesystem: pafs.FileSystem
    files: list[str]
    format: str

    def label(self, path: str) -> str:
        """A file's name as the user would write it (gs:// kept; local paths as they are)."""
        scheme, sep, _ = self.uri.partition("://")
        return f"{scheme}://{path}" if sep and scheme != "file" else path


def _open_filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    if uri.startswith(("./", "../")):
        uri = os.path.abspath(uri)
    try:
        return pafs.FileSystem.from_uri(uri)
    except (pa.ArrowInvalid, ValueError) as e:
        raise ValueError(f"source {uri!r} is not a path or a gs:// URI: {e}") from e


def list_source(uri: str) -> Source:
    """The source's data files: the file itself, or every Parquet/CSV file under the folder
    (recursive; names starting with ``.`` or ``_`` such as ``_SUCCESS`` are skipped)."""
    filesystem, path = _open_filesystem(uri)
    try:
        info = filesystem.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise ValueError(f"source {uri!r} does not exist")
        if info.type == pafs.FileType.File:
            candidates = [info]
        else:
            candidates = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
    except PermissionError as e:
        raise ValueError(f"source {uri!r} cannot be read: {e}") from e
    except NotADirectoryError as e:  # a special file (FIFO, device) named as the source
        raise ValueError(f"source {uri!r} is neither a file nor a folder: {e}") from e
    files: dict[str, list[str]] = {}
    for entry in candidates:
        parts = os.path.relpath(entry.path, path).split("/") if entry.path != path else []
        if entry.type != pafs.FileType.File or any(p[:1] in "._" for p in parts):
            continue
        fmt = FORMATS.get(os.path.splitext(entry.path)[1].lower())
        if fmt:
            files.setdefault(fmt, []).append(entry.path)
    if not files:
        raise ValueError(f"source {uri!r} has no Parquet (.parquet, .pq) or CSV (.csv) files")
    if len(files) > 1:
        raise ValueError(f"source {uri!r} mixes Parquet and CSV files; give one format")
    ((fmt, found),) = files.items()
    return Source(uri, filesystem, sorted(found), fmt)


def bigquery_like(arrow_type: pa.DataType) -> pa.DataType:
    """The Arrow type BigQuery gives a column of this type (a table holds no dictionaries,
    narrow integers or floats); the split files are written in these types."""
    if pa.types.is_dictionary(arrow_type):
        return bigquery_like(arrow_type.value_type)
    if pa.types.is_large_string(arrow_type):
        return pa.string()
    if pa.types.is_large_binary(arrow_type):
        return pa.binary()
    if pa.types.is_signed_integer(arrow_type) or arrow_type in (pa.uint8(), pa.uint16(),
                                                                 pa.uint32()):  # fmt: skip
        return pa.int64()
    if pa.types.is_floating(arrow_type):
        return pa.float64()
    return arrow_type


def output_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, bigquery_like(f.type), f.nullable) for f in schema])


def bigquery_schema(schema: pa.Schema) -> list[dict[str, str]]:
    """The schema as bigquery_split's metadata writes it (BigQuery field type names)."""
    fields = []
    for f in schema:
        kind = next((bq for p, bq in _BIGQUERY_TYPES if getattr(pa.types, p)(f.type)), "")
        fields.append({"name": f.name, "type": kind or str(f.type),
                       "mode": "NULLABLE" if f.nullable else "REQUIRED"})  # fmt: skip
    return fields


@contextlib.contextmanager
def _open(source: Source, path: str) -> Iterator[pa.NativeFile]:
    """One of the source's files, opened for reading; ValueError naming it when its
    permissions (or the folders' above it) do not let this process read it."""
    try:
        with source.filesystem.open_input_file(path) as f:
            yield f
    except PermissionError as e:
        raise ValueError(f"{source.label(path)} cannot be read: {e}") from e


def _file_schema(source: Source, path: str) -> pa.Schema:
    try:
        with _open(source, path) as f:
            if source.format == "parquet":
                return pq.read_schema(f)
            return pcsv.open_csv(
                f, read_options=pcsv.ReadOptions(block_size=CSV_INFERENCE_BYTES)
            ).schema
    except pa.ArrowInvalid as e:
        raise ValueError(f"{source.label(path)} is not readable {source.format}: {e}") from e


def common_schema(source: Source) -> pa.Schema:
    """The schema every file shares (in the output's types); ValueError naming the two files
    and the column when files disagree. Parquet files are checked from their footers; a CSV
    file's types are inferred from its first block, later files are read in the first's
    types (a value that does not fit is reported when it is read)."""
    first = _file_schema(source, source.files[0])
    if source.format == "csv":
        return first
    expected = output_schema(first)
    for path in source.files[1:]:
        other = output_schema(_file_schema(source, path))
        if other.names != expected.names:
            raise ValueError(
                f"{source.label(source.files[0])} has columns {expected.names} but "
                f"{source.label(path)} has {other.names}"
            )
        for a, b in zip(expected, other, strict=True):
            if a.type != b.type:
                raise ValueError(
                    f"column {a.name!r} is {a.type} in {source.label(source.files[0])} but "
                    f"{b.type} in {source.label(path)}"
                )
    return first


def batches(
    source: Source, csv_schema: pa.Schema | None, columns: Sequence[str] | None = None
) -> Iterator[tuple[str, pa.RecordBatch]]:
    """Every file's rows in record batches, in file order; ``columns``: only these columns
    are read (Parquet) or converted (CSV). A CSV is read in ``csv_schema``'s types."""
    for path in source.files:
        try:
            with _open(source, path) as f:
                if source.format == "parquet":
                    rows = pq.ParquetFile(f).iter_batches(BATCH_ROWS, columns=columns)
                    yield from ((path, b) for b in rows)
                else:
                    convert = pcsv.ConvertOptions(column_types=csv_schema,
                                                  include_columns=columns)  # fmt: skip
                    reader = pcsv.open_csv(f, convert_options=convert)
                    yield from ((path, b) for b in reader)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise ValueError(f"{source.label(path)}: {e}") from e


def check_columns(source: Source, schema: pa.Schema, wanted: Sequence[str], what: str) -> None:
    missing = [c for c in wanted if c not in schema.names]
    if missing:
        raise ValueError(f"{what} {missing} not in {source.uri!r}; its columns are {schema.names}")


def row_count_at_least_one(source: Source) -> bool:
    """Whether the source has a row: Parquet footers, or a CSV's first batch, per file."""
    for path in source.files:
        with _open(source, path) as f:
            if source.format == "parquet":
                if pq.ParquetFile(f).metadata.num_rows:
                    return True
            elif any(batch.num_rows for batch in pcsv.open_csv(f)):
                return True
    return False


@dataclass
class LabelCheck:
    """A binary label column's NULLs and distinct values, added batch by batch (at most three
    values are kept: a binary label has two; a third is the error's example). The one check
    of a label's values: the split step runs it over the rows it splits, ``kfpkit run --data``
    over the label column alone before a run."""

    column: str
    nulls: int = 0
    values: list[object] = field(default_factory=list)

    def add(self, values: pa.Array | pa.ChunkedArray) -> None:
        self.nulls += values.null_count
        if len(self.values) < 3:
            for v in pc.unique(values.drop_null()).to_pylist():
                if v not in self.values and len(self.values) < 3:
                    self.values.append(v)

    def check(self, source: str, total: int) -> None:
        """ValueError naming the column and the values, unless its ``total`` rows hold two
        values and no NULL."""
        where = f"label column {self.column!r} of {source!r}"
        if self.nulls == total:
            raise ValueError(f"{where} is NULL in every row")
        if self.nulls:
            raise ValueError(f"{where} is NULL in {self.nulls} of {total} rows")
        if len(self.values) == 1:
            raise ValueError(f"{where} has one value ({self.values[0]!r}) in every row")
        if len(self.values) > 2:
            raise ValueError(
                f"{where} has a third value {self.values[2]!r} (after {self.values[0]!r} and "
                f"{self.values[1]!r}); the label must be binary"
            )


def check_label(source: Source, schema: pa.Schema, column: str) -> None:
    """The label's values checked as the split checks them, reading only that column in
    batches (memory does not grow with rows). ValueError naming the column and values."""
    label, total = LabelCheck(column), 0
    csv_types = schema if source.format == "csv" else None
    for _path, batch in batches(source, csv_types, [column]):
        total += batch.num_rows
        label.add(batch.column(0))
    if total:  # no rows: the caller's error
        label.check(source.uri, total)


def check_source(uri: str, key_columns: Sequence[str], label_column: str = "") -> pa.Schema:
    """What can be checked before a run without reading the rows' other columns: the path,
    its files and their schemas, the key and label columns, at least one row, and the label's
    values (:func:`check_label`). ValueError naming the bad value."""
    source = list_source(uri)
    schema = common_schema(source)
    check_columns(source, schema, key_columns, "key column(s)")
    if label_column:
        check_columns(source, schema, [label_column], "label column")
    if not row_count_at_least_one(source):
        raise ValueError(f"source {uri!r} has no rows: nothing to split")
    if label_column:
        check_label(source, schema, label_column)
    return schema
