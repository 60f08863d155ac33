"""The one definition of how a row is assigned to a split, rendered for both engines.

BigQuery (``bigquery_split``'s SQL) and the embedded engine (Arrow, for Parquet and CSV
sources) assign every row the same way, because both are rendered from the definitions here:

    key    = the key column as text (STRING as is; INT64, DATE and BOOL as CAST(c AS STRING)
             writes them: -5, 2020-01-31, true), or for several columns those texts joined
             by '|' (CONCAT: NULL when any of them is NULL)
    bucket = MOD(MOD(FARM_FINGERPRINT(key), 1000000) + 1000000, 1000000)   -- 0 .. 999999
    split  = the split whose [lower, upper) bucket range holds the bucket; ranges have widths
             round(ratio * 1000000) and follow a canonical order: train, validation, test,
             then any other names alphabetically. (KFP passes dicts as protobuf Structs, which
             keep no key order, so the order the user wrote cannot be relied on.)

:func:`key_sql` renders the key for BigQuery, :func:`key_text` computes it over Arrow data;
:data:`KEY_KINDS` is what both read. Pure Python at import (the SDK compiles pipelines
without pyarrow); the Arrow side imports pyarrow when called.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

BUCKETS = 1_000_000
KEY_SEPARATOR = "|"
STANDARD_SPLITS = ("train", "validation", "test")
DEFAULT_RATIOS = {"train": 0.8, "validation": 0.1, "test": 0.1}

_COLUMN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,299}\Z")
_SPLIT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}\Z")


@dataclass(frozen=True)
class KeyKind:
    """A family of key column types and how a value of it becomes key text.

    ``sql`` is BigQuery's expression for the text (``{column}`` is the quoted column); the
    Arrow side casts to string (``as_is`` False) or takes the value (``as_is`` True), which
    writes the same text as BigQuery's CAST for these types (checked by the parity tests).
    """

    name: str
    bigquery_types: tuple[str, ...]
    arrow_predicates: tuple[str, ...]  # pyarrow.types.is_* names matching this kind
    sql: str
    as_is: bool = False


# Types whose text form is the same on every engine. FLOAT64 (rounding of the text form) and
# TIMESTAMP (time zone formatting) are refused: their keys would not split repeatably.
KEY_KINDS = (
    KeyKind("STRING", ("STRING",), ("is_string", "is_large_string"), "{column}", as_is=True),
    KeyKind("INT64", ("INTEGER", "INT64"), ("is_integer",), "CAST({column} AS STRING)"),
    KeyKind("DATE", ("DATE",), ("is_date",), "CAST({column} AS STRING)"),
    KeyKind("BOOL", ("BOOLEAN", "BOOL"), ("is_boolean",), "CAST({column} AS STRING)"),
)
KEY_TYPES = {t for kind in KEY_KINDS for t in kind.bigquery_types}


def _refuse(column: str, type_name: str) -> ValueError:
    return ValueError(
        f"key column {column!r} has type {type_name}; key columns must be one of "
        f"{', '.join(sorted(KEY_TYPES))} so the split is repeatable across engines"
    )


def kind_of_bigquery_type(column: str, field_type: str) -> KeyKind:
    for kind in KEY_KINDS:
        if field_type.upper() in kind.bigquery_types:
            return kind
    raise _refuse(column, field_type.upper())


def kind_of_arrow_type(column: str, arrow_type: pa.DataType) -> KeyKind:
    import pyarrow as pa

    value_type = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    for kind in KEY_KINDS:
        if any(getattr(pa.types, p)(value_type) for p in kind.arrow_predicates):
            return kind
    raise _refuse(column, str(arrow_type))


def _join_sql(parts: Sequence[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    return "CONCAT(" + f", '{KEY_SEPARATOR}', ".join(parts) + ")"


def key_sql(columns: Sequence[str], types: dict[str, str]) -> str:
    """The key as a BigQuery STRING expression; ``types``: column -> BigQuery field type."""
    return _join_sql(
        [kind_of_bigquery_type(c, types[c]).sql.format(column=f"`{c}`") for c in columns]
    )


def bucket_sql(key_expression: str) -> str:
    """The bucket of a key expression, 0 .. BUCKETS - 1 (BigQuery's MOD keeps the sign)."""
    return f"MOD(MOD(FARM_FINGERPRINT({key_expression}), {BUCKETS}) + {BUCKETS}, {BUCKETS})"


def key_text(data: pa.RecordBatch | pa.Table, columns: Sequence[str]) -> pa.Array:
    """The key of every row of ``data`` as a string array (NULL where any key column is)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    texts = []
    for c in columns:
        values = data.column(c)
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        if pa.types.is_null(values.type):  # a column with no value at all (e.g. CSV): NULL keys
            texts.append(pa.nulls(len(values), pa.string()))
            continue
        kind = kind_of_arrow_type(c, values.type)
        texts.append(values if kind.as_is else pc.cast(values, pa.string()))
    if len(texts) == 1:
        return texts[0]
    return pc.binary_join_element_wise(*texts, KEY_SEPARATOR)  # NULL if any part is, as CONCAT


def buckets(fingerprints: np.ndarray) -> np.ndarray:
    """The bucket of each signed fingerprint: numpy's integer ``mod`` is the floor modulo that
    :func:`bucket_sql` spells out."""
    import numpy as np

    return np.mod(fingerprints, BUCKETS)


def check_columns(columns: list[str]) -> list[str]:
    """Key column names: a non-empty list of distinct plain identifiers (they reach SQL)."""
    if isinstance(columns, str):
        columns = [columns]
    if not isinstance(columns, list) or not columns:
        raise ValueError(f"key_columns must be a non-empty list of column names, got {columns!r}")
    for c in columns:
        if not isinstance(c, str) or not _COLUMN_RE.match(c):
            raise ValueError(f"key_columns has an invalid column name {c!r}")
    if len(set(columns)) != len(columns):
        raise ValueError(f"key_columns has a column more than once: {columns!r}")
    return columns


@dataclass(frozen=True)
class SplitRange:
    name: str
    lower: int  # inclusive bucket
    upper: int  # exclusive bucket


def canonical_order(names: Iterable[str]) -> list[str]:
    """train, validation, test first, then other split names alphabetically."""
    rank = {n: i for i, n in enumerate(STANDARD_SPLITS)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


def split_ranges(split_ratios: dict[str, Any]) -> list[SplitRange]:
    """Validates the ratios and turns them into consecutive bucket ranges covering all buckets."""
    if not isinstance(split_ratios, dict) or not split_ratios:
        raise ValueError(
            f"split_ratios must be a non-empty mapping name -> fraction, got {split_ratios!r}"
        )
    total = 0.0
    for name, ratio in split_ratios.items():
        if not isinstance(name, str) or not _SPLIT_RE.match(name):
            raise ValueError(
                f"split name {name!r} is invalid: use letters, digits and '_' (it names a table)"
            )
        if (
            isinstance(ratio, bool)
            or not isinstance(ratio, int | float)
            or not math.isfinite(ratio)
        ):
            raise ValueError(f"split_ratios[{name!r}] must be a number, got {ratio!r}")
        if ratio <= 0:
            raise ValueError(f"split_ratios[{name!r}] must be positive, got {ratio!r}")
        total += ratio
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"split_ratios must sum to 1, got {total!r} for {split_ratios!r}")
    ranges: list[SplitRange] = []
    cumulative = 0.0
    lower = 0
    names = canonical_order(split_ratios)
    for i, name in enumerate(names):
        cumulative += split_ratios[name]
        upper = BUCKETS if i == len(names) - 1 else round(cumulative * BUCKETS)
        if upper <= lower:
            raise ValueError(
                f"split_ratios[{name!r}] = {split_ratios[name]!r} is below the split's "
                f"resolution of 1/{BUCKETS}"
            )
        ranges.append(SplitRange(name, lower, upper))
        lower = upper
    return ranges


def split_index(bucket_values: np.ndarray, ranges: Sequence[SplitRange]) -> np.ndarray:
    """Index into ``ranges`` of the range holding each bucket (ranges cover 0 .. BUCKETS)."""
    import numpy as np

    return np.searchsorted(np.array([r.upper for r in ranges]), bucket_values, side="right")
