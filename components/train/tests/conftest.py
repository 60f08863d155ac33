"""Splits of the checked-in sample, as bigquery_split writes them: data-*.parquet per split."""

from pathlib import Path

import pyarrow.parquet as pq
import pytest

SAMPLE = Path(__file__).parent / "data" / "employment_6000.parquet"
SPLIT_ROWS = {"train": 4000, "validation": 1000, "test": 1000}


def write_splits(root: Path) -> dict[str, Path]:
    table, start, dirs = pq.read_table(SAMPLE), 0, {}
    for name, rows in SPLIT_ROWS.items():
        dirs[name] = root / name
        dirs[name].mkdir(parents=True)
        part = table.slice(start, rows)
        # two files per split, as an export writes several shards
        pq.write_table(part.slice(0, rows // 2), dirs[name] / "data-000000000000.parquet")
        pq.write_table(part.slice(rows // 2), dirs[name] / "data-000000000001.parquet")
        start += rows
    return dirs


@pytest.fixture(scope="session")
def splits(tmp_path_factory) -> dict[str, Path]:
    return write_splits(tmp_path_factory.mktemp("splits"))
