"""Test helper for the train family's components: the train component's checked-in demo
sample cut into train/validation/test split folders, as bigquery_split exports them."""

from __future__ import annotations

from pathlib import Path

# Test data stays beside the tests that own it (the repository, not the installed package).
SAMPLE = Path(__file__).resolve().parents[3] / "components/train/tests/data/employment_6000.parquet"
SPLIT_ROWS = (("train", 4000), ("validation", 1000), ("test", 1000))


def sample_splits(root: Path) -> dict[str, Path]:
    """Writes ``<root>/<split>/data-000000000000.parquet`` for each split; name -> folder."""
    import pyarrow.parquet as pq

    table, start, dirs = pq.read_table(SAMPLE), 0, {}
    for name, rows in SPLIT_ROWS:
        dirs[name] = root / name
        dirs[name].mkdir(parents=True)
        pq.write_table(table.slice(start, rows), dirs[name] / "data-000000000000.parquet")
        start += rows
    return dirs
