"""monitor_serving's HTML page: verdict, distances, predictions, performance, domain, and the
window's statistics; built with the shared report kit (self-contained, no script)."""

from __future__ import annotations

from typing import Any

from tensorflow_metadata.proto.v0 import statistics_pb2

from kfpkit.components.monitor_serving.monitor import Monitoring
from kfpkit.runtime.html_report import bars, esc, fmt, page, table, td
from kfpkit.tfdv.report import dataset_section


def _number(value: Any) -> str:
    return fmt(value) if isinstance(value, int | float) else "-"


def _distances(result: Monitoring) -> str:
    rows = result.skew + result.drift
    if "drift" in result.prediction:
        rows = [*rows, result.prediction["drift"]]
    if not rows:
        return "<p class='muted'>No distances measured (no baseline, or thresholds of 0).</p>"
    return table(
        ["Feature", "Comparison", "Measure", "Value", "Threshold", "Status"],
        (
            [
                f"<td>{esc(m['feature'])}</td>",
                td(m["kind"]),
                td(m["measure"]),
                td(f"{m['value']:.4f}", True),
                td(f"{m['threshold']:.4f}", True),
                td(
                    "over threshold" if m["value"] > m["threshold"] else "ok",
                    False,
                    "bad" if m["value"] > m["threshold"] else "ok",
                ),  # fmt: skip
            ]
            for m in sorted(rows, key=lambda m: (m["kind"], -m["value"]))
        ),
        "distances",
    )


def _predictions(prediction: dict[str, Any]) -> str:
    if not prediction:
        return "<p class='muted'>No predictions.</p>"
    buckets = prediction.get("histogram", [])
    chart = bars([b["count"] for b in buckets],
                 [f"{fmt(b['low'])} to {fmt(b['high'])}" for b in buckets], width=320)  # fmt: skip
    rows = [[td(name), td(_number(prediction.get(key)), True)] for name, key in (
        ("count", "count"), ("mean", "mean"), ("std dev", "std_dev"), ("min", "min"),
        ("max", "max"), ("previous window's mean", "previous_mean"),
        ("change of the mean", "mean_change"))]  # fmt: skip
    return table(["Predictions", "Value"], rows, "predictions") + chart


def _performance(perf: dict[str, Any]) -> str:
    keys = ("labelled_rows", "accuracy", "auc", "reference", "decay", "max_decay")
    rows = [[td(k), td(_number(perf.get(k)), True)] for k in keys if k in perf]
    note = f"<p class='muted'>{esc(perf['note'])}</p>" if perf.get("note") else ""
    verdict = ("<p class='bad'>performance decayed beyond max_decay</p>"
               if perf.get("over") else "")  # fmt: skip
    return verdict + table(["Performance", "Value"], rows, "performance") + note


def _out_of_domain(counts: dict[str, int], rows: int) -> str:
    if not counts:
        return "<p class='ok'>No value outside the schema's domain.</p>"
    return table(
        ["Feature", "Rows out of domain", "Share"],
        (
            [f"<td>{esc(f)}</td>", td(fmt(n), True), td(f"{n / max(rows, 1):.2%}", True)]
            for f, n in sorted(counts.items(), key=lambda kv: -kv[1])
        ),  # fmt: skip
        "out-of-domain",
    )


def monitoring_html(result: Monitoring, stats: statistics_pb2.DatasetFeatureStatisticsList) -> str:
    verdict_class = "bad" if result.alert else "ok"
    verdict = "ALERT" if result.alert else "no alert"
    body = [
        f"<p class='{verdict_class}' id='verdict'>{verdict}</p>",
        "<ul id='reasons'>" + "".join(f"<li>{esc(r)}</li>" for r in result.reasons) + "</ul>",
    ]
    if result.moved_features:
        body.append("<p id='moved'>Features that moved: "
                    + esc(", ".join(result.moved_features)) + "</p>")  # fmt: skip
    if result.rows:
        body += ["<h2>Skew and drift</h2>", _distances(result)]
        if result.not_compared:
            body.append(table(["Not compared", "Why"],
                              ([td(k), td(v)] for k, v in sorted(result.not_compared.items())),
                              "not-compared"))  # fmt: skip
        body += ["<h2>Predictions</h2>", _predictions(result.prediction),
                 "<h2>Performance on labelled rows</h2>", _performance(result.performance),
                 "<h2>Values outside the schema's domain</h2>",
                 _out_of_domain(result.out_of_domain, result.rows)]  # fmt: skip
        if result.anomalies:
            body += ["<h2>TFDV anomalies</h2><ul>",
                     *(f"<li>{esc(line)}</li>" for line in result.anomalies), "</ul>"]  # fmt: skip
        body += [dataset_section(d) for d in stats.datasets]
    window = result.window
    span = f"{window.get('start') or 'start of log'} to {window.get('end') or 'now'}"
    subtitle = (f"{fmt(result.rows)} served rows ({fmt(result.error_rows)} errors), {span}; "
                f"source {window.get('source') or '(none)'}")  # fmt: skip
    return page("Served traffic monitoring", subtitle, "".join(body))
