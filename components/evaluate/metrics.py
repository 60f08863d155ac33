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
from kfpkit.components.evaluate import defaults, diagnostics, intervals

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
    orders: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{column: {value: metrics}}`` for the most frequent values of each slice column,
    most frequent first, or in the order ``orders`` gives a column's values (bands)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for column, values in slices.items():
        text = np.asarray(values).astype(str)
        uniques, counts = np.unique(text, return_counts=True)
        top = sorted(zip(uniques.tolist(), counts.tolist(), strict=True), key=lambda u: -u[1])
        kept = [value for value, _ in top[:MAX_SLICE_VALUES]]
        if column in (orders or {}):
            kept.sort(key=list((orders or {})[column]).index)
        out[column] = {
            value: binary_metrics(labels[text == value], probabilities[text == value])
            for value in kept
        }
    return out


def _check_fraction(name: str, value: Any) -> None:
    if isinstance(value, bool) or not (
        isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 1
    ):
        raise ValueError(f"{name} must be a number in [0, 1], not {value!r}")


def check_slice_thresholds(rule: BlessingRule, slices: Mapping[str, Mapping[str, Any]]) -> None:
    """Every thresholded slice must exist: else a ValueError naming it and the slices there."""
    present = [f"{column}={value}" for column, values in slices.items() for value in values]
    unknown = [key for key in rule.slice_thresholds if key not in present]
    if unknown:
        raise ValueError(
            f"slice_thresholds name slice(s) {unknown} not in the evaluated slices "
            f"(slice_columns and their values): {sorted(present)}"
        )


@dataclass(frozen=True)
class BlessingRule:
    """When a candidate is good enough to deploy.

    Always: ``metric >= absolute_threshold``. With a baseline, also
    ``metric - baseline >= min_improvement`` when ``min_improvement`` > 0, else
    ``metric - baseline >= -max_regression``.
    """

    metric: str = defaults.METRIC
    absolute_threshold: float = defaults.ABSOLUTE_THRESHOLD
    max_regression: float = defaults.MAX_REGRESSION
    min_improvement: float = defaults.MIN_IMPROVEMENT
    # With intervals: the lower bound of ``metric``'s interval must reach this (0: no check).
    min_lower_bound: float = defaults.MIN_LOWER_BOUND
    # With a baseline: the lower bound of (candidate - baseline) must be >= -margin.
    require_noninferiority: bool = defaults.REQUIRE_NONINFERIORITY
    noninferiority_margin: float = defaults.NONINFERIORITY_MARGIN
    # ``{"column=value": floor}``: that slice's ``metric`` must reach its floor.
    slice_thresholds: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.metric not in BLESSING_METRICS:
            raise ValueError(f"metric {self.metric!r} is not one of {list(BLESSING_METRICS)}")
        if not isinstance(self.slice_thresholds, Mapping):
            raise ValueError(
                f"slice_thresholds must be a dict of 'column=value' to a number, "
                f"not {self.slice_thresholds!r}"
            )
        for key, floor in self.slice_thresholds.items():
            if not isinstance(key, str) or "=" not in key:
                raise ValueError(f"slice_thresholds key {key!r} is not 'column=value'")
            _check_fraction(f"slice_thresholds[{key!r}]", floor)
        for name in (
            "absolute_threshold",
            "max_regression",
            "min_improvement",
            "min_lower_bound",
            "noninferiority_margin",
        ):
            _check_fraction(name, getattr(self, name))
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


