"""Seeded bootstrap confidence intervals of the binary metrics, and the paired difference.

numpy only, by choice: scipy is not in the train image's lock, and once installed TensorFlow's
bundled Keras imports it on every ``import tensorflow`` (+1.6-2 s per step of the image,
35 MB wheel; README.md). ``scipy.stats.bootstrap`` would also resample each metric
separately; here one resample of row indices serves every metric, both models (paired) and
every slice, as bootstrap weights: a resample is the count of times each row was drawn, so
every metric is a weighted sum over the rows (vectorized over a block of resamples), and a
slice's metric the same sum over its rows.

Intervals are percentile intervals. A group with fewer than ``MIN_ROWS`` rows or one class
only gets no interval (``None``) and a reason, not an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kfpkit.classification import DECISION_THRESHOLD
from kfpkit.components.evaluate import defaults

# Metrics given an interval; all are the ones kfpkit.classification.binary_metrics defines.
INTERVAL_METRICS = ("accuracy", "precision", "recall", "auc", "log_loss")
LOWER_IS_BETTER = ("log_loss",)
MIN_ROWS = 30
_EPS = 1e-7  # the clip of kfpkit.classification's log loss
# Resamples x rows weighed at once: a block that stays in cache (4 MB of float64) is up to
# twice as fast on small splits; at least 4 resamples (a call per resample costs) within 32 MB.
_CELLS_PER_BLOCK, _MAX_CELLS = 500_000, 4_000_000

Interval = tuple[float, float]


@dataclass(frozen=True)
class BootstrapSettings:
    resamples: int = defaults.BOOTSTRAP_RESAMPLES
    seed: int = defaults.SEED
    confidence: float = defaults.CONFIDENCE

    def __post_init__(self) -> None:
        if isinstance(self.resamples, bool) or not isinstance(self.resamples, int):
            raise ValueError(f"bootstrap_resamples must be an integer, not {self.resamples!r}")
        if self.resamples <= 0:
            raise ValueError(f"bootstrap_resamples must be > 0, not {self.resamples}")
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"confidence must be in [0.5, 1), not {self.confidence!r}")


@dataclass
class Intervals:
    """Per model name, ``{metric: (low, high) or None}``; ``difference`` is model minus
    baseline on the same resamples; ``reason`` says why there are none; ``slices``: the
    same per slice column and value, from the same resamples."""

    models: dict[str, dict[str, Interval | None]] = field(default_factory=dict)
    difference: dict[str, Interval | None] = field(default_factory=dict)
    reason: str = ""
    slices: dict[str, dict[str, Intervals]] = field(default_factory=dict)


Rows = np.ndarray | slice  # row indices, or a slice where they are consecutive (no copy)


@dataclass(frozen=True)
class _Prepared:
    """What one model's resampled metrics need, computed once from its scores."""

    terms: np.ndarray  # 3 x rows: per-row terms of the weighted sums (see _SUMS)
    negatives: Rows  # the negative rows in score order
    positives: Rows  # the positive rows in score order
    below: np.ndarray  # per positive: how many negatives score lower
    up_to: np.ndarray | None  # per positive: how many score lower or equal (None: no ties)


# The model's weighted sums per resample, in the rows of _Prepared.terms; the weight of all
# rows and of the positives are the same for every model, and the correct ones follow:
# correct = total - positives - predicted_positives + 2 true_positives.
_SUMS = ("true_positives", "predicted_positives", "loss")


def _consecutive(rows: np.ndarray) -> Rows:
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and (np.diff(rows) == 1).all():
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def _prepare(labels: np.ndarray, scores: np.ndarray) -> _Prepared:
    actual = labels == 1
    predicted = scores >= DECISION_THRESHOLD
    p = np.clip(scores, _EPS, 1 - _EPS)
    loss = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    terms = np.vstack([actual & predicted, predicted, loss]).astype(float)
    negatives, positives = np.flatnonzero(~actual), np.flatnonzero(actual)
    negatives = negatives[np.argsort(scores[negatives], kind="mergesort")]
    positives = positives[np.argsort(scores[positives], kind="mergesort")]
    ordered = scores[negatives]
    below = np.searchsorted(ordered, scores[positives], side="left")
    up_to = np.searchsorted(ordered, scores[positives], side="right")
    # A model's scores tie often (rows with equal features: half the positives of the demo's
    # test rows tie with a negative), so ties take a second dense read, not a masked one.
    return _Prepared(
        terms,
        _consecutive(negatives),
        _consecutive(positives),
        below,
        None if np.array_equal(up_to, below) else up_to,
    )


