"""What one window of served traffic shows: skew, drift, predictions, performance, domain.

Given the served rows of a window (``kfpkit.serving.served_logs.read_served``) and the
statistics to compare them with, :func:`monitor` measures

- skew: each served feature against the model's training statistics, and drift: against
  the previous window's statistics, with TFDV's comparators and the data validation's
  thresholds (L-infinity of value frequencies for categorical features, Jensen-Shannon
  divergence for numeric ones; 0 turns a comparison off);
- the predictions' distribution (count, mean, standard deviation, histogram) and its drift
  from the previous window (the ``prediction`` column is part of the window's statistics,
  so the next window compares with it as with any feature);
- performance where feedback labels arrived (accuracy and AUC of the labelled rows) and its
  decay from the model's own evaluation metric (``reference``);
- how many rows had each feature outside the schema's domain (the server's
  ``out_of_domain`` column).

Only answered rows (status 200) count; a window without any is "no traffic": no alert, not
an error. A baseline with no examples (an empty previous window) counts as absent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

from kfpkit.classification import binary_metrics
from kfpkit.components.monitor_serving import defaults
from kfpkit.serving.served_logs import JOINED_COLUMNS, REQUEST_COLUMNS, Window, as_utc
from kfpkit.tfdv.in_process import statistics_of_table
from kfpkit.tfdv.validation import DRIFT, SKEW, Thresholds, anomaly_lines, measurements, validate

PREDICTION = "prediction"
LABEL = "label"
# The log contract's columns and what the feedback join adds: everything else is a feature.
NOT_FEATURES = frozenset(REQUEST_COLUMNS) | frozenset(JOINED_COLUMNS)
PERFORMANCE_METRICS = ("auc", "accuracy")

Statistics: TypeAlias = statistics_pb2.DatasetFeatureStatisticsList


def _default_thresholds() -> Thresholds:
    """The component's default thresholds of one comparison (drift or skew)."""
    return Thresholds(categorical=defaults.THRESHOLD, numeric=defaults.THRESHOLD)


@dataclass(frozen=True)
class Settings:
    """Thresholds of one monitoring run (see the component's arguments)."""

    drift: Thresholds = field(default_factory=_default_thresholds)
    skew: Thresholds = field(default_factory=_default_thresholds)
    metric: str = defaults.METRIC
    max_decay: float = defaults.MAX_DECAY
    min_labelled_rows: int = defaults.MIN_LABELLED_ROWS

    def __post_init__(self) -> None:
        if self.metric not in PERFORMANCE_METRICS:
            raise ValueError(f"metric must be one of {list(PERFORMANCE_METRICS)}, "
                             f"got {self.metric!r}")  # fmt: skip
        value = self.max_decay
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or value < 0):  # fmt: skip
            raise ValueError(f"max_decay must be a number >= 0, got {value!r}")
        rows = self.min_labelled_rows
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise ValueError(f"min_labelled_rows must be an integer >= 1, got {rows!r}")


@dataclass
class Monitoring:
    """Everything a window showed; :meth:`to_dict` is the ``monitoring.json`` document."""

    alert: bool
    reasons: list[str]
    rows: int  # answered rows in the window
    error_rows: int  # rows logged with another status
    features: list[str]
    moved_features: list[str] = field(default_factory=list)
    skew: list[dict[str, Any]] = field(default_factory=list)  # every measured distance
    drift: list[dict[str, Any]] = field(default_factory=list)
    not_compared: dict[str, str] = field(default_factory=dict)  # "skew:f" -> why not
    prediction: dict[str, Any] = field(default_factory=dict)
    performance: dict[str, Any] = field(default_factory=dict)
    out_of_domain: dict[str, int] = field(default_factory=dict)
    anomalies: list[str] = field(default_factory=list)
    window: dict[str, Any] = field(default_factory=dict)  # source, start, end, versions

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def windows(start: str, end: str, hours: float, now: datetime) -> tuple[Window, Window | None]:
    """The window to monitor and, with ``hours``, the one before it (the drift baseline).

    ``hours`` > 0: the window is the ``hours`` before ``end`` (or ``now``), and the previous
    one the ``hours`` before that: what a schedule needs (its parameters are fixed, its
    windows move). Otherwise ``[start, end)`` as given (either may be open) and no previous.
    """
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not math.isfinite(hours):
        raise ValueError(f"window_hours must be a number >= 0, got {hours!r}")
    if hours < 0:
        raise ValueError(f"window_hours must be a number >= 0, got {hours!r}")
    begin, stop = as_utc(start, "start"), as_utc(end, "end")
    if not hours:
        return Window(begin, stop), None
    if begin is not None:
        raise ValueError("give start or window_hours, not both: window_hours counts back from end")
    stop = stop or now
    span = timedelta(hours=hours)
    return Window(stop - span, stop), Window(stop - 2 * span, stop - span)


