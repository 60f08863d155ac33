"""The training curve as one self-contained HTML page (the shared report kit: inline SVG, no
scripts, no fetches)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kfpkit.runtime.html_report import line_chart, page, table, td

_COLORS = {"train": "#1f77b4", "validation": "#d62728"}


def training_curve_html(history: Mapping[str, Sequence[float]], title: str) -> str:
    """A page with loss, accuracy and AUC per epoch, train and validation, from a Keras
    ``History.history`` dict."""
    charts = []
    for metric in ("loss", "accuracy", "auc"):
        series = {
            "train": [(i + 1, float(v)) for i, v in enumerate(history.get(metric, []))],
            "validation": [
                (i + 1, float(v)) for i, v in enumerate(history.get(f"val_{metric}", []))
            ],
        }
        charts.append(line_chart(metric, {k: v for k, v in series.items() if v}, "epoch", _COLORS))
    keys = sorted(history)
    epochs = max((len(v) for v in history.values()), default=0)
    rows = (
        [td(i + 1, True)]
        + [td(f"{float(history[k][i]):.4f}" if i < len(history[k]) else "", True) for k in keys]
        for i in range(epochs)
    )
    body = "<div class='charts'>" + "".join(charts) + "</div>"
    body += table(["epoch", *keys], rows, "epochs")
    return page(title, f"{epochs} epoch(s)", body)
