"""Fairness gaps per slice column and the calibration curve with expected calibration error.

numpy only (fairlearn and scikit-learn stay out of the train image: they pull scipy and
scikit-learn, which Keras then imports on every ``import tensorflow``; README.md). The
definitions are fairlearn's: demographic parity difference = the largest minus the smallest
selection rate (share predicted positive) over a column's values; the true/false positive
rate gaps likewise; equalized odds difference = the larger of the two gaps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from kfpkit.classification import DECISION_THRESHOLD
from kfpkit.components.evaluate.intervals import MIN_ROWS
from kfpkit.runtime import html_report

CALIBRATION_BINS = 10


def _rate(hits: np.ndarray, among: np.ndarray) -> float | None:
    return float(hits[among].mean()) if among.any() else None


def group_rates(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float | None]:
    predicted = probabilities >= DECISION_THRESHOLD
    actual = labels == 1
    return {
        "selection_rate": _rate(predicted, np.ones_like(predicted)),
        "true_positive_rate": _rate(predicted, actual),
        "false_positive_rate": _rate(predicted, ~actual),
    }


def _gap(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return max(defined) - min(defined) if len(defined) >= 2 else None


def fairness(
    labels: np.ndarray,
    probabilities: np.ndarray,
    columns: Mapping[str, np.ndarray],
    min_rows: int = MIN_ROWS,
) -> dict[str, dict[str, Any]]:
    """Per slice column: the rates of each value and the gaps between the values of at
    least ``min_rows`` rows (a value of a handful of rows would make any gap; those are
    listed under ``excluded``)."""
    out: dict[str, dict[str, Any]] = {}
    for column, values in columns.items():
        text = np.asarray(values).astype(str)
        uniques, counts = np.unique(text, return_counts=True)
        every = {
            v: group_rates(labels[text == v], probabilities[text == v]) for v in uniques.tolist()
        }
        rates = {
            v: every[v] for v, c in zip(uniques.tolist(), counts, strict=True) if c >= min_rows
        }
        tpr = _gap([r["true_positive_rate"] for r in rates.values()])
        fpr = _gap([r["false_positive_rate"] for r in rates.values()])
        out[column] = {
            "rates": every,
            "excluded": sorted(set(every) - set(rates)),
            "demographic_parity_difference": _gap([r["selection_rate"] for r in rates.values()]),
            "true_positive_rate_gap": tpr,
            "false_positive_rate_gap": fpr,
            "equalized_odds_difference": None
            if tpr is None and fpr is None
            else max(v for v in (tpr, fpr) if v is not None),
        }
    return out


def calibration(
    labels: np.ndarray, probabilities: np.ndarray, bins: int = CALIBRATION_BINS
) -> dict[str, Any]:
    """Equal-width bins of the predicted probability: per bin the mean prediction, the
    observed positive rate and the row count; ECE = sum over bins of
    (rows / all rows) * |observed - predicted|."""
    index = np.minimum((probabilities * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins)
    predicted = np.bincount(index, weights=probabilities, minlength=bins)
    observed = np.bincount(index, weights=labels.astype(float), minlength=bins)
    curve = [
        {
            "bin_low": i / bins,
            "bin_high": (i + 1) / bins,
            "count": int(counts[i]),
            "mean_predicted": float(predicted[i] / counts[i]),
            "observed_rate": float(observed[i] / counts[i]),
        }
        for i in range(bins)
        if counts[i]
    ]
    ece = sum(p["count"] * abs(p["observed_rate"] - p["mean_predicted"]) for p in curve)
    return {"bins": curve, "expected_calibration_error": float(ece / max(len(labels), 1))}


def calibration_svg(curve: Mapping[str, Any]) -> str:
    """The calibration curve as inline SVG (the report kit's chart: offline, no script)."""
    points = [(p["mean_predicted"], p["observed_rate"]) for p in curve["bins"]]
    return html_report.line_chart(
        f"Calibration (ECE {curve['expected_calibration_error']:.4f})",
        {"model": points, "perfectly calibrated": [(0.0, 0.0), (1.0, 1.0)]},
        x_label="mean predicted probability per bin; y: observed positive rate",
    )