def _columns(weights: np.ndarray, rows: Rows) -> np.ndarray:
    return weights[:, rows] if isinstance(rows, slice) else np.take(weights, rows, axis=1)


def _weighted_metrics(weights: np.ndarray, model: _Prepared) -> dict[str, np.ndarray]:
    """Each metric per resample (row of ``weights``); NaN where undefined in a resample."""
    # numpy's own loop, not BLAS: in evaluate's process TensorFlow's spinning threads make
    # OpenBLAS' threaded products 10x slower (24 of 28 s on 277k rows), not this one.
    sums = dict(zip(_SUMS, np.einsum("ij,kj->ki", weights, model.terms), strict=True))
    positive_weights = _columns(weights, model.positives)
    total, positives = weights.sum(axis=1), positive_weights.sum(axis=1)
    negatives = total - positives
    correct = negatives - sums["predicted_positives"] + 2 * sums["true_positives"]
    # AUC with ties counted half: each positive's weight times the weight of the negatives
    # scored lower (a cumulative sum over the negatives in score order, read at its place),
    # plus half the tied ones.
    negative_weights = _columns(weights, model.negatives)
    cumulative = np.zeros((len(weights), negative_weights.shape[1] + 1))
    np.cumsum(negative_weights, axis=1, out=cumulative[:, 1:])
    lower = np.take(cumulative, model.below, axis=1)
    if model.up_to is not None:
        lower += np.take(cumulative, model.up_to, axis=1)
        lower *= 0.5
    pairs = np.einsum("ij,ij->i", positive_weights, lower)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "accuracy": correct / total,
            "precision": sums["true_positives"] / sums["predicted_positives"],
            "recall": sums["true_positives"] / positives,
            "log_loss": sums["loss"] / total,
            "auc": pairs / (positives * negatives),
        }


def _percentile(values: np.ndarray, confidence: float) -> Interval | None:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return (float(low), float(high))


def too_few(labels: np.ndarray) -> str:
    """Why ``labels`` get no interval, or "" when they do."""
    if len(labels) < MIN_ROWS:
        return f"too few rows for an interval ({len(labels)} < {MIN_ROWS})"
    if len(np.unique(labels)) < 2:
        return "one class only: no interval"
    return ""


Groups = Mapping[str, Mapping[str, np.ndarray]]  # slice column -> value -> its row indices


@dataclass(frozen=True)
class _Group:
    rows: Rows  # in the resampled order (the first model's)
    prepared: dict[str, _Prepared]  # per model


