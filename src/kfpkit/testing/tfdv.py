"""Helpers for the TFDV components' tests: statistics of an in-memory table, demo sample."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tensorflow_metadata.proto.v0 import statistics_pb2

from kfpkit.tfdv.data_files import find_data_files

# 2,000 demo rows (years 2015-2018), shared with the bigquery_split tests.
# Test data stays beside the tests that own it (the repository, not the installed package).
SAMPLE = (
    Path(__file__).resolve().parents[3]
    / "components/bigquery_split/tests/data/employment_sample.parquet"
)


def sample() -> pa.Table:
    return pq.read_table(SAMPLE)


def write_parquet(table: pa.Table, directory: Path, parts: int = 1) -> Path:
    """Writes ``table`` as ``parts`` files ``data-<n>.parquet``, as bigquery_split does."""
    directory.mkdir(parents=True, exist_ok=True)
    step = -(-table.num_rows // parts)
    for i in range(parts):
        pq.write_table(table.slice(i * step, step), directory / f"data-{i:012d}.parquet")
    return directory


def statistics_of(
    table: pa.Table, directory: Path, **kwargs: object
) -> statistics_pb2.DatasetFeatureStatisticsList:
    from kfpkit.tfdv.statistics import compute_statistics

    data = write_parquet(table, directory / "data")
    return compute_statistics(find_data_files(str(data)), str(directory / "stats.pb"), **kwargs)  # type: ignore[arg-type]
