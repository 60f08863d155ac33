"""The baseline row attributions are measured from: what "no information" means per feature.

A numeric feature's baseline is its median, a categorical one's its most frequent value, in
reference data (evaluate: the rows it explains; serve: a Parquet split or a JSON file given
at start). Stored as JSON ``{feature: value}`` (``explanation.json``, see :func:`write`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kfpkit.tabular import CATEGORICAL, FeatureSpec

Baseline = dict[str, float | str]


def from_arrays(features: Mapping[str, np.ndarray], specs: Sequence[FeatureSpec]) -> Baseline:
    """Median of each numeric feature (missing values left out), most frequent non-empty value
    of each categorical one (ties: the smallest); ValueError naming a feature with no value."""
    out: Baseline = {}
    for spec in specs:
        values = features[spec.name]
        if spec.kind == CATEGORICAL:
            present = values[values != ""]
            if present.size == 0:
                raise ValueError(f"baseline: categorical feature {spec.name!r} has no values")
            uniques, counts = np.unique(present.astype(str), return_counts=True)
            out[spec.name] = str(uniques[int(np.argmax(counts))])
        else:
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                raise ValueError(f"baseline: numeric feature {spec.name!r} has no values")
            out[spec.name] = float(np.median(finite))
    return out


def check(baseline: Mapping[str, Any], specs: Sequence[FeatureSpec], source: str) -> Baseline:
    """``baseline`` as the model's features need it (``None``: a missing value, NaN or "");
    ValueError naming missing features, unknown ones or a value of the wrong kind."""
    names = [s.name for s in specs]
    missing = [n for n in names if n not in baseline]
    unknown = sorted(set(baseline) - set(names))
    if missing or unknown:
        raise ValueError(f"{source}: the baseline lacks feature(s) {missing} or has unknown "
                         f"feature(s) {unknown}; the model takes {names}")  # fmt: skip
    out: Baseline = {}
    for spec in specs:
        value = baseline[spec.name]
        if value is None:  # missing: what the model does with a missing value (its own fill)
            out[spec.name] = "" if spec.kind == CATEGORICAL else math.nan
            continue
        if spec.kind == CATEGORICAL:
            if not isinstance(value, str):
                raise ValueError(f"{source}: baseline of {spec.name!r} must be a string, "
                                 f"not {value!r}")  # fmt: skip
            out[spec.name] = value
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if ok and math.isnan(value):
                out[spec.name] = math.nan
                continue
            if not ok or not math.isfinite(value):
                raise ValueError(f"{source}: baseline of {spec.name!r} must be a finite number, "
                                 f"not {value!r}")  # fmt: skip
            out[spec.name] = float(value)
    return out


def missing_row(specs: Sequence[FeatureSpec]) -> Baseline:
    """The row of missing values: the model's own fill (the train component's: the train
    mean of a numeric feature, the unknown bucket of a categorical one). A baseline that needs
    no data; sampled Shapley only (integrated gradients need numbers)."""
    return {s.name: "" if s.kind == CATEGORICAL else math.nan for s in specs}


def as_arrays(baseline: Baseline, specs: Sequence[FeatureSpec], rows: int = 1) -> dict:
    """The baseline repeated ``rows`` times, in the model's input dtypes."""
    return {
        s.name: np.full(rows, baseline[s.name], dtype=object)
        if s.kind == CATEGORICAL
        else np.full(rows, baseline[s.name], dtype=np.float32)
        for s in specs
    }


def read(path: str, specs: Sequence[FeatureSpec]) -> Baseline:
    """A JSON file ``{feature: value}`` (or ``explanation.json``, whose ``baseline`` it is)."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"baseline file {path!r}: cannot read JSON: {e}") from None
    if isinstance(doc, dict) and isinstance(doc.get("baseline"), dict):
        doc = doc["baseline"]
    if not isinstance(doc, dict):
        raise ValueError(f"baseline file {path!r}: expected a JSON object feature -> value")
    return check(doc, specs, f"baseline file {path!r}")
