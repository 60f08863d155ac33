"""Launcher of online_experiment: reads served traffic and feedback, writes the decision.

Run inside the core image as
``python3 -m kfpkit.components.online_experiment.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

import re
from typing import Any

from kfpkit.components.online_experiment import defaults
from kfpkit.components.online_experiment.analysis import Analysis, Settings, analyse
from kfpkit.components.online_experiment.report import experiment_html
from kfpkit.runtime.executor import Executor, main, write_json_artifact, write_text_artifact
from kfpkit.serving import served_logs

DECISION_FILE = "decision.json"


def settings_from(executor: Executor) -> Settings:
    control = str(executor.param("control_variant", "")).strip()
    if not control:
        raise ValueError("control_variant is required")
    treatment = str(executor.param("treatment_variant", "") or "").strip()
    return Settings(
        control=control,
        treatments=(treatment,) if treatment else (),
        metric=str(executor.param("metric", defaults.METRIC)),
        alpha=executor.number_param("alpha", defaults.ALPHA),
        min_labelled_rows=_integer(executor, "min_labelled_rows", defaults.MIN_LABELLED_ROWS),
        mixture_sd=executor.number_param("mixture_sd", defaults.MIXTURE_SD),
        threshold=executor.number_param("threshold", defaults.THRESHOLD),
        max_latency_p99_ms=executor.number_param("max_latency_p99_ms", defaults.MAX_LATENCY_P99_MS),
        max_error_rate=executor.number_param("max_error_rate", defaults.MAX_ERROR_RATE),
        confidence=executor.number_param("confidence", defaults.CONFIDENCE),
    )


def _integer(executor: Executor, name: str, default: int) -> int:
    value = executor.number_param(name, default)
    if value != int(value):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    return int(value)


def metrics_of(analysis: Analysis) -> dict[str, float]:
    """Flat numbers for KFP's Metrics: per variant ``<variant>/<name>``, per treatment the
    test's current difference, interval and log-likelihood ratio."""
    out: dict[str, float] = {"rows": analysis.rows, "labelled_rows": analysis.labelled_rows}
    for v in analysis.variants:
        out[f"{v.variant}/rows"] = v.rows
        out[f"{v.variant}/labelled_rows"] = v.labelled_rows
        for name in ("accuracy", "auc", "log_loss", "reward", "latency_p50_ms",
                     "latency_p99_ms", "error_rate"):  # fmt: skip
            estimate = getattr(v, name)
            if estimate.value is not None:
                out[f"{v.variant}/{name}"] = estimate.value
    for c in analysis.comparisons:
        current = c.test.current if c.test else None
        if current is not None:
            out[f"{c.treatment}/difference"] = current.difference
            out[f"{c.treatment}/difference_low"] = current.low
            out[f"{c.treatment}/difference_high"] = current.high
            out[f"{c.treatment}/log_likelihood_ratio"] = current.log_likelihood_ratio
        if c.test and c.test.crossed:
            out[f"{c.treatment}/outcomes_to_decision"] = c.test.crossed.labelled_rows
    return out


def _metadata(doc: dict[str, Any]) -> dict[str, Any]:
    """The decision's headline in the artifact's metadata (the evidence stays in the file)."""
    return {k: doc[k] for k in ("decision", "decided_variant", "reasons", "rows",
                                "labelled_rows", "window")}  # fmt: skip


def run(executor: Executor) -> None:
    settings = settings_from(executor)
    source = str(executor.param("logs", "") or "").strip()
    if not source:
        raise ValueError("logs is required: a log folder, gs:// folder or bq:// table")
    start = served_logs.as_utc(executor.param("start", "") or None, "start")
    end = served_logs.as_utc(executor.param("end", "") or None, "end")
    table = served_logs.read_served(
        source, start, end, bigquery_endpoint=str(executor.param("bigquery_endpoint", "") or "")
    )
    window = {"start": start.isoformat() if start else None,
              "end": end.isoformat() if end else None}  # fmt: skip
    feedback = {
        "duplicate_feedback_rows": served_logs.duplicate_feedback(table),
        "unmatched_feedback_rows": served_logs.unmatched_feedback(table),
    }
    analysis = analyse(table, settings, window, feedback)
    doc = {"source": source, **analysis.to_dict()}
    write_json_artifact(executor.output("decision"), DECISION_FILE, doc, _metadata(doc))
    write_text_artifact(executor.output("report").path, experiment_html(analysis, source))
    executor.output("metrics").metadata.update(
        {_metric_key(k): float(v) for k, v in metrics_of(analysis).items()}
    )
    executor.set_output_param("decision_value", analysis.decision)


def _metric_key(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_./:=\-]", "_", name)


if __name__ == "__main__":
    main(run)
