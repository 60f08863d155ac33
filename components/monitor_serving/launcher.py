"""Launcher of monitor_serving: reads a window of served traffic and its baselines, writes
the monitoring, the window's statistics, the report and metrics.

Run inside the tfdv image as
``python3 -m kfpkit.components.monitor_serving.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from kfpkit.components.monitor_serving import defaults
from kfpkit.components.monitor_serving.monitor import (
    Monitoring,
    Settings,
    Statistics,
    answered,
    has_examples,
    monitor,
    window_statistics,
    windows,
)
from kfpkit.components.monitor_serving.page import monitoring_html
from kfpkit.runtime.executor import (
    Artifact,
    Executor,
    main,
    write_json_artifact,
    write_text_artifact,
)
from kfpkit.serving.served_logs import (
    Window,
    duplicate_feedback,
    empty_table,
    read_served,
    unmatched_feedback,
)
from kfpkit.tfdv import artifacts
from kfpkit.tfdv.validation import metric_name, thresholds_from

_log = logging.getLogger("kfpkit")
MONITORING_FILE = "monitoring.json"


def _baseline(executor: Executor, name: str) -> Statistics | None:
    """An optional statistics input; absent when not connected, when load_window_state marked
    it a ``fallback`` (nothing to compare with), or when it holds no examples."""
    given = executor.input(name)
    # an importer of an empty URI (a model registered without its statistics) gives no file
    if given is None or not given.uri or given.metadata.get("fallback"):
        return None
    stats = artifacts.load_statistics(given.path, name)
    return stats if has_examples(stats) else None


def _reference(given: Artifact | None) -> dict[str, Any] | None:
    """The model's evaluation metrics: evaluate's Metrics (metadata, or its JSON file) or
    resolve_model's ``model_version`` (its ``metrics``)."""
    if given is None:
        return None
    if given.metadata:
        return given.metadata
    path = given.path
    if os.path.isdir(path):
        found = sorted(f for f in os.listdir(path) if f.endswith(".json"))
        if len(found) != 1:
            return None
        path = os.path.join(path, found[0])
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"reference_metrics: {path!r} is not JSON: {e}") from e
    if not isinstance(doc, dict):
        raise ValueError(f"reference_metrics: {path!r} holds no metrics object")
    return doc


def settings_from(executor: Executor) -> Settings:
    rows = executor.number_param("min_labelled_rows", defaults.MIN_LABELLED_ROWS)
    if rows != int(rows):
        raise ValueError(f"min_labelled_rows must be an integer >= 1, got {rows!r}")
    return Settings(
        drift=thresholds_from(executor, "drift", defaults.THRESHOLD),
        skew=thresholds_from(executor, "skew", defaults.THRESHOLD),
        metric=executor.param("metric", defaults.METRIC),
        max_decay=executor.number_param("max_decay", defaults.MAX_DECAY),
        min_labelled_rows=int(rows),
    )


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _window(table: pa.Table, source: str, window: Window) -> dict[str, Any]:
    info: dict[str, Any] = {"source": source, "start": _iso(window.start),
                            "end": _iso(window.end), "logged_rows": table.num_rows}  # fmt: skip
    if table.num_rows:
        ts = table.column("timestamp")
        info["first"] = pc.min(ts).as_py().isoformat()
        info["last"] = pc.max(ts).as_py().isoformat()
        for column in ("model_version", "variant"):
            info[f"{column}s"] = sorted(v for v in pc.unique(table.column(column)).to_pylist() if v)
        info["duplicate_feedback"] = duplicate_feedback(table)
        info["unmatched_feedback"] = unmatched_feedback(table)
    return info


def metrics_of(result: Monitoring) -> dict[str, float]:
    metrics: dict[str, float] = {
        "rows": float(result.rows),
        "error_rows": float(result.error_rows),
        "alert": float(result.alert),
        "features_moved": float(len(result.moved_features)),
        "labelled_rows": float(result.performance.get("labelled_rows", 0)),
    }
    for m in result.skew + result.drift:
        metrics[f"{m['kind']}_{metric_name(m['feature'])}"] = round(m["value"], 6)
    for key in ("mean", "std_dev", "mean_change"):
        if key in result.prediction:
            metrics[f"prediction_{key}"] = round(result.prediction[key], 6)
    if "drift" in result.prediction:
        metrics["prediction_drift"] = round(result.prediction["drift"]["value"], 6)
    for key in ("accuracy", "auc", "decay"):
        if result.performance.get(key) is not None:
            metrics[key] = round(result.performance[key], 6)
    for feature, count in result.out_of_domain.items():
        metrics[f"out_of_domain_{metric_name(feature)}"] = float(count)
    return metrics


def run(executor: Executor) -> None:
    source = (executor.param("logs", "") or "").strip()
    start, end = executor.param("start", "") or "", executor.param("end", "") or ""
    hours = executor.number_param("window_hours", defaults.WINDOW_HOURS)
    window, before = windows(start, end, hours, datetime.now(UTC))
    settings = settings_from(executor)
    training = _baseline(executor, "training_statistics")
    previous = _baseline(executor, "previous_statistics")
    reference = _reference(executor.input("reference_metrics"))
    endpoint = executor.param("bigquery_endpoint", "") or ""
    if source:
        table = read_served(source, window.start, window.end, bigquery_endpoint=endpoint)
    else:  # continuous training without served traffic: the step runs, and says so
        table = empty_table()
    previous_window: dict[str, Any] = {}
    if source and before is not None and executor.input("previous_statistics") is None:
        # a schedule's window: the drift baseline is the window before, from the same log
        earlier = answered(read_served(source, before.start, before.end,
                                       bigquery_endpoint=endpoint))  # fmt: skip
        previous = window_statistics(earlier) if earlier.num_rows else None
        previous_window = {"start": _iso(before.start), "end": _iso(before.end),
                           "rows": earlier.num_rows}  # fmt: skip
    result, stats = monitor(table, training, previous, settings, reference)
    result.window = _window(table, source, window)
    if previous_window:
        result.window["previous"] = previous_window
    if not source:
        result.reasons = ["no traffic (no served-traffic source: logs is empty)"]
    _log.info("%s: %s", "ALERT" if result.alert else "no alert", "; ".join(result.reasons))

    out = executor.output("statistics")
    os.makedirs(out.path, exist_ok=True)
    with open(os.path.join(out.path, artifacts.STATISTICS_FILE), "wb") as f:
        f.write(stats.SerializeToString())
    out.metadata.update({"file": artifacts.STATISTICS_FILE, "num_examples": result.rows,
                         "num_features": len(stats.datasets[0].features),
                         "empty": result.rows == 0, "source": source,
                         "start": _iso(window.start), "end": _iso(window.end)})  # fmt: skip
    doc = result.to_dict()
    summary = {"alert": result.alert, "reasons": result.reasons,
               "moved_features": result.moved_features, "rows": result.rows}  # fmt: skip
    write_json_artifact(executor.output("monitoring"), MONITORING_FILE, doc, summary)
    executor.output("metrics").metadata.update(metrics_of(result))
    write_text_artifact(executor.output("report").path, monitoring_html(result, stats))
    executor.set_output_param("alert", result.alert)
    executor.set_output_param("moved_features", result.moved_features)


if __name__ == "__main__":
    main(run)
