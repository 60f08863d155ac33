"""Pure, tested pieces of the split: identifier validation, bucket bounds and the SQL text.

Nothing here talks to BigQuery. Every identifier that reaches SQL passes a validator below
first and is then quoted with backticks, so a value such as ``a.b.c`; DROP TABLE x`` is
rejected before any job is sent.

How a row is assigned: kfpkit.splitting.keys, the one definition the embedded engine
(embedded.py) computes too; :func:`key_expression` and :func:`assign_sql` render it as SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The assignment of rows, shared with the embedded engine; re-exported for this module's users.
from kfpkit.splitting.keys import (  # noqa: F401
    BUCKETS,
    DEFAULT_RATIOS,
    KEY_SEPARATOR,
    KEY_TYPES,
    STANDARD_SPLITS,
    SplitRange,
    bucket_sql,
    canonical_order,
    check_columns,
    split_ranges,
)
from kfpkit.splitting.keys import key_sql as key_expression  # noqa: F401

BUCKET_COLUMN = "kfpkit_bucket"
# The step's defaults (component, launcher and SplitRequest read them here).
DEFAULT_LOCATION = "US"
PARQUET = "parquet"  # export format: every split exported as Parquet files; "none": tables only

_PROJECT_RE = re.compile(r"^(?:[a-z][a-z0-9.-]{0,61}[a-z0-9]:)?[a-z][a-z0-9-]{0,61}[a-z0-9]\Z")
_DATASET_RE = re.compile(r"^[A-Za-z0-9_]{1,1024}\Z")
_TABLE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,1023}\Z")
# Source columns are only quoted, never chosen by the user: refuse what could break quoting.
_SOURCE_COLUMN_RE = re.compile(r"^[^`\\\n\r]{1,300}\Z")


@dataclass(frozen=True)
class TableRef:
    project: str
    dataset: str
    table: str

    @property
    def id(self) -> str:
        return f"{self.project}.{self.dataset}.{self.table}"

    @property
    def sql(self) -> str:
        return f"`{self.project}.{self.dataset}.{self.table}`"


def parse_table_id(value: str, what: str = "table") -> TableRef:
    """Parses ``project.dataset.table``; raises ValueError naming the bad value."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string 'project.dataset.table', got {value!r}")
    parts = value.split(".")
    # Domain-scoped projects ("example.com:proj") contain a dot before the colon.
    if len(parts) == 4 and ":" in parts[1]:
        parts = [parts[0] + "." + parts[1], parts[2], parts[3]]
    if len(parts) != 3:
        raise ValueError(f"{what} must be 'project.dataset.table', got {value!r}")
    project, dataset, table = parts
    label = f"{what} {value!r}"
    check_project(project, label)
    check_dataset(dataset, label)
    if not _TABLE_RE.match(table):
        raise ValueError(f"{label} has an invalid table name {table!r}")
    return TableRef(project, dataset, table)


def check_project(project: str, what: str = "project") -> str:
    if not isinstance(project, str) or not _PROJECT_RE.match(project):
        raise ValueError(f"{what} has an invalid project id {project!r}")
    return project


# Multi-regions (US, EU) and regions (us-central1, europe-west4, northamerica-northeast1).
_LOCATION_RE = re.compile(r"^(?:[A-Za-z]{2,}|[a-z]+-[a-z]+[0-9]+)\Z")


def check_location(location: str) -> str:
    """A BigQuery location; empty is refused (the emulator answers a dataset created without
    one with 500s, which clients retry for minutes)."""
    if not isinstance(location, str) or not _LOCATION_RE.match(location):
        raise ValueError(
            f"location must be a BigQuery location such as 'US', 'EU' or 'us-central1', "
            f"not {location!r}"
        )
    return location


def check_dataset(dataset: str, what: str = "destination_dataset") -> str:
    if not isinstance(dataset, str) or not _DATASET_RE.match(dataset):
        raise ValueError(f"{what} has an invalid dataset name {dataset!r}")
    return dataset


