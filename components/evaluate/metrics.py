"""Binary classification metrics, KFP's ClassificationMetrics layout, and the blessing rule.

numpy only (no TensorFlow, no kfp): the image has no kfp, so the ``confusionMatrix`` and
``confidenceMetrics`` metadata are built here in the layout kfp's
``ClassificationMetrics.log_confusion_matrix`` and ``log_roc_curve`` write (checked against
kfp in tests/test_train_compile.py). Checked against scikit-learn's metrics in
tests/test_evaluate_metrics_reference.py; scikit-learn stays out of the train image because
Keras imports it (and scipy) on every ``import tensorflow`` once installed (README.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The metrics themselves are shared with monitor_serving; re-exported for this module's users.
from kfpkit.classification import DECISION_THRESHOLD, binary_metrics, roc_auc  # noqa: F401

# Metrics a model can be blessed on; all are "higher is better" and lie in [0, 1].
BLESSING_METRICS = ("auc", "accuracy", "precision", "recall")
CLASS_NAMES = ("0", "1")
# The ROC curve is sampled at fixed thresholds: KFP's UI draws every point it is given.
ROC_THRESHOLDS = tuple(round(i / 100, 2) for i in range(101))
# Per slice column, the most frequent values get their own row; the rest are not reported.
MAX_SLICE_VALUES = 50


def confusion_matrix(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    """``confusionMatrix`` metadata: rows are the actual class, columns the predicted one."""
    predicted = (probabilities >= DECISION_THRESHOLD).astype(int)
    actual = labels.astype(int)
    rows = [
        {"row": [int(np.sum((actual == a) & (predicted == p))) for p in (0, 1)]} for a in (0, 1)
    ]
    return {"annotationSpecs": [{"displayName": c} for c in CLASS_NAMES], "rows": rows}


def roc_curve(labels: np.ndarray, probabilities: np.ndarray) -> list[dict[str, float]]:
    """``confidenceMetrics`` metadata: recall (TPR) and false positive rate per threshold
    (a row is predicted positive when its probability >= the threshold)."""
    actual = labels == 1
    positives, negatives = max(int(actual.sum()), 1), max(int((~actual).sum()), 1)
    points = []
    for threshold in ROC_THRESHOLDS:
        predicted = probabilities >= threshold
        points.append(
            {
                "confidenceThreshold": threshold,
                "recall": float(np.sum(predicted & actual)) / positives,
                "falsePositiveRate": float(np.sum(predicted & ~actual)) / negatives,
            }
        )
    return points


def slice_metrics(
    labels: np.ndarray,
    probabilities: np.ndarray,
    slices: Mapping[str, np.ndarray],
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{column: {value: metrics}}`` for the most frequent values of each slice column."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for column, values in slices.items():
        text = np.asarray(values).astype(str)
        uniques, counts = np.unique(text, return_counts=True)
        top = sorted(zip(uniques.tolist(), counts.tolist(), strict=True), key=lambda u: -u[1])
        out[column] = {
            value: binary_metrics(labels[text == value], probabilities[text == value])
            for value, _ in top[:MAX_SLICE_VALUES]
        }
    return out


@dataclass(frozen=True)
class BlessingRule:
    """When a candidate is good enough to deploy.

    Always: ``metric >= absolute_threshold``. With a baseline, also
    ``metric - baseline >= min_improvement`` when ``min_improvement`` > 0, else
    ``metric - baseline >= -max_regression``.
    """

    metric: str = "auc"
    absolute_threshold: float = 0.5
    max_regression: float = 0.0
    min_improvement: float = 0.0

    def __post_init__(self) -> None:
        if self.metric not in BLESSING_METRICS:
            raise ValueError(f"metric {self.metric!r} is not one of {list(BLESSING_METRICS)}")
        for name in ("absolute_threshold", "max_regression", "min_improvement"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (
                isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 1
            ):
                raise ValueError(f"{name} must be a number in [0, 1], not {value!r}")
        if self.max_regression > 0 and self.min_improvement > 0:
            raise ValueError(
                f"set max_regression ({self.max_regression}) or min_improvement "
                f"({self.min_improvement}), not both"
            )


@dataclass
class Decision:
    blessed: bool
    candidate: float | None
    baseline: float | None
    reasons: list[str] = field(default_factory=list)


def decide(rule: BlessingRule, candidate: Mapping[str, Any], baseline: Mapping | None) -> Decision:
    """Applies ``rule`` to overall metrics; every reason states a check and its outcome."""
    value = candidate.get(rule.metric)
    base = baseline.get(rule.metric) if baseline is not None else None
    decision = Decision(blessed=True, candidate=value, baseline=base)

    def check(passed: bool, text: str) -> None:
        decision.reasons.append(f"{'PASS' if passed else 'FAIL'}: {text}")
        decision.blessed = decision.blessed and passed

    if value is None:
        check(False, f"{rule.metric} is undefined on the test data (one class only)")
        return decision
    check(
        value >= rule.absolute_threshold,
        f"{rule.metric} {value:.4f} >= absolute threshold {rule.absolute_threshold:.4f}",
    )
    if baseline is None:
        decision.reasons.append(
            "No baseline model: only the absolute threshold applies (first model)."
        )
    elif base is None:
        decision.reasons.append(
            f"The baseline's {rule.metric} is undefined: only the absolute threshold applies."
        )
    elif rule.min_improvement > 0:
        check(
            value - base >= rule.min_improvement,
            f"{rule.metric} {value:.4f} - baseline {base:.4f} = {value - base:+.4f} >= "
            f"min_improvement {rule.min_improvement:.4f}",
        )
    else:
        check(
            value - base >= -rule.max_regression,
            f"{rule.metric} {value:.4f} - baseline {base:.4f} = {value - base:+.4f} >= "
            f"-max_regression {-rule.max_regression:.4f}",
        )
    return decision


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def report_markdown(
    rule: BlessingRule,
    decision: Decision,
    candidate: Mapping[str, Any],
    baseline: Mapping[str, Any] | None,
    slices: Mapping[str, Mapping[str, Mapping[str, Any]]],
    shown_metrics: Sequence[str] = ("count", "accuracy", "auc", "precision", "recall", "log_loss"),
) -> str:
    verdict = "BLESSED" if decision.blessed else "NOT BLESSED"
    lines = [f"# Model evaluation: {verdict}", ""]
    lines.append(f"Blessing metric: `{rule.metric}`.")
    lines += ["", "## Decision", ""] + [f"- {r}" for r in decision.reasons]
    lines += ["", "## Overall", ""]
    if baseline is None:
        lines += ["| metric | candidate |", "|---|---|"]
        lines += [f"| {name} | {_cell(candidate.get(name))} |" for name in shown_metrics]
    else:
        lines += ["| metric | candidate | baseline | change |", "|---|---|---|---|"]
        for name in shown_metrics:
            c, b = candidate.get(name), baseline.get(name)
            change = f"{c - b:+.4f}" if isinstance(c, float) and isinstance(b, float) else ""
            lines.append(f"| {name} | {_cell(c)} | {_cell(b)} | {change} |")
    for column, values in slices.items():
        lines += ["", f"## Slices by `{column}`", ""]
        lines += ["| value | count | accuracy | auc | log_loss |", "|---|---|---|---|---|"]
        for value, sliced in values.items():
            lines.append(
                f"| {value} | {sliced['count']} | {_cell(sliced['accuracy'])} "
                f"| {_cell(sliced['auc'])} | {_cell(sliced['log_loss'])} |"
            )
    return "\n".join(lines) + "\n"
