"""Self-contained HTML reports of TFDV statistics and anomalies for the KFP UI.

TFDV's own visualization loads Facets scripts from the internet, which shows nothing in an
air-gapped cluster. These pages carry everything inline (CSS, SVG charts), run no script
and forbid every fetch through their Content-Security-Policy.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

_CSS = """
body{font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:16px;color:#202124}
h1{font-size:18px;margin:0 0 4px}h2{font-size:15px;margin:20px 0 6px}
.sub{color:#5f6368;margin-bottom:12px}
table{border-collapse:collapse;margin:4px 0 12px;min-width:60%}
th,td{border-bottom:1px solid #e0e0e0;padding:4px 8px;text-align:left;vertical-align:middle}
th{background:#f1f3f4;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#c5221f;font-weight:600}.ok{color:#188038;font-weight:600}
.warn{background:#fce8e6}svg{display:block}
"""
# No script, no remote fonts/styles/images: the page renders the same offline.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_NUMERIC = (
    statistics_pb2.FeatureNameStatistics.INT,
    statistics_pb2.FeatureNameStatistics.FLOAT,
)


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, subtitle: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1><div class='sub'>{esc(subtitle)}</div>{body}</body></html>\n"
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], css_id: str = "") -> str:
    """An HTML table; cells are already-escaped HTML fragments."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    ident = f" id='{esc(css_id)}'" if css_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def td(value: object, numeric: bool = False, css: str = "") -> str:
    classes = " ".join(c for c in ("n" if numeric else "", css) if c)
    return f"<td class='{classes}'>{esc(value)}</td>" if classes else f"<td>{esc(value)}</td>"


def fmt(value: float) -> str:
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
            f"height='{h:.1f}' fill='#1a73e8'><title>{esc(label)}: {fmt(v)}</title></rect>"
        )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"role='img'>{''.join(rects)}</svg>"
    )


def feature_name(feature: statistics_pb2.FeatureNameStatistics) -> str:
    return ".".join(feature.path.step) if feature.path.step else feature.name


def _common(feature: statistics_pb2.FeatureNameStatistics) -> statistics_pb2.CommonStatistics:
    if feature.HasField("num_stats"):
        return feature.num_stats.common_stats
    if feature.HasField("string_stats"):
        return feature.string_stats.common_stats
    return feature.struct_stats.common_stats


def missing_fraction(feature: statistics_pb2.FeatureNameStatistics) -> float:
    common = _common(feature)
    total = common.num_non_missing + common.num_missing
    return common.num_missing / total if total else 0.0


def _leading_cells(f: statistics_pb2.FeatureNameStatistics) -> list[str]:
    """Name, type, count and missing share: the first columns of both feature tables."""
    missing = missing_fraction(f)
    return [
        f"<td>{esc(feature_name(f))}</td>",
        td(statistics_pb2.FeatureNameStatistics.Type.Name(f.type)),
        td(fmt(_common(f).num_non_missing), True),
        td(f"{missing:.1%}", True, "bad" if missing > 0 else ""),
    ]


def _numeric_row(f: statistics_pb2.FeatureNameStatistics) -> list[str]:
    s = f.num_stats
    hist = next(
        (h for h in s.histograms if h.type == statistics_pb2.Histogram.STANDARD),
        None,
    )
    chart = ""
    if hist is not None:
        chart = bars(
            [b.sample_count for b in hist.buckets],
            [f"{fmt(b.low_value)} to {fmt(b.high_value)}" for b in hist.buckets],
        )
    return [
        *_leading_cells(f),
        td(fmt(s.mean), True),
        td(fmt(s.std_dev), True),
        td(fmt(s.num_zeros), True),
        td(fmt(s.min), True),
        td(fmt(s.median), True),
        td(fmt(s.max), True),
        f"<td>{chart}</td>",
    ]


def _categorical_row(f: statistics_pb2.FeatureNameStatistics) -> list[str]:
    s = f.string_stats
    top = list(s.top_values)[:10]
    chart = bars([v.frequency for v in top], [v.value for v in top])
    total = s.common_stats.num_non_missing or 1
    top_value = f"{top[0].value} ({top[0].frequency / total:.1%})" if top else ""
    return [
        *_leading_cells(f),
        td(fmt(s.unique), True),
        td(top_value),
        td(fmt(s.avg_length), True),
        f"<td>{chart}</td>",
    ]


def dataset_section(dataset: statistics_pb2.DatasetFeatureStatistics) -> str:
    numeric = [f for f in dataset.features if f.type in _NUMERIC and f.HasField("num_stats")]
    categorical = [f for f in dataset.features if f.HasField("string_stats")]
    parts = [f"<h2>{esc(dataset.name or 'dataset')}: {fmt(dataset.num_examples)} examples</h2>"]
    if numeric:
        parts.append(
            table(
                [
                    "Numeric feature",
                    "Type",
                    "Count",
                    "Missing",
                    "Mean",
                    "Std dev",
                    "Zeros",
                    "Min",
                    "Median",
                    "Max",
                    "Histogram",
                ],  # fmt: skip
                (_numeric_row(f) for f in sorted(numeric, key=feature_name)),
                "numeric-features",
            )
        )
    if categorical:
        parts.append(
            table(
                [
                    "Categorical feature",
                    "Type",
                    "Count",
                    "Missing",
                    "Unique",
                    "Top value",
                    "Avg length",
                    "Top values",
                ],  # fmt: skip
                (_categorical_row(f) for f in sorted(categorical, key=feature_name)),
                "categorical-features",
            )
        )
    return "".join(parts)


def statistics_html(stats: statistics_pb2.DatasetFeatureStatisticsList, title: str) -> str:
    datasets = list(stats.datasets)
    subtitle = f"{len(datasets)} dataset(s)/slice(s); {len(datasets[0].features)} features"
    return page(title, subtitle, "".join(dataset_section(d) for d in datasets))


def anomalies_html(
    anomalies: anomalies_pb2.Anomalies,
    comparisons: Sequence[tuple[str, str, str, float, float]],
    title: str,
) -> str:
    """Anomalies table plus every drift/skew measurement.

    ``comparisons`` rows: (feature, "drift"|"skew", measure name, value, threshold).
    """
    rows = []
    for name in sorted(anomalies.anomaly_info):
        info = anomalies.anomaly_info[name]
        kinds = ", ".join(
            anomalies_pb2.AnomalyInfo.Type.Name(r.type) for r in info.reason
        )  # fmt: skip
        rows.append(
            [
                f"<td>{esc(name)}</td>",
                td(kinds),
                td(info.short_description),
                td(info.description),
                td(anomalies_pb2.AnomalyInfo.Severity.Name(info.severity)),
            ]
        )
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        rows.append(
            [
                "<td>(dataset)</td>",
                td(""),
                td(info.short_description),
                td(info.description),
                td(anomalies_pb2.AnomalyInfo.Severity.Name(info.severity)),
            ]  # fmt: skip
        )
    if rows:
        verdict = (
            f"<p class='bad' id='verdict'>{len(rows)} anomal{'y' if len(rows) == 1 else 'ies'}</p>"
        )
        body = verdict + table(
            ["Feature", "Anomaly", "Short description", "Description", "Severity"],
            rows,
            "anomalies",
        )
    else:
        body = "<p class='ok' id='verdict'>No anomalies found.</p>"
    if comparisons:
        body += "<h2>Drift and skew measurements</h2>" + table(
            ["Feature", "Comparison", "Measure", "Value", "Threshold", "Status"],
            (
                [
                    f"<td>{esc(feature)}</td>",
                    td(kind),
                    td(measure),
                    td(f"{value:.4f}", True),
                    td(f"{threshold:.4f}", True),
                    td(
                        "over threshold" if value > threshold else "ok",
                        False,
                        "bad" if value > threshold else "ok",
                    ),
                ]  # fmt: skip
                for feature, kind, measure, value, threshold in comparisons
            ),
            "comparisons",
        )
    subtitle = f"{len(rows)} anomalies; {len(comparisons)} drift/skew measurements"
    return page(title, subtitle, body)
