"""The embedded split engine: Parquet or CSV data split in this process, as BigQuery would.

Rows get the split BigQuery's ``FARM_FINGERPRINT`` gives them (kfpkit.splitting: the key
encoding the SQL is rendered from, and FarmHash Fingerprint64 in numpy), so a table split on
BigQuery and the same rows split here land in the same splits.

Streaming: the source is read in Arrow record batches (kfpkit.splitting.data), each batch's rows go
to one Parquet writer per split, buffered up to ``ROW_GROUP_ROWS`` rows per split; memory does
not grow with the number of rows. Every split is written under a hidden temporary name in its
output folder and renamed to ``data-000000000000.parquet`` only when every row has been read
and every check passed; on any failure the temporary files are removed, so a failed split
leaves no files that look complete.

Checks, each a ValueError naming the bad value: a path that does not exist or cannot be read,
no data files, Parquet and CSV mixed, files that disagree on a column's type (both files
named), a ragged CSV line, key or label columns missing (named, with the columns there are),
key types that do not split repeatably, an empty source, NULL keys (counted, and a key column
NULL in every row named), a label that is NULL, constant, or has a third value
(kfpkit.splitting.data.LabelCheck).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kfpkit.components.bigquery_split.source import SplitResult
from kfpkit.splitting import data, keys
from kfpkit.splitting.farmhash import fingerprint64

_log = logging.getLogger("kfpkit")

ROW_GROUP_ROWS = 131_072
OUTPUT_FILE = "data-000000000000.parquet"  # the name BigQuery's EXPORT DATA gives one file


@dataclass
class _SplitWriter:
    """One split's Parquet file, written under a temporary name and renamed when complete."""

    name: str
    folder: str
    schema: pa.Schema
    rows: int = 0
    pending: list[pa.Table] = field(default_factory=list)
    pending_rows: int = 0
    writer: pq.ParquetWriter | None = None

    @property
    def temp_path(self) -> str:
        return os.path.join(self.folder, f".{OUTPUT_FILE}.partial-{os.getpid()}")

    def open(self) -> None:
        os.makedirs(self.folder, exist_ok=True)
        for old in os.listdir(self.folder):  # an earlier attempt killed before its clean-up
            if old.startswith(f".{OUTPUT_FILE}.partial-"):
                os.remove(os.path.join(self.folder, old))
        self.writer = pq.ParquetWriter(self.temp_path, self.schema)

    def add(self, rows: pa.Table) -> None:
        if rows.num_rows:
            self.pending.append(rows)
            self.pending_rows += rows.num_rows
            self.rows += rows.num_rows
        if self.pending_rows >= ROW_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.pending and self.writer is not None:
            self.writer.write_table(pa.concat_tables(self.pending), ROW_GROUP_ROWS)
        self.pending, self.pending_rows = [], 0

    def finish(self) -> str:
        """Closes the file and moves it to its final name, replacing an earlier attempt's."""
        self.flush()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        for old in os.listdir(self.folder):
            if old.startswith("data-") and old.endswith(".parquet"):
                os.remove(os.path.join(self.folder, old))
        final = os.path.join(self.folder, OUTPUT_FILE)
        os.replace(self.temp_path, final)
        return final

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if os.path.exists(self.temp_path):
            os.remove(self.temp_path)


def split_files(
    source_uri: str,
    key_columns: list[str],
    split_ratios: dict[str, float],
    output_folders: dict[str, str],
    label_column: str = "",
) -> list[SplitResult]:
    """Splits the data at ``source_uri`` into ``output_folders`` (split name -> local folder
    receiving ``data-000000000000.parquet``); returns the splits in canonical order."""
    ranges = keys.split_ranges(split_ratios)
    key_columns = keys.check_columns(key_columns)
    missing = [r.name for r in ranges if r.name not in output_folders]
    if missing:
        raise RuntimeError(f"no output folder for splits {missing}")
    source = data.list_source(source_uri)
    schema = data.common_schema(source)
    data.check_columns(source, schema, key_columns, "key column(s)")
    if label_column:
        data.check_columns(source, schema, [label_column], "label column")
    for c in key_columns:  # refused before any row is read (a column of NULLs: when read)
        if not pa.types.is_null(schema.field(c).type):
            keys.kind_of_arrow_type(c, schema.field(c).type)
    out_schema = data.output_schema(schema).remove_metadata()
    writers = [_SplitWriter(r.name, output_folders[r.name], out_schema) for r in ranges]
    label = data.LabelCheck(label_column) if label_column else None
    total = null_keys = 0
    nulls_in = dict.fromkeys(key_columns, 0)  # per key column: which one to name
    try:
        for w in writers:
            w.open()
        csv_types = schema if source.format == "csv" else None
        for _path, batch in data.batches(source, csv_types):
            table = pa.Table.from_batches([batch]).cast(out_schema)
            total += table.num_rows
            key = keys.key_text(table, key_columns)
            if label is not None:
                label.add(table.column(label_column).combine_chunks())
            if key.null_count:
                null_keys += key.null_count
                for c in key_columns:
                    nulls_in[c] += table.column(c).null_count
            if null_keys:  # the split fails: only count from here on
                continue
            split_of_row = keys.split_index(keys.buckets(fingerprint64(key)), ranges)
            for i, w in enumerate(writers):
                w.add(table.filter(pa.array(split_of_row == i)))
        if total == 0:
            raise ValueError(f"source {source_uri!r} has no rows: nothing to split")
        if null_keys:
            raise ValueError(_null_keys_message(source_uri, nulls_in, null_keys, total))
        if label is not None:
            label.check(source_uri, total)
        files = [w.finish() for w in writers]
    except BaseException:
        for w in writers:
            w.discard()
        raise
    _log.info("Split %d rows of %s: %s", total, source_uri,
              ", ".join(f"{w.name} {w.rows}" for w in writers))  # fmt: skip
    metadata_schema = data.bigquery_schema(out_schema)
    return [
        SplitResult(w.name, "", w.rows, metadata_schema, os.path.dirname(f))
        for w, f in zip(writers, files, strict=True)
    ]


def _null_keys_message(source_uri: str, nulls_in: dict[str, int], null_keys: int,
                       total: int) -> str:  # fmt: skip
    empty = [c for c, n in nulls_in.items() if n == total]
    if empty:
        return (f"key column(s) {empty} of {source_uri!r} are NULL in every row ({total} rows): "
                "a key must identify each row; choose other key columns")  # fmt: skip
    where = f"{list(nulls_in)}"
    if len(nulls_in) > 1:
        where += " (" + ", ".join(f"{c!r} in {n}" for c, n in nulls_in.items() if n) + ")"
    return (
        f"{null_keys} of {total} rows of {source_uri!r} have a NULL in key column(s) {where}; "
        "NULL keys cannot be split repeatably: filter or fill them first"
    )


def assigned_buckets(table: pa.Table, key_columns: Sequence[str]) -> np.ndarray:
    """Each row's bucket, as the engine computes it (for tests and benchmarks)."""
    return keys.buckets(fingerprint64(keys.key_text(table, key_columns)))