def parse_dataset_id(value: str, default_project: str) -> tuple[str, str]:
    """``dataset`` or ``project.dataset`` -> (project, dataset)."""
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"destination_dataset must be 'dataset' or 'project.dataset', got {value!r}"
        )
    parts = value.rsplit(".", 1)
    if len(parts) == 1:
        return check_project(default_project, "project"), check_dataset(parts[0])
    return check_project(parts[0], "destination_dataset"), check_dataset(parts[1])


def assign_sql(source: TableRef, staging: TableRef, key_expr: str) -> str:
    """One scan of the source: every column plus the row's bucket, hashed once per row.

    The bucket is materialised in the staging table, so the per-split statements filter on a
    stored integer and neither the source nor FARM_FINGERPRINT is touched again. A NULL key
    gives a NULL bucket, which :func:`counts_sql` reports.
    """
    return (
        f"CREATE OR REPLACE TABLE {staging.sql}\n"
        f"OPTIONS(expiration_timestamp=TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) AS\n"
        f"SELECT *, {bucket_sql(key_expr)} AS {BUCKET_COLUMN}\n"
        f"FROM {source.sql}"
    )


def counts_sql(staging: TableRef, ranges: list[SplitRange]) -> str:
    """Rows per split and rows with a NULL key, from the staging table in one pass."""
    cols = [f"COUNTIF({BUCKET_COLUMN} IS NULL) AS null_keys", "COUNT(*) AS total"]
    cols += [
        f"COUNTIF({BUCKET_COLUMN} >= {r.lower} AND {BUCKET_COLUMN} < {r.upper}) AS `{r.name}`"
        for r in ranges
    ]
    return f"SELECT {', '.join(cols)}\nFROM {staging.sql}"


def projection(columns: list[str]) -> str:
    """Explicit ``c AS c`` list (backtick-quoted) of the source's columns, in the source's order.

    On BigQuery this equals ``* EXCEPT(kfpkit_bucket)``. It also restores the source's column
    case on the emulator, whose hashing statement lower-cases every column name.
    """
    for c in columns:
        if not isinstance(c, str) or not _SOURCE_COLUMN_RE.match(c):
            raise ValueError(f"source column name {c!r} cannot be quoted safely")
    return ", ".join(f"`{c}` AS `{c}`" for c in columns)


def _split_select(staging: TableRef, r: SplitRange, columns: list[str]) -> str:
    return (
        f"SELECT {projection(columns)}\nFROM {staging.sql}\n"
        f"WHERE {BUCKET_COLUMN} >= {r.lower} AND {BUCKET_COLUMN} < {r.upper}"
    )


def write_split_sql(
    staging: TableRef, destination: TableRef, r: SplitRange, columns: list[str]
) -> str:
    """Creates or replaces one destination table; atomic per table, idempotent on re-run."""
    return f"CREATE OR REPLACE TABLE {destination.sql} AS\n{_split_select(staging, r, columns)}"


_EXPORT_URI_RE = re.compile(
    r"^gs://[a-z0-9][a-z0-9._-]{1,220}(/[^'\\\s]*)?/[A-Za-z0-9_.-]*\*\.parquet\Z"
)


def export_split_sql(staging: TableRef, uri_pattern: str, r: SplitRange, columns: list[str]) -> str:
    """EXPORT DATA of one split straight from BigQuery into Parquet files at ``uri_pattern``."""
    if not _EXPORT_URI_RE.match(uri_pattern):
        raise ValueError(
            f"Parquet export needs a gs:// URI pattern ending in '*.parquet', got {uri_pattern!r}"
        )
    return (
        f"EXPORT DATA OPTIONS(uri='{uri_pattern}', format='PARQUET', overwrite=true) AS\n"
        f"{_split_select(staging, r, columns)}"
    )