def decide(
    rule: BlessingRule,
    candidate: Mapping[str, Any],
    baseline: Mapping | None,
    bootstrap: intervals.Intervals | None = None,
    slices: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
    confidence: float = defaults.CONFIDENCE,
) -> Decision:
    """Applies ``rule`` to overall metrics, their ``bootstrap`` intervals (model names
    ``model`` and ``baseline``) and ``slices``; every reason states a check and its outcome."""
    decision = _decide_points(rule, candidate, baseline)
    if decision.candidate is None:
        return decision

    def check(passed: bool, text: str) -> None:
        decision.reasons.append(f"{'PASS' if passed else 'FAIL'}: {text}")
        decision.blessed = decision.blessed and passed

    pct = f"{confidence * 100:g} %"
    if rule.min_lower_bound > 0:
        band = bootstrap.models.get("model", {}).get(rule.metric) if bootstrap else None
        if band is None:
            check(False, f"no {pct} interval of {rule.metric} for min_lower_bound")
        else:
            check(
                band[0] >= rule.min_lower_bound,
                f"{rule.metric} {pct} lower bound {band[0]:.4f} >= min_lower_bound "
                f"{rule.min_lower_bound:.4f}",
            )
    difference = bootstrap.difference.get(rule.metric) if bootstrap else None
    if rule.require_noninferiority and decision.baseline is not None:
        if difference is None:
            check(False, f"no {pct} interval of the {rule.metric} difference to the baseline")
        else:
            check(
                difference[0] >= -rule.noninferiority_margin,
                f"not worse than the baseline at {pct}: lower bound of {rule.metric} "
                f"difference {difference[0]:+.4f} >= -noninferiority_margin "
                f"{-rule.noninferiority_margin:.4f}",
            )
    elif rule.require_noninferiority:
        decision.reasons.append("No baseline: the noninferiority check does not apply.")
    if decision.baseline is not None and bootstrap is not None:
        decision.reasons.append(
            intervals.describe_difference(
                rule.metric, decision.candidate - decision.baseline, difference, confidence
            )
        )
    for key, floor in rule.slice_thresholds.items():
        column, value = key.split("=", 1)
        sliced = (slices or {}).get(column, {}).get(value, {}).get(rule.metric)
        check(
            sliced is not None and sliced >= floor,
            f"slice {key}: {rule.metric} {_cell(sliced)} >= its threshold {floor:.4f}",
        )
    return decision


def _decide_points(
    rule: BlessingRule, candidate: Mapping[str, Any], baseline: Mapping | None
) -> Decision:
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


def _band(band: Any) -> str:
    return "" if band is None else f"[{band[0]:.4f}, {band[1]:.4f}]"


def _apart(difference: intervals.Interval | None) -> str:
    """Whether the data tell candidate and baseline apart: yes, no, or "" (no interval)."""
    told = intervals.distinguishable(difference)
    return "" if told is None else ("yes" if told else "no")


def _change(candidate: Any, baseline: Any) -> str:
    both = isinstance(candidate, float) and isinstance(baseline, float)
    return f"{candidate - baseline:+.4f}" if both else ""


