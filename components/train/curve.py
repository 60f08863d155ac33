"""The training curve as one self-contained HTML page: inline SVG, no scripts, no fetches."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

_WIDTH, _HEIGHT, _PAD = 460, 260, 44
_COLORS = {"train": "#1f77b4", "validation": "#d62728"}


def _chart(title: str, series: Mapping[str, Sequence[float]]) -> str:
    points = [v for values in series.values() for v in values if math.isfinite(v)]
    if not points:
        return f"<p>{html.escape(title)}: no values</p>"
    low, high = min(points), max(points)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    epochs = max(len(v) for v in series.values())
    plot_w, plot_h = _WIDTH - 2 * _PAD, _HEIGHT - 2 * _PAD

    def x(i: int) -> float:
        return _PAD + (plot_w * i / (epochs - 1) if epochs > 1 else plot_w / 2)

    def y(v: float) -> float:
        return _PAD + plot_h * (high - v) / (high - low)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="{_WIDTH / 2}" y="18" text-anchor="middle" font-weight="bold">'
        f"{html.escape(title)}</text>",
        f'<rect x="{_PAD}" y="{_PAD}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#999"/>',
        f'<text x="{_PAD - 4}" y="{_PAD + 4}" text-anchor="end" font-size="11">{high:.3g}</text>',
        f'<text x="{_PAD - 4}" y="{_PAD + plot_h}" text-anchor="end" font-size="11">'
        f"{low:.3g}</text>",
        f'<text x="{_WIDTH / 2}" y="{_HEIGHT - 8}" text-anchor="middle" font-size="11">'
        f"epoch (1 to {epochs})</text>",
    ]
    for row, (name, values) in enumerate(series.items()):
        color = _COLORS.get(name, "#555")
        coords = [(x(i), y(v)) for i, v in enumerate(values) if math.isfinite(v)]
        path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts += [
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{color}"/>' for cx, cy in coords
        ]
        parts.append(
            f'<text x="{_WIDTH - _PAD}" y="{_PAD + 14 + 14 * row}" text-anchor="end" '
            f'font-size="12" fill="{color}">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def training_curve_html(history: Mapping[str, Sequence[float]], title: str) -> str:
    """A page with loss, accuracy and AUC per epoch, train and validation, from a Keras
    ``History.history`` dict."""
    charts = []
    for metric in ("loss", "accuracy", "auc"):
        series = {
            "train": [float(v) for v in history.get(metric, [])],
            "validation": [float(v) for v in history.get(f"val_{metric}", [])],
        }
        charts.append(_chart(metric, {k: v for k, v in series.items() if v}))
    rows = "".join(
        "<tr><td>{}</td>{}</tr>".format(
            i + 1,
            "".join(
                f"<td>{float(history[k][i]):.4f}</td>" if i < len(history[k]) else "<td></td>"
                for k in sorted(history)
            ),
        )
        for i in range(max((len(v) for v in history.values()), default=0))
    )
    header = "".join(f"<th>{html.escape(k)}</th>" for k in sorted(history))
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:right}</style>"
        f"</head><body><h2>{html.escape(title)}</h2>\n"
        + "\n".join(charts)
        + f"\n<table><tr><th>epoch</th>{header}</tr>{rows}</table>\n</body></html>\n"
    )
