"""Slice labels: a column's values as text, or a numeric column cut into bands.

``{"AGEP": [25, 45, 65]}`` slices AGEP into ``<25``, ``25-45``, ``45-65`` and ``>=65``; a band
holds its lower edge and not its upper one (25 is in ``25-45``), nulls and NaN are
``missing``. numpy only: the evaluator, its explanations and the benchmarks label alike.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

MISSING = "missing"


def check_bins(bins: Any) -> dict[str, tuple[float, ...]]:
    """``slice_bins`` as ``{column: edges}``; a ValueError naming the column and its edges
    when they are not a non-empty list of finite, strictly increasing numbers."""
    if not isinstance(bins, Mapping):
        raise ValueError(f"slice_bins must be a dict of column to a list of edges, not {bins!r}")
    checked = {}
    for column, edges in bins.items():
        if not isinstance(column, str) or not column:
            raise ValueError(f"slice_bins: column {column!r} is not a column name")
        if not isinstance(edges, list | tuple) or not edges:
            raise ValueError(
                f"slice_bins[{column!r}]: the edges must be a non-empty list of numbers, "
                f"not {edges!r}"
            )
        if any(
            isinstance(e, bool) or not isinstance(e, int | float) or not math.isfinite(e)
            for e in edges
        ):
            raise ValueError(f"slice_bins[{column!r}]: the edges {edges!r} are not all numbers")
        if any(high <= low for low, high in itertools.pairwise(edges)):
            raise ValueError(
                f"slice_bins[{column!r}]: the edges {edges!r} are not strictly increasing"
            )
        checked[column] = tuple(float(e) for e in edges)
    return checked


def check_numeric(column: str, arrow_type: pa.DataType) -> None:
    """A ValueError naming ``column`` when its type cannot be cut into bands."""
    if not (pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)):
        raise ValueError(
            f"slice_bins: column {column!r} is {arrow_type}, not numeric (integer or float)"
        )


def _edge(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def band_names(edges: Sequence[float]) -> list[str]:
    """The bands' labels in order, then ``missing``."""
    cuts = [_edge(float(e)) for e in edges]
    between = [f"{low}-{high}" for low, high in itertools.pairwise(cuts)]
    return [f"<{cuts[0]}", *between, f">={cuts[-1]}", MISSING]


def slice_labels(values: Any, edges: Sequence[float] | None = None) -> np.ndarray:
    """Each row's slice label: its value as text, or with ``edges`` its band's label."""
    if edges is None:
        return np.asarray(values).astype(str)
    numbers = np.asarray(values, dtype=float)  # nulls (None) become NaN
    band = np.searchsorted(np.asarray(edges, dtype=float), numbers, side="right")
    band[np.isnan(numbers)] = len(edges) + 1
    return np.array(band_names(edges))[band]
