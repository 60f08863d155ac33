"""Fairness gaps per slice column and the calibration curve with expected calibration error.

numpy only (fairlearn and scikit-learn stay out of the train image: they pull scipy and
scikit-learn, which Keras then imports on every ``import tensorflow``; README.md). The
definitions are fairlearn's: demographic parity difference = the largest minus the smallest
selection rate (share predicted positive) over a column's values; the true/false positive
rate gaps likewise; equalized odds difference = the larger of the two gaps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def difference_svg(
    title: str, rows: Sequence[tuple[str, float, tuple[float, float]]], width: int = 460
) -> str:
    """Per slice value its change to the baseline (a dot) and that change's interval (a bar)
    against a line at 0: a bar that crosses the line is a change the data cannot tell from
    none. Inline SVG, as the report kit draws (offline, no script)."""
    left, right, top, step = 120, 20, 34, 22
    ends = [0.0, *(e for _, _, band in rows for e in band)]
    low, high = min(ends), max(ends)
    span = (high - low) or 1.0

    def x(value: float) -> float:
        return left + (width - left - right) * (value - low) / span

    height = top + step * len(rows) + 24
    esc = html_report.esc
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{esc(title)}">',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-weight="bold">{esc(title)}</text>',
        f'<line x1="{x(0):.1f}" y1="{top - 6}" x2="{x(0):.1f}" y2="{height - 20}" stroke="#999"/>',
        f'<text x="{left}" y="{height - 6}" font-size="11">{low:+.4f}</text>',
        f'<text x="{width - right}" y="{height - 6}" text-anchor="end" font-size="11">'
        f"{high:+.4f}</text>",
    ]
    for i, (label, point, (band_low, band_high)) in enumerate(rows):
        y = top + step * i + step / 2
        color = html_report.PALETTE[0 if band_low > 0 or band_high < 0 else 5]
        parts += [
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" font-size="12">'
            f"{esc(label)}</text>",
            f'<line x1="{x(band_low):.1f}" y1="{y:.1f}" x2="{x(band_high):.1f}" y2="{y:.1f}" '
            f'stroke="{color}" stroke-width="3"><title>{esc(label)}: {point:+.4f} '
            f"[{band_low:+.4f}, {band_high:+.4f}]</title></line>",
            f'<circle cx="{x(point):.1f}" cy="{y:.1f}" r="4" fill="{color}"/>',
        ]
    parts.append("</svg>")
    return "\n".join(parts)
