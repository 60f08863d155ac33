"""Validates statistics against a schema, with drift and skew comparators set from thresholds.

Comparators follow the feature's kind, as TFDV defines them: L-infinity distance of value
frequencies for categorical features (strings, and integers marked categorical), and
Jensen-Shannon divergence of histograms for numeric features. Shared by the steps that
compare statistics (``tfdv_validate``, ``tfdv_validate_splits``, ``monitor_serving``) and the
one that reads their measurements (``retrain_decision``), so every comparison uses the same
thresholds, parameters and metric names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

if TYPE_CHECKING:
    from kfpkit.runtime.executor import Executor

DRIFT = "drift"
SKEW = "skew"
L_INFINITY = "L_INFINITY"
_METRIC_NAME = re.compile(r"[^A-Za-z0-9_]+")


@dataclass(frozen=True)
class Thresholds:
    """Thresholds of one comparison (drift or skew); 0 turns a comparator off."""

    categorical: float = 0.0  # L-infinity, for every categorical feature
    numeric: float = 0.0  # Jensen-Shannon divergence, for every numeric feature
    per_feature: Mapping[str, float] = field(default_factory=dict)  # overrides, by name

    def check(self, kind: str, schema: schema_pb2.Schema) -> None:
        names = {f.name for f in schema.feature}
        unknown = sorted(set(self.per_feature) - names)
        if unknown:
            raise ValueError(f"{kind} thresholds name features not in the schema: {unknown}")
        for name, value in [("categorical", self.categorical), ("numeric", self.numeric),
                            *self.per_feature.items()]:  # fmt: skip
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{kind} threshold for {name!r} must be a number >= 0: {value!r}")


def is_categorical(feature: schema_pb2.Feature) -> bool:
    if feature.type == schema_pb2.BYTES:
        return True
    return feature.type == schema_pb2.INT and feature.int_domain.is_categorical


def apply_thresholds(schema: schema_pb2.Schema, kind: str, thresholds: Thresholds) -> int:
    """Sets the drift or skew comparator of each feature; returns how many were set."""
    thresholds.check(kind, schema)
    count = 0
    for feature in schema.feature:
        categorical = is_categorical(feature)
        default = thresholds.categorical if categorical else thresholds.numeric
        threshold = float(thresholds.per_feature.get(feature.name, default))
        comparator = feature.drift_comparator if kind == DRIFT else feature.skew_comparator
        comparator.Clear()
        if threshold <= 0:
            continue
        if categorical:
            comparator.infinity_norm.threshold = threshold
        else:
            comparator.jensen_shannon_divergence.threshold = threshold
        count += 1
    return count


@dataclass(frozen=True)
class Measurement:
    feature: str
    kind: str  # drift or skew
    measure: str  # L_INFINITY or JENSEN_SHANNON_DIVERGENCE
    value: float
    threshold: float


def measurements(anomalies: anomalies_pb2.Anomalies) -> list[Measurement]:
    """Every drift/skew value TFDV measured, over the threshold or not."""
    found = []
    for info in anomalies.drift_skew_info:
        name = ".".join(info.path.step)
        for kind, items in ((DRIFT, info.drift_measurements), (SKEW, info.skew_measurements)):
            for m in items:
                found.append(
                    Measurement(
                        feature=name,
                        kind=kind,
                        measure=anomalies_pb2.DriftSkewInfo.Measurement.Type.Name(m.type),
                        value=m.value,
                        threshold=m.threshold,
                    )
                )
    return sorted(found, key=lambda m: (m.feature, m.kind))


def validate(
    stats: statistics_pb2.DatasetFeatureStatisticsList,
    schema: schema_pb2.Schema,
    baseline: statistics_pb2.DatasetFeatureStatisticsList | None = None,
    serving: statistics_pb2.DatasetFeatureStatisticsList | None = None,
    drift: Thresholds | None = None,
    skew: Thresholds | None = None,
    environment: str = "",
) -> anomalies_pb2.Anomalies:
    """TFDV validation; drift needs ``baseline``, skew needs ``serving`` statistics.

    ``environment`` (e.g. ``SERVING``) must be one of the schema's ``default_environment``.
    """
    if environment and environment not in schema.default_environment:
        known = list(schema.default_environment) or "none"
        raise ValueError(
            f"environment {environment!r} is not in the schema (environments: {known})"
        )
    schema = schema_pb2.Schema.FromString(schema.SerializeToString())  # leave the input as is
    if drift is not None and apply_thresholds(schema, DRIFT, drift) and baseline is None:
        raise ValueError("Drift thresholds are set but no baseline_statistics were given")
    if skew is not None and apply_thresholds(schema, SKEW, skew) and serving is None:
        raise ValueError("Skew thresholds are set but no serving_statistics were given")
    return tfdv.validate_statistics(
        stats,
        schema,
        environment=environment or None,
        previous_statistics=baseline,
        serving_statistics=serving,
    )


def anomaly_lines(anomalies: anomalies_pb2.Anomalies) -> list[str]:
    """One line per anomaly: ``feature: short description: description``."""
    lines = [
        f"{name}: {info.short_description}: {info.description}"
        for name, info in sorted(anomalies.anomaly_info.items())
    ]
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        lines.append(f"(dataset): {info.short_description}: {info.description}")
    return lines


def thresholds_from(executor: Executor, kind: str, default: float = 0.0) -> Thresholds:
    """Drift or skew thresholds from a step's parameters: ``default_categorical_<kind>_threshold``,
    ``default_numeric_<kind>_threshold`` (``default`` when not given) and ``<kind>_thresholds``
    (feature -> threshold)."""
    per_feature = executor.json_param(f"{kind}_thresholds", {}) or {}
    if not isinstance(per_feature, dict):
        raise ValueError(f"{kind}_thresholds must be a dict feature -> threshold: {per_feature!r}")
    return Thresholds(
        categorical=executor.number_param(f"default_categorical_{kind}_threshold", default),
        numeric=executor.number_param(f"default_numeric_{kind}_threshold", default),
        per_feature=per_feature,
    )


def metric_name(feature: str) -> str:
    """A feature name as a metric name (letters, digits, ``_``)."""
    return _METRIC_NAME.sub("_", feature)


def validation_metrics(anomalies: anomalies_pb2.Anomalies, prefix: str = "") -> dict[str, float]:
    """``anomaly_count``, ``features_over_threshold``, ``<drift|skew>_<feature>``, prefixed."""
    found = measurements(anomalies)
    metrics: dict[str, float] = {
        f"{prefix}anomaly_count": float(len(anomaly_lines(anomalies))),
        f"{prefix}features_over_threshold": float(
            len({m.feature for m in found if m.value > m.threshold})
        ),
    }
    for m in found:
        metrics[f"{prefix}{m.kind}_{metric_name(m.feature)}"] = round(m.value, 6)
    return metrics


def comparison_rows(anomalies: anomalies_pb2.Anomalies) -> list[tuple[str, str, str, float, float]]:
    """The measurements as the HTML report's rows (feature, kind, measure, value, threshold)."""
    return [(m.feature, m.kind, m.measure, m.value, m.threshold) for m in measurements(anomalies)]


def fail_if_anomalies(lines: list[str], executor: Executor) -> None:
    """ValueError listing every anomaly when the step's ``fail_on_anomalies`` is set."""
    if lines and executor.param("fail_on_anomalies", False):
        listing = "\n".join(f"  - {line}" for line in lines)
        raise ValueError(f"{len(lines)} data anomalies (fail_on_anomalies is set):\n{listing}")