def feature_columns(table: pa.Table) -> list[str]:
    """The served features: every column the log contract does not define."""
    return [name for name in table.column_names if name not in NOT_FEATURES]


def answered(table: pa.Table) -> pa.Table:
    """The rows the server answered (status 200): the traffic the model saw."""
    return table.filter(pc.equal(table.column("status"), 200))


def window_statistics(table: pa.Table) -> Statistics:
    """TFDV statistics of the served features and the prediction (one dataset).

    A column without any value has no type TFDV can take; it is left out (the report lists
    features by what the statistics hold)."""
    typed = [n for n in [*feature_columns(table), PREDICTION]
             if not pa.types.is_null(table.schema.field(n).type)]  # fmt: skip
    return statistics_of_table(table.select(typed))


def empty_statistics() -> Statistics:
    """The statistics of a window without traffic: one dataset of 0 examples."""
    stats = Statistics()
    stats.datasets.add(num_examples=0)
    return stats


def has_examples(stats: Statistics | None) -> bool:
    return stats is not None and bool(stats.datasets) and stats.datasets[0].num_examples > 0


def _feature_types(stats: Statistics) -> dict[str, int]:
    return {".".join(f.path.step) or f.name: f.type for f in stats.datasets[0].features}


def _comparable(
    window: Statistics, baseline: Statistics, kind: str, not_compared: dict[str, str]
) -> set[str]:
    """Window features the baseline holds with the same type; the others are noted."""
    ours, theirs = _feature_types(window), _feature_types(baseline)
    found = set()
    for name, kind_of in ours.items():
        if name not in theirs:
            if name != PREDICTION or kind == DRIFT:  # training data has no predictions
                not_compared[f"{kind}:{name}"] = "not in the baseline statistics"
        elif theirs[name] != kind_of:
            types = statistics_pb2.FeatureNameStatistics.Type
            here, there = types.Name(kind_of), types.Name(theirs[name])
            not_compared[f"{kind}:{name}"] = f"type {here} here, {there} in the baseline"
        else:
            found.add(name)
    return found


def _restricted(thresholds: Thresholds, names: set[str], compared: set[str]) -> Thresholds:
    """``thresholds`` for the window's features: per-feature values of features the window
    does not hold are dropped (a pipeline's dicts name ``id``, ``year``, the label), and
    features the baseline cannot be compared on get 0 (off)."""
    per_feature = {n: v for n, v in thresholds.per_feature.items() if n in names}
    per_feature.update({n: 0.0 for n in names - compared})
    return Thresholds(thresholds.categorical, thresholds.numeric, per_feature)


def compare(
    window: Statistics,
    training: Statistics | None,
    previous: Statistics | None,
    settings: Settings,
) -> tuple[anomalies_pb2.Anomalies, dict[str, str]]:
    """TFDV's skew (against ``training``) and drift (against ``previous``) of the window.

    Returns the anomalies (with every measurement) and what was not compared, and why."""
    schema = tfdv.infer_schema(window)  # served types: double is numeric, string categorical
    names = {f.name for f in schema.feature}
    not_compared: dict[str, str] = {}
    skew = drift = None
    if training is not None:
        skew = _restricted(settings.skew, names, _comparable(window, training, SKEW, not_compared))
    if previous is not None:
        drift = _restricted(settings.drift, names,
                            _comparable(window, previous, DRIFT, not_compared))  # fmt: skip
    anomalies = validate(window, schema, baseline=previous, serving=training,
                         drift=drift, skew=skew)  # fmt: skip
    return anomalies, not_compared


