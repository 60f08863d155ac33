"""What ``source_table`` names, and what either engine returns for each split.

A source is a BigQuery table (``bq://project.dataset.table`` or plain
``project.dataset.table``) or Parquet/CSV data: a file or folder given as an absolute or
``./`` path, a ``file://`` URI or a ``gs://`` URI. Tables run on BigQuery (runner.py), data
files on the embedded engine (embedded.py); both assign rows by kfpkit.splitting.keys and
return :class:`SplitResult` for the launcher to record the same outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

BIGQUERY_SCHEME = "bq://"
FILE_PREFIXES = ("/", "./", "../", "file://", "gs://")
PARQUET_PATTERN = "data-*.parquet"


@dataclass
class SplitResult:
    name: str
    table_id: str  # "" when the source was data files (no table is written)
    row_count: int
    schema: list[dict[str, str]]  # BigQuery terms: name, type, mode
    export_uri: str = ""


def is_file_source(source: str) -> bool:
    """True for Parquet/CSV data (a path or gs:// URI), False for a BigQuery table id."""
    if not isinstance(source, str) or not source:
        raise ValueError(f"source_table must be a table id or a data path/URI, got {source!r}")
    return source.startswith(FILE_PREFIXES)


def table_id(source: str) -> str:
    """``project.dataset.table`` of a BigQuery source (``bq://`` removed)."""
    return source[len(BIGQUERY_SCHEME) :] if source.startswith(BIGQUERY_SCHEME) else source
