"""Seeded bootstrap confidence intervals of the binary metrics, and the paired difference.

numpy only, by choice: scipy is not in the train image's lock, and once installed TensorFlow's
bundled Keras imports it on every ``import tensorflow`` (+1.6-2 s per step of the image,
35 MB wheel; README.md). ``scipy.stats.bootstrap`` would also resample each metric
separately; here one resample of row indices serves every metric and both models (paired),
as bootstrap weights: a resample is the count of times each row was drawn, so every metric is
a weighted sum over the rows (vectorized over a block of resamples).

Intervals are percentile intervals. A group with fewer than ``MIN_ROWS`` rows or one class
only gets no interval (``None``) and a reason, not an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kfpkit.classification import DECISION_THRESHOLD

# Metrics given an interval; all are the ones kfpkit.classification.binary_metrics defines.
INTERVAL_METRICS = ("accuracy", "precision", "recall", "auc", "log_loss")
LOWER_IS_BETTER = ("log_loss",)
MIN_ROWS = 30
_EPS = 1e-7  # the clip of kfpkit.classification's log loss
_CELLS_PER_BLOCK = 4_000_000  # resamples x rows weighed at once (32 MB of float64)

Interval = tuple[float, float]


@dataclass(frozen=True)
class BootstrapSettings:
    resamples: int = 1000
    seed: int = 0
    confidence: float = 0.95

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
    baseline on the same resamples; ``reason`` says why there are none."""

    models: dict[str, dict[str, Interval | None]] = field(default_factory=dict)
    difference: dict[str, Interval | None] = field(default_factory=dict)
    reason: str = ""


def _score_groups(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows in score order and where each group of equal scores starts (once per model)."""
    order = np.argsort(scores, kind="mergesort")
    _, starts = np.unique(scores[order], return_index=True)
    return order, starts


def _weighted_metrics(
    weights: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    groups: tuple[np.ndarray, np.ndarray],
) -> dict[str, np.ndarray]:
    """Each metric per resample (row of ``weights``); NaN where undefined in a resample."""
    actual = labels == 1
    predicted = scores >= DECISION_THRESHOLD
    total = weights.sum(axis=1)
    positives = weights @ actual.astype(float)
    negatives = total - positives
    true_pos = weights @ (actual & predicted).astype(float)
    predicted_pos = weights @ predicted.astype(float)
    p = np.clip(scores, _EPS, 1 - _EPS)
    loss = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "accuracy": (weights @ (predicted == actual).astype(float)) / total,
            "precision": true_pos / predicted_pos,
            "recall": true_pos / positives,
            "log_loss": (weights @ loss) / total,
        }
        # AUC with ties counted half: per group of equal scores, the weighted positives times
        # the weighted negatives scored lower plus half the tied ones.
        order, starts = groups
        ordered = weights[:, order]
        pos_w = np.add.reduceat(ordered * actual[order], starts, axis=1)
        neg_w = np.add.reduceat(ordered * ~actual[order], starts, axis=1)
        below = np.cumsum(neg_w, axis=1) - neg_w
        out["auc"] = (pos_w * (below + 0.5 * neg_w)).sum(axis=1) / (positives * negatives)
    return out


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


def bootstrap(
    labels: np.ndarray,
    scores: Mapping[str, np.ndarray],
    settings: BootstrapSettings,
    seed_key: tuple[int, ...] = (),
    paired: tuple[str, str] | None = None,
) -> Intervals:
    """Intervals of every metric of each model in ``scores`` (name -> probabilities), from
    the same ``settings.resamples`` resamples of the rows; with ``paired`` (model, baseline),
    also of their difference. ``seed_key`` separates the streams of slices, reproducibly."""
    reason = too_few(labels)
    if reason:
        return Intervals(reason=reason)
    n = len(labels)
    rng = np.random.default_rng([settings.seed, *seed_key])
    draws: dict[str, dict[str, list[np.ndarray]]] = {name: {} for name in scores}
    groups = {name: _score_groups(model_scores) for name, model_scores in scores.items()}
    block = max(1, _CELLS_PER_BLOCK // n)
    done = 0
    while done < settings.resamples:
        size = min(block, settings.resamples - done)
        weights = np.empty((size, n))
        for i in range(size):  # row by row: int32 draws and bincount are ~5x faster here
            weights[i] = np.bincount(rng.integers(0, n, size=n, dtype=np.int32), minlength=n)
        for name, model_scores in scores.items():
            found = _weighted_metrics(weights, labels, model_scores, groups[name])
            for metric, values in found.items():
                draws[name].setdefault(metric, []).append(values)
        done += size
    joined = {
        name: {metric: np.concatenate(parts) for metric, parts in per.items()}
        for name, per in draws.items()
    }
    result = Intervals(
        models={
            name: {k: _percentile(joined[name][k], settings.confidence) for k in INTERVAL_METRICS}
            for name in scores
        }
    )
    if paired is not None:
        model, base = paired
        result.difference = {
            k: _percentile(joined[model][k] - joined[base][k], settings.confidence)
            for k in INTERVAL_METRICS
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
