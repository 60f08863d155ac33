"""The report kit of every HTML artifact: self-contained pages for the KFP UI.

Pages carry everything inline (CSS, SVG charts), run no script and forbid every fetch
through their Content-Security-Policy, so they render the same in an air-gapped cluster, a
notebook or a browser offline. Cells and fragments passed in are HTML already; text is
escaped with :func:`esc`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence

_CSS = """
body{font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:16px;color:#202124}
h1{font-size:18px;margin:0 0 4px}h2{font-size:15px;margin:20px 0 6px}
.sub{color:#5f6368;margin-bottom:12px}
table{border-collapse:collapse;margin:4px 0 12px;min-width:60%}
th,td{border-bottom:1px solid #e0e0e0;padding:4px 8px;text-align:left;vertical-align:middle}
th{background:#f1f3f4;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#c5221f;font-weight:600}.ok{color:#188038;font-weight:600}.muted{color:#80868b}
.warn{background:#fce8e6}.best{background:#e6f4ea}svg{display:block;margin:4px 0}
.charts{display:flex;flex-wrap:wrap;gap:12px}
"""
# No script, no remote fonts/styles/images: the page renders the same offline.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
PALETTE = ("#1a73e8", "#d93025", "#188038", "#f29900", "#9334e6", "#5f6368")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, subtitle: str, body: str) -> str:
    """A whole HTML document: title, a subtitle line, then ``body`` (HTML)."""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1><div class='sub'>{esc(subtitle)}</div>{body}</body></html>\n"
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], css_id: str = "") -> str:
    """An HTML table; cells are already-escaped HTML fragments (see :func:`td`)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    ident = f" id='{esc(css_id)}'" if css_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def td(value: object, numeric: bool = False, css: str = "") -> str:
    classes = " ".join(c for c in ("n" if numeric else "", css) if c)
    return f"<td class='{classes}'>{esc(value)}</td>" if classes else f"<td>{esc(value)}</td>"


def fmt(value: float) -> str:
    """Whole numbers with separators, others to 4 significant digits."""
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.4g}"


def bars(values: Sequence[float], labels: Sequence[str], width: int = 160, height: int = 36) -> str:
    """A tiny inline SVG bar chart; each bar's label shows on hover."""
    if not values or max(values) <= 0:
        return ""
    step = width / len(values)
    top = max(values)
    rects = []
    for i, (v, label) in enumerate(zip(values, labels, strict=True)):
        h = max(1.0, height * v / top) if v > 0 else 0.0
        rects.append(
            f"<rect x='{i * step:.1f}' y='{height - h:.1f}' width='{max(step - 1, 1):.1f}' "
            f"height='{h:.1f}' fill='{PALETTE[0]}'><title>{esc(label)}: {fmt(v)}</title></rect>"
        )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"role='img'>{''.join(rects)}</svg>"
    )


Points = Sequence[tuple[float, float]]


def line_chart(
    title: str,
    series: Mapping[str, Points],
    x_label: str,
    colors: Mapping[str, str] | None = None,
    lines: bool | Mapping[str, bool] = True,
    width: int = 460,
    height: int = 260,
) -> str:
    """An inline SVG chart of named series of (x, y) points, with a legend and y range.

    ``lines`` False (for all, or per series) draws markers only (a scatter). Non-finite
    points are skipped; a chart with none says so in text.
    """
    pad, left = 44, 56  # left: room for the y labels
    clean = {
        name: [(float(x), float(y)) for x, y in pts if math.isfinite(x) and math.isfinite(y)]
        for name, pts in series.items()
    }
    every = [p for pts in clean.values() for p in pts]
    if not every:
        return f"<p>{esc(title)}: no values</p>"
    y_low, y_high = min(p[1] for p in every), max(p[1] for p in every)
    if y_high - y_low < 1e-12:
        y_low, y_high = y_low - 0.5, y_high + 0.5
    x_low, x_high = min(p[0] for p in every), max(p[0] for p in every)
    plot_w, plot_h = width - left - pad, height - 2 * pad

    def sx(v: float) -> float:
        return left + (plot_w * (v - x_low) / (x_high - x_low) if x_high > x_low else plot_w / 2)

    def sy(v: float) -> float:
        return pad + plot_h * (y_high - v) / (y_high - y_low)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{esc(title)}">',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-weight="bold">{esc(title)}</text>',
        f'<rect x="{left}" y="{pad}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#999"/>',
        f'<text x="{left - 4}" y="{pad + 4}" text-anchor="end" font-size="11">{y_high:.3g}</text>',
        f'<text x="{left - 4}" y="{pad + plot_h}" text-anchor="end" font-size="11">'
        f"{y_low:.3g}</text>",
        f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle" font-size="11">'
        f"{esc(x_label)} ({fmt(x_low)} to {fmt(x_high)})</text>",
    ]
    legend_x = float(left)
    for row, (name, pts) in enumerate(clean.items()):
        color = (colors or {}).get(name, PALETTE[row % len(PALETTE)])
        coords = [(sx(x), sy(y)) for x, y in pts]
        joined = lines if isinstance(lines, bool) else lines.get(name, True)
        if joined and len(coords) > 1:
            path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>'
            )
        parts += [
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{color}"/>' for cx, cy in coords
        ]
        # the legend: one row between the title and the plot, clear of the data
        parts.append(
            f'<text x="{legend_x:.0f}" y="{pad - 8}" font-size="12" fill="{color}">'
            f"{esc(name)}</text>"
        )
        legend_x += 16 + 6.5 * len(name)
    parts.append("</svg>")
    return "\n".join(parts)