def bootstrap(
    labels: np.ndarray,
    scores: Mapping[str, np.ndarray],
    settings: BootstrapSettings,
    paired: tuple[str, str] | None = None,
    groups: Groups | None = None,
) -> Intervals:
    """Intervals of every metric of each model in ``scores`` (name -> probabilities), from
    the same ``settings.resamples`` resamples of the rows; with ``paired`` (model, baseline),
    also of their difference. Each group of rows (``groups``: slice column -> value -> row
    indices) gets the same, in ``slices``, from the same resamples: a resample of the test
    rows weighs a slice's rows as it weighs them overall, so no slice draws its own."""
    reason = too_few(labels)
    if reason:
        return Intervals(
            reason=reason,
            slices={
                column: {
                    value: Intervals(reason=too_few(labels[rows])) for value, rows in per.items()
                }
                for column, per in (groups or {}).items()
            },
        )
    n = len(labels)
    rng = np.random.default_rng([settings.seed])  # as before slices shared it: same intervals
    # The rows in the first model's order (negatives, then positives, each by score): its
    # resampled AUC reads the weights in place, with no gather (any order resamples alike).
    first = _prepare(labels, next(iter(scores.values())))
    order = np.concatenate([np.arange(n)[first.negatives], np.arange(n)[first.positives]])
    position = np.empty(n, dtype=np.intp)
    position[order] = np.arange(n)
    original_labels, labels = labels, labels[order]
    ordered = {name: model_scores[order] for name, model_scores in scores.items()}
    overall = _Group(slice(0, n), {name: _prepare(labels, s) for name, s in ordered.items()})
    # A group's rows kept in that order too: the first model reads its slice of them in place.
    parts: dict[tuple[str, str] | None, _Group] = {None: overall}
    result = Intervals(slices={column: {} for column in groups or {}})
    for column, per in (groups or {}).items():
        for value, rows in per.items():
            result.slices[column][value] = Intervals(reason=too_few(original_labels[rows]))
            if not result.slices[column][value].reason:
                inside = np.sort(position[rows])
                parts[(column, value)] = _Group(
                    _consecutive(inside),
                    {name: _prepare(labels[inside], s[inside]) for name, s in ordered.items()},
                )
    draws: dict[Any, dict[str, dict[str, list[np.ndarray]]]] = {
        key: {name: {} for name in scores} for key in parts
    }
    block = max(1, _CELLS_PER_BLOCK // n, min(4, _MAX_CELLS // n))
    done = 0
    while done < settings.resamples:
        size = min(block, settings.resamples - done)
        weights = np.empty((size, n))
        for i in range(size):  # row by row; int64 draws: np.bincount converts int32 (5x slower)
            weights[i] = np.bincount(rng.integers(0, n, size=n), minlength=n)
        for key, group in parts.items():
            group_weights = _columns(weights, group.rows)
            for name, prepared in group.prepared.items():
                for metric, values in _weighted_metrics(group_weights, prepared).items():
                    draws[key][name].setdefault(metric, []).append(values)
        done += size
    found = {key: _summary(per, settings.confidence, paired) for key, per in draws.items()}
    result.models, result.difference = found[None].models, found[None].difference
    for key, group_found in found.items():
        if key is not None:
            result.slices[key[0]][key[1]] = group_found
    return result


def _summary(
    draws: Mapping[str, Mapping[str, list[np.ndarray]]],
    confidence: float,
    paired: tuple[str, str] | None,
) -> Intervals:
    """The percentile intervals of the resampled metrics (per model, and of the pair)."""
    joined = {
        name: {metric: np.concatenate(parts) for metric, parts in per.items()}
        for name, per in draws.items()
    }
    result = Intervals(
        models={
            name: {k: _percentile(joined[name][k], confidence) for k in INTERVAL_METRICS}
            for name in joined
        }
    )
    if paired is not None:
        model, base = paired
        result.difference = {
            k: _percentile(joined[model][k] - joined[base][k], confidence) for k in INTERVAL_METRICS
        }
    return result


def distinguishable(difference: Interval | None) -> bool | None:
    """Whether an interval of a difference excludes 0 (None: no interval)."""
    if difference is None:
        return None
    return difference[0] > 0 or difference[1] < 0


def describe_difference(
    metric: str, point: float | None, difference: Interval | None, confidence: float
) -> str:
    """What the data can tell apart, in one sentence."""
    if point is None or difference is None:
        return f"{metric}: no interval for the difference (undefined on some resamples or rows)"
    low, high = difference
    pct = f"{confidence * 100:g} %"
    if distinguishable(difference):
        higher = low > 0
        side = "better" if higher != (metric in LOWER_IS_BETTER) else "worse"
        verdict = f"the candidate is {side}"
    else:
        verdict = "not distinguishable"
    return (
        f"candidate and baseline differ by {point:+.4f} {metric}, {pct} CI "
        f"[{low:+.4f}, {high:+.4f}]: {verdict}"
    )


def as_json(interval: Interval | None) -> Any:
    return None if interval is None else [interval[0], interval[1]]
