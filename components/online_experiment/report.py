"""The experiment's HTML report: the decision and why, every variant with its intervals, and
how the evidence grew (the always-valid interval of the difference against outcomes seen)."""

from __future__ import annotations

from kfpkit.components.online_experiment.analysis import (
    CONTINUE,
    METRICS,
    PROMOTE,
    Analysis,
    Comparison,
    Estimate,
)
from kfpkit.runtime.html_report import esc, fmt, line_chart, page, table, td

_DECISION_CSS = {PROMOTE: "ok", CONTINUE: "muted"}


def _estimate(value: Estimate, scale: float = 1.0) -> str:
    if value.value is None:
        return td("n/a", css="muted")
    text = fmt(value.value * scale)
    if value.low is not None and value.high is not None:
        text += f" [{fmt(value.low * scale)}, {fmt(value.high * scale)}]"
    return td(text, True)


def _variants(analysis: Analysis) -> str:
    headers = ["variant", "rows", "requests", "share", "labelled", "accuracy", "AUC", "log loss",
               "mean reward", "latency p50 ms", "latency p99 ms", "error rate %"]  # fmt: skip
    rows = []
    for v in analysis.variants:
        role = " (control)" if v.variant == analysis.settings.control else ""
        rows.append([
            td(v.variant + role), td(fmt(v.rows), True), td(fmt(v.requests), True),
            td(f"{v.share:.1%}", True), td(fmt(v.labelled_rows), True), _estimate(v.accuracy),
            _estimate(v.auc), _estimate(v.log_loss), _estimate(v.reward),
            _estimate(v.latency_p50_ms), _estimate(v.latency_p99_ms), _estimate(v.error_rate, 100),
        ])  # fmt: skip
    return table(headers, rows, "variants")


def _comparison(c: Comparison, analysis: Analysis) -> str:
    metric = analysis.settings.metric
    parts = [
        f"<h2>{esc(c.treatment)} against {esc(analysis.settings.control)}: "
        f"<span class='{_DECISION_CSS.get(c.decision, 'bad')}'>{esc(c.decision)}</span></h2>",
        "<ul>" + "".join(f"<li>{esc(r)}</li>" for r in c.reasons) + "</ul>",
    ]
    if c.guardrails:
        parts.append(table(
            ["guardrail", "limit", "treatment", "interval", "breached"],
            [[td(g.name), td(fmt(g.limit), True),
              td("n/a" if g.value is None else fmt(g.value), True),
              td(f"{'n/a' if g.low is None else fmt(g.low)} to "
                 f"{'n/a' if g.high is None else fmt(g.high)}", True),
              td("yes" if g.breached else "no", css="bad" if g.breached else "ok")]
             for g in c.guardrails],
        ))  # fmt: skip
    test = c.test
    if test is not None and test.looks:
        direction = "higher" if METRICS[metric] else "lower"
        parts.append(
            f"<p>mSPRT on {esc(metric)} ({direction} is better), alpha {fmt(test.alpha)}, "
            f"mixture sd {fmt(test.mixture_sd)}; outcomes: {esc(analysis.settings.control)} "
            f"{fmt(test.control_rows)}, {esc(c.treatment)} {fmt(test.treatment_rows)}."
            + (f" First crossing after {fmt(test.crossed.labelled_rows)} outcomes "
               f"({esc(test.crossed_at)})." if test.crossed else " No crossing yet.")
            + "</p>"
        )  # fmt: skip
        series = {
            "difference": [(float(k.labelled_rows), k.difference) for k in test.looks],
            "interval low": [(float(k.labelled_rows), k.low) for k in test.looks],
            "interval high": [(float(k.labelled_rows), k.high) for k in test.looks],
            "zero": [(float(k.labelled_rows), 0.0) for k in test.looks],
        }
        parts.append(line_chart(
            f"{c.treatment} - {analysis.settings.control}: {metric}", series, "outcomes seen",
            colors={"difference": "#1a73e8", "interval low": "#9aa0a6",
                    "interval high": "#9aa0a6", "zero": "#d93025"},
        ))  # fmt: skip
    return "".join(parts)


def experiment_html(analysis: Analysis, source: str) -> str:
    window = analysis.window
    subtitle = (
        f"{source}, window {window.get('start') or 'start of log'} to "
        f"{window.get('end') or 'end of log'}: {fmt(analysis.rows)} rows, "
        f"{fmt(analysis.labelled_rows)} labelled"
    )
    css = _DECISION_CSS.get(analysis.decision, "bad")
    body = [
        f"<h2>Decision: <span class='{css}'>{esc(analysis.decision)}</span>"
        + (f" ({esc(analysis.decided_variant)})" if analysis.decided_variant else "")
        + "</h2>",
        "<ul>" + "".join(f"<li>{esc(r)}</li>" for r in analysis.reasons) + "</ul>",
    ]
    dropped = {k: v for k, v in analysis.feedback.items() if v}
    if dropped:
        body.append("<p class='muted'>Feedback ignored: "
                    + esc(", ".join(f"{k} {v}" for k, v in dropped.items())) + "</p>")  # fmt: skip
    if analysis.variants:
        body += [
            "<h2>Variants</h2>",
            "<p class='muted'>Intervals at "
            f"{analysis.settings.confidence:.0%}: Wilson for shares, t for means, bootstrap for "
            "AUC, order statistics for latency quantiles. Latency and errors per request; "
            "metrics on labelled rows.</p>",
            _variants(analysis),
        ]
    body += [_comparison(c, analysis) for c in analysis.comparisons]
    return page("Online experiment", subtitle, "".join(body))
