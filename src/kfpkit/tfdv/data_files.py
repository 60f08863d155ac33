"""Finds a Dataset artifact's data files and reads them as Arrow record batches for TFDV.

TFDV's statistics generators take Arrow record batches whose columns are lists (one list of
values per example; a null list is a missing value). Parquet columns are flat, so each
column is wrapped into a list column here, without any pandas or CSV round trip.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kfpkit.runtime.files import files_under

PARQUET = "parquet"
CSV = "csv"
_SUFFIXES = {".parquet": PARQUET, ".pq": PARQUET, ".csv": CSV}
BATCH_ROWS = 10_000


@dataclass(frozen=True)
class DataFiles:
    """The data files of one input, all of one format, checked to be readable."""

    format: str
    paths: tuple[str, ...]
    rows: int | None  # known up front for Parquet (footer metadata), None for CSV
    columns: tuple[str, ...]


def find_data_files(path: str, name: str = "input") -> DataFiles:
    """Lists and checks the Parquet or CSV files at ``path`` (a file or a directory).

    Raises ValueError naming the path when there is nothing to read, formats are mixed, a
    file is corrupt or empty, or the input holds no rows.
    """
    found = files_under(path, tuple(_SUFFIXES), name, ".parquet or .csv")
    formats = {_SUFFIXES.get(os.path.splitext(p)[1].lower()) for p in found}
    if None in formats or len(formats) > 1:
        raise ValueError(f"{name}: expected only Parquet or only CSV files, found {found[:5]}")
    fmt = formats.pop()
    assert fmt is not None
    if fmt == PARQUET:
        return _check_parquet(found, name)
    return _check_csv(found, name)


def _check_parquet(paths: list[str], name: str) -> DataFiles:
    rows = 0
    columns: tuple[str, ...] | None = None
    first: tuple[str, pa.Schema] | None = None
    for p in paths:
        try:
            meta = pq.ParquetFile(p).metadata
        except (pa.ArrowInvalid, OSError) as e:
            raise ValueError(f"{name}: {p!r} is not a readable Parquet file: {e}") from e
        schema = meta.schema.to_arrow_schema()
        names = tuple(schema.names)
        if columns is not None and names != columns:
            raise ValueError(f"{name}: {p!r} has columns {list(names)}, others {list(columns)}")
        if first is not None:
            _check_same_types(name, first, (p, schema))
        columns, first = names, first or (p, schema)
        rows += meta.num_rows
    if rows == 0:
        raise ValueError(f"{name}: the Parquet files under it hold no rows: {paths[:5]}")
    assert columns is not None
    return DataFiles(PARQUET, tuple(paths), rows, columns)


def _check_same_types(
    name: str, first: tuple[str, pa.Schema], other: tuple[str, pa.Schema]
) -> None:
    """Every file of one dataset has the same column types (TFDV would stop on the first
    mismatch with "Cannot determine the type of feature", naming neither file)."""
    for field in other[1]:
        want = first[1].field(field.name).type
        if _comparable(field.type) != _comparable(want):
            raise ValueError(
                f"{name}: column {field.name!r} is {want} in {first[0]!r} but {field.type} in "
                f"{other[0]!r}: all files of a dataset need the same column types"
            )


def _comparable(t: pa.DataType) -> pa.DataType:
    """What TFDV sees of a column type (int32 and int64 files may mix; large strings are
    strings)."""
    t = _tfdv_type(t)
    return pa.string() if pa.types.is_large_string(t) else t


def csv_header(path: str) -> tuple[str, ...]:
    with open(path, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f), None)
        has_row = next(f, None) is not None
    if not header:
        raise ValueError(f"{path!r} is an empty CSV file (no header)")
    if not has_row:
        raise ValueError(f"{path!r} has a header but no rows")
    return tuple(header)


def _check_csv(paths: list[str], name: str) -> DataFiles:
    headers = set()
    for p in paths:
        try:
            headers.add(csv_header(p))
        except (UnicodeDecodeError, csv.Error) as e:
            raise ValueError(f"{name}: {p!r} is not a readable CSV file: {e}") from e
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from e
    if len(headers) > 1:
        raise ValueError(f"{name}: CSV files with different headers: {sorted(headers)}")
    return DataFiles(CSV, tuple(paths), None, headers.pop())


def _tfdv_type(t: pa.DataType) -> pa.DataType:
    """The type a flat column is read as for TFDV: int64, float, or string (BYTES)."""
    if pa.types.is_dictionary(t):
        return _tfdv_type(t.value_type)
    if pa.types.is_boolean(t) or pa.types.is_integer(t):
        return pa.int64()
    if pa.types.is_decimal(t):
        return pa.float64()
    if pa.types.is_temporal(t):
        return pa.string()
    return t


def _flat_type(array: pa.Array) -> pa.Array:
    """Casts a flat column to the type :func:`_tfdv_type` names."""
    if pa.types.is_dictionary(array.type):
        return _flat_type(array.dictionary_decode())
    target = _tfdv_type(array.type)
    return array if target == array.type else array.cast(target)


def as_list_column(array: pa.Array) -> pa.Array:
    """One list per example: ``[v]`` for a value, a null list for a missing one."""
    if pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        return array
    array = _flat_type(array)
    missing = array.is_null()
    present = np.asarray(pc.invert(missing).to_numpy(zero_copy_only=False), dtype=np.int32)
    offsets = np.zeros(len(array) + 1, dtype=np.int32)
    np.cumsum(present, out=offsets[1:])
    values = array.drop_null() if array.null_count else array
    mask = missing if array.null_count else None
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=mask)


def as_tfdv_batch(batch: pa.RecordBatch | pa.Table) -> Iterator[pa.RecordBatch]:
    """Record batches with list columns, at most BATCH_ROWS rows each."""
    batches = batch.to_batches(max_chunksize=BATCH_ROWS) if isinstance(batch, pa.Table) else [batch]
    for b in batches:
        yield pa.RecordBatch.from_arrays([as_list_column(c) for c in b.columns], b.schema.names)
