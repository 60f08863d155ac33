"""The tuning report: every trial's parameters and objective, the best-so-far curve, and
which trials were pruned or failed; one self-contained page from the shared report kit."""

from __future__ import annotations

import json

from kfpkit.components.katib_tune import result as results
from kfpkit.components.katib_tune.spec import TuneSpec
from kfpkit.runtime.html_report import esc, fmt, line_chart, page, table, td

_STATE_CSS = {results.SUCCEEDED: "", results.PRUNED: "muted", results.FAILED: "bad"}


def _param_cell(value: object) -> str:
    if isinstance(value, float):
        return td(fmt(value), True)
    return td(value, isinstance(value, int))


def best_so_far(spec: TuneSpec, trials: list[results.TrialRecord]) -> list[tuple[float, float]]:
    """(trial number + 1, best objective among succeeded trials up to it)."""
    points, best = [], None
    for t in trials:
        if t.state == results.SUCCEEDED and t.objective is not None:
            better = best is None or (t.objective > best if spec.maximize else t.objective < best)
            best = t.objective if better else best
        if best is not None:
            points.append((t.number + 1.0, best))
    return points


def tuning_html(spec: TuneSpec, result: results.TuneResult, title: str) -> str:
    trials = sorted(result.trials, key=lambda t: t.number)
    counts = result.counts()
    metric = spec.objective_metric
    subtitle = (
        f"{result.backend} backend, {spec.algorithm}; {len(trials)} trials: "
        + ", ".join(f"{n} {state}" for state, n in counts.items())
        + f"; {spec.objective_type} {metric}"
    )
    by_state = {
        state: [(t.number + 1.0, t.objective) for t in trials
                if t.state == state and t.objective is not None]
        for state in (results.SUCCEEDED, results.PRUNED)
    }  # fmt: skip
    chart = line_chart(
        f"{metric} per trial",
        {
            "best so far": best_so_far(spec, trials),
            "succeeded": by_state[results.SUCCEEDED],
            "pruned (last epoch reported)": by_state[results.PRUNED],
        },
        "trial",
        colors={"best so far": "#188038", "succeeded": "#1a73e8",
                "pruned (last epoch reported)": "#9aa0a6"},
        lines={"best so far": True, "succeeded": False, "pruned (last epoch reported)": False},
    )  # fmt: skip
    names = [p.name for p in spec.parameters]
    rows = []
    for t in trials:
        best = result.best is not None and t.number == result.best.number
        css = "best" if best else _STATE_CSS.get(t.state, "")
        objective = fmt(t.objective) if t.objective is not None else ""
        rows.append(
            [
                td(t.name or t.number + 1, True),
                td(t.state + (" (best)" if best else ""), False, css),
                *(_param_cell(t.params.get(n, "")) for n in names),
                td(objective, True, css),
                td(len(t.intermediate) or "", True),
                td(f"{t.seconds:.1f}" if t.seconds else "", True),
                td(t.error[:300]),
            ]
        )
    body = "<h2>Best</h2>"
    if result.best is not None:
        body += (
            f"<p class='ok' id='best'>{esc(metric)} = {fmt(result.best.objective or 0.0)} "
            f"(trial {esc(result.best.name or result.best.number + 1)})</p>"
        )
    body += (
        "<p>best_hyperparameters: <code id='best-hyperparameters'>"
        f"{esc(json.dumps(result.best_hyperparameters, sort_keys=True))}</code></p>"
        f"<div class='charts'>{chart}</div><h2>Trials</h2>"
        + table(["Trial", "State", *names, metric, "Epochs reported", "Seconds", "Error"], rows,
                "trials")
    )  # fmt: skip
    if result.notes:
        body += "<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in result.notes)
        body += "</ul>"
    return page(title, subtitle, body)