def report_markdown(
    rule: BlessingRule,
    decision: Decision,
    candidate: Mapping[str, Any],
    baseline: Mapping[str, Any] | None,
    slices: Mapping[str, Mapping[str, Mapping[str, Any]]],
    shown_metrics: Sequence[str] = ("count", "accuracy", "auc", "precision", "recall", "log_loss"),
    bootstrap: intervals.Intervals | None = None,
    slice_intervals: Mapping[str, Mapping[str, intervals.Intervals]] | None = None,
    fairness: Mapping[str, Mapping[str, Any]] | None = None,
    calibration_svg: str = "",
    confidence: float = defaults.CONFIDENCE,
    baseline_slices: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
) -> str:
    verdict = "BLESSED" if decision.blessed else "NOT BLESSED"
    pct = f"{confidence * 100:g} %"
    lines = [f"# Model evaluation: {verdict}", ""]
    lines.append(f"Blessing metric: `{rule.metric}`.")
    lines += ["", "## Decision", ""] + [f"- {r}" for r in decision.reasons]
    lines += ["", "## Overall", ""]
    models = bootstrap.models if bootstrap else {}
    ci = f" | candidate {pct} CI" if bootstrap else ""
    if baseline is None:
        lines += [f"| metric | candidate{ci} |", "|---|---|" + ("---|" if ci else "")]
        for name in shown_metrics:
            band = f" | {_band(models.get('model', {}).get(name))}" if ci else ""
            lines.append(f"| {name} | {_cell(candidate.get(name))}{band} |")
    else:
        extra = (
            f" | candidate {pct} CI | baseline {pct} CI | change {pct} CI (paired) | tell apart?"
            if ci
            else ""
        )
        lines += [
            f"| metric | candidate | baseline | change{extra} |",
            "|---|---|---|---|" + ("---|---|---|---|" if ci else ""),
        ]
        for name in shown_metrics:
            c, b = candidate.get(name), baseline.get(name)
            row = f"| {name} | {_cell(c)} | {_cell(b)} | {_change(c, b)} |"
            if ci:
                diff = bootstrap.difference.get(name) if bootstrap else None
                row += (
                    f" {_band(models.get('model', {}).get(name))} "
                    f"| {_band(models.get('baseline', {}).get(name))} | {_band(diff)} "
                    f"| {_apart(diff)} |"
                )
            lines.append(row)
    if bootstrap is not None and bootstrap.reason:
        lines += ["", f"No intervals: {bootstrap.reason}."]
    for column, values in slices.items():
        lines += ["", f"## Slices by `{column}`", ""]
        lines += _slice_table(
            rule.metric,
            values,
            (baseline_slices or {}).get(column),
            None if slice_intervals is None else slice_intervals.get(column, {}),
            pct,
        )
        gaps = (fairness or {}).get(column)
        if gaps:
            lines += [
                "",
                f"Fairness by `{column}` (largest minus smallest over its values of at least "
                f"{intervals.MIN_ROWS} rows"
                + (f"; left out: {', '.join(gaps['excluded'])}" if gaps.get("excluded") else "")
                + "): "
                f"demographic parity difference {_cell(gaps['demographic_parity_difference'])}, "
                f"true positive rate gap {_cell(gaps['true_positive_rate_gap'])}, "
                f"false positive rate gap {_cell(gaps['false_positive_rate_gap'])}, "
                f"equalized odds difference {_cell(gaps['equalized_odds_difference'])}.",
            ]
    if calibration_svg:
        lines += ["", "## Calibration", "", calibration_svg]
    return "\n".join(lines) + "\n"


def _slice_table(
    metric: str,
    values: Mapping[str, Mapping[str, Any]],
    baseline: Mapping[str, Mapping[str, Any]] | None,
    found: Mapping[str, intervals.Intervals] | None,
    pct: str,
) -> list[str]:
    """One slice column's table: per value the candidate's metrics and AUC interval (or why
    none), and with a baseline the blessing metric's change and its paired interval; then
    that change as a chart."""
    head = ["value", "count", "accuracy", "auc", "log_loss"]
    head += [f"auc {pct} CI"] if found is not None else []
    if baseline is not None:
        head += [f"baseline {metric}", f"change in {metric}"]
        head += [f"change {pct} CI (paired)", "tell apart?"] if found is not None else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    chart = []
    for value, sliced in values.items():
        cells = [value, str(sliced["count"])] + [
            _cell(sliced[k]) for k in ("accuracy", "auc", "log_loss")
        ]
        ci = (found or {}).get(value)
        if found is not None:
            cells.append("" if ci is None else ci.reason or _band(ci.models["model"]["auc"]))
        if baseline is not None:
            c, b = sliced.get(metric), baseline.get(value, {}).get(metric)
            cells += [_cell(b), _change(c, b)]
            if found is not None:
                diff = ci.difference.get(metric) if ci is not None else None
                cells += [_band(diff), _apart(diff)]
                if diff is not None and isinstance(c, float) and isinstance(b, float):
                    chart.append((value, c - b, diff))
        lines.append("| " + " | ".join(cells) + " |")
    if chart:
        lines += ["", diagnostics.difference_svg(f"change in {metric}, {pct} CI (paired)", chart)]
    return lines