def prediction_summary(window: Statistics, previous: Statistics | None) -> dict[str, Any]:
    """Count, mean, standard deviation, range and histogram of the predictions; the
    previous window's mean when it has one."""
    found = _numeric(window, PREDICTION)
    if found is None:
        return {}
    stats = found.num_stats
    histogram = next((h for h in stats.histograms
                      if h.type == statistics_pb2.Histogram.STANDARD), None)  # fmt: skip
    summary: dict[str, Any] = {
        "count": int(stats.common_stats.num_non_missing),
        "missing": int(stats.common_stats.num_missing),
        "mean": stats.mean,
        "std_dev": stats.std_dev,
        "min": stats.min,
        "max": stats.max,
        "histogram": [
            {"low": b.low_value, "high": b.high_value, "count": b.sample_count}
            for b in (histogram.buckets if histogram else [])
        ],
    }
    before = _numeric(previous, PREDICTION) if previous is not None else None
    if before is not None:
        summary["previous_mean"] = before.num_stats.mean
        summary["mean_change"] = stats.mean - before.num_stats.mean
    return summary


def _numeric(stats: Statistics, name: str) -> statistics_pb2.FeatureNameStatistics | None:
    for f in stats.datasets[0].features:
        if (".".join(f.path.step) or f.name) == name and f.HasField("num_stats"):
            return f
    return None


