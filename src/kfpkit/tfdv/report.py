"""Self-contained HTML reports of TFDV statistics and anomalies for the KFP UI.

TFDV's own visualization loads Facets scripts from the internet, which shows nothing in an
air-gapped cluster. These pages are built with the shared report kit
(:mod:`kfpkit.runtime.html_report`): everything inline, no script, no fetch.
"""

from __future__ import annotations

from collections.abc import Sequence

from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

# The shared report kit; re-exported because the TFDV launchers build pages from it here.
from kfpkit.runtime.html_report import bars, esc, fmt, page, table, td

_NUMERIC = (
    statistics_pb2.FeatureNameStatistics.INT,
    statistics_pb2.FeatureNameStatistics.FLOAT,
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
    body, count = anomalies_section(anomalies, comparisons)
    subtitle = f"{count} anomalies; {len(comparisons)} drift/skew measurements"
    return page(title, subtitle, body)


def anomalies_section(
    anomalies: anomalies_pb2.Anomalies,
    comparisons: Sequence[tuple[str, str, str, float, float]],
    css_suffix: str = "",
) -> tuple[str, int]:
    """The body of :func:`anomalies_html` and its anomaly count (several on one page when
    each gets its own ``css_suffix`` for element ids)."""
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
        noun = "anomaly" if len(rows) == 1 else "anomalies"
        verdict = f"<p class='bad' id='verdict{css_suffix}'>{len(rows)} {noun}</p>"
        body = verdict + table(
            ["Feature", "Anomaly", "Short description", "Description", "Severity"],
            rows,
            f"anomalies{css_suffix}",
        )
    else:
        body = f"<p class='ok' id='verdict{css_suffix}'>No anomalies found.</p>"
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
            f"comparisons{css_suffix}",
        )
    return body, len(rows)