def performance(
    table: pa.Table, settings: Settings, reference: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Accuracy and AUC of the rows whose feedback carried a label, and the decay of
    ``settings.metric`` from ``reference`` (the model's evaluation metrics)."""
    if LABEL not in table.column_names:
        return {"labelled_rows": 0, "note": "no feedback labels"}
    rows = table.filter(pc.and_(pc.is_valid(table.column(LABEL)),
                                pc.is_valid(table.column(PREDICTION))))  # fmt: skip
    result: dict[str, Any] = {"labelled_rows": rows.num_rows, "metric": settings.metric}
    if rows.num_rows == 0:
        result["note"] = "no feedback labels in the window"
        return result
    labels = rows.column(LABEL).to_numpy()
    odd = sorted(set(np.unique(labels).tolist()) - {0.0, 1.0})
    if odd:
        result["note"] = f"labels are not binary (e.g. {odd[:3]}): accuracy and AUC not measured"
        return result
    scores = rows.column(PREDICTION).to_numpy()
    measured = binary_metrics(labels, scores)
    result.update(accuracy=measured["accuracy"], auc=measured["auc"],
                  positives=measured["positives"])  # fmt: skip
    now = measured[settings.metric]
    expected = _reference_value(reference, settings.metric)
    if expected is None or now is None:
        result["note"] = ("no reference metric" if expected is None
                          else f"{settings.metric} undefined (one class only)")  # fmt: skip
        return result
    decay = expected - now
    enough = rows.num_rows >= settings.min_labelled_rows
    result.update(reference=expected, decay=decay, max_decay=settings.max_decay,
                  over=bool(enough and decay > settings.max_decay))  # fmt: skip
    if not enough:
        result["note"] = (f"{rows.num_rows} labelled rows < min_labelled_rows "
                          f"{settings.min_labelled_rows}: decay not judged")  # fmt: skip
    return result


def _reference_value(reference: Mapping[str, Any] | None, metric: str) -> float | None:
    """The metric from evaluate's metrics (``auc``), or from a registry record's
    ``metrics`` (resolve_model's ``model_version``)."""
    if not reference:
        return None
    value = reference.get(metric)
    if value is None and isinstance(reference.get("metrics"), Mapping):
        value = reference["metrics"].get(metric)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"reference_metrics: {metric} is not a number: {value!r}")
    return float(value)


def out_of_domain_counts(table: pa.Table) -> dict[str, int]:
    """Feature -> rows whose value was outside the schema's domain (the server's column)."""
    column = table.column("out_of_domain")
    flagged = pc.filter(column, pc.greater(pc.utf8_length(column), 0))
    if len(flagged) == 0:
        return {}
    names = pc.list_flatten(pc.split_pattern(flagged, ","))
    counts = pc.value_counts(pc.utf8_trim_whitespace(names))
    return dict(sorted((v["values"].as_py(), v["counts"].as_py()) for v in counts
                       if v["values"].as_py()))  # fmt: skip


def _fmt(m: dict[str, Any]) -> str:
    return f"{m['feature']} {m['value']:.4g} > {m['threshold']:g} ({m['measure']})"


def monitor(
    table: pa.Table,
    training: Statistics | None,
    previous: Statistics | None,
    settings: Settings,
    reference: Mapping[str, Any] | None = None,
) -> tuple[Monitoring, Statistics]:
    """The monitoring of one window (``table``: read_served's rows) and its statistics."""
    served = answered(table)
    features = feature_columns(table)
    result = Monitoring(alert=False, reasons=[], rows=served.num_rows,
                        error_rows=table.num_rows - served.num_rows, features=features)  # fmt: skip
    if served.num_rows == 0:
        result.reasons = ["no traffic"]
        return result, empty_statistics()
    training = training if has_examples(training) else None
    previous = previous if has_examples(previous) else None
    stats = window_statistics(served)
    anomalies, result.not_compared = compare(stats, training, previous, settings)
    found = [asdict(m) for m in measurements(anomalies)]
    result.skew = [m for m in found if m["kind"] == SKEW]
    drift = [m for m in found if m["kind"] == DRIFT]
    result.drift = [m for m in drift if m["feature"] != PREDICTION]
    result.prediction = prediction_summary(stats, previous)
    prediction_drift = next((m for m in drift if m["feature"] == PREDICTION), None)
    if prediction_drift is not None:
        result.prediction["drift"] = prediction_drift
    result.performance = performance(served, settings, reference)
    result.out_of_domain = out_of_domain_counts(served)
    result.anomalies = anomaly_lines(anomalies)

    skewed = sorted((m for m in result.skew if m["value"] > m["threshold"]),
                    key=lambda m: -m["value"])  # fmt: skip
    drifted = sorted((m for m in result.drift if m["value"] > m["threshold"]),
                     key=lambda m: -m["value"])  # fmt: skip
    result.moved_features = sorted({m["feature"] for m in skewed + drifted})
    if skewed:
        result.reasons.append("skew from the training data: " + ", ".join(map(_fmt, skewed)))
    if drifted:
        result.reasons.append("drift from the previous window: " + ", ".join(map(_fmt, drifted)))
    if prediction_drift and prediction_drift["value"] > prediction_drift["threshold"]:
        result.reasons.append("prediction drift from the previous window: "
                              + _fmt(prediction_drift))  # fmt: skip
    perf = result.performance
    if perf.get("over"):
        result.reasons.append(
            f"performance decay: {perf['metric']} {perf[perf['metric']]:.4f} on "
            f"{perf['labelled_rows']} labelled rows, {perf['decay']:.4f} below the reference "
            f"{perf['reference']:.4f} (max_decay {perf['max_decay']:g})"
        )
    result.alert = bool(result.reasons)
    if not result.alert:
        result.reasons.append(_why_not(result, training, previous))
    return result, stats


def _why_not(result: Monitoring, training: Statistics | None, previous: Statistics | None) -> str:
    parts = []
    for kind, baseline, measured in (("skew", training, result.skew),
                                     ("drift", previous, result.drift)):  # fmt: skip
        if baseline is None:
            parts.append(f"no {kind} baseline")
        elif measured:
            top = max(measured, key=lambda m: m["value"] / m["threshold"])
            parts.append(f"no {kind} beyond its threshold (largest {top['feature']} "
                         f"{top['value']:.4g} <= {top['threshold']:g})")  # fmt: skip
        else:
            parts.append(f"no {kind} threshold set")
    perf = result.performance
    if "decay" in perf:
        parts.append(f"{perf['metric']} decay {perf['decay']:.4f}"
                     + (f" <= max_decay {perf['max_decay']:g}" if not perf.get("note")
                        else f" ({perf['note']})"))  # fmt: skip
    elif perf.get("note"):
        parts.append(perf["note"])
    return "no alert: " + "; ".join(parts)
