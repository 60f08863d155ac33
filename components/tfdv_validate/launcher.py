"""Launcher of tfdv_validate: validates statistics against a schema, with drift and skew.

Run inside the tfdv image as
``python3 -m kfpkit.components.tfdv_validate.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

import re
from typing import Any

from tensorflow_metadata.proto.v0 import anomalies_pb2

from kfpkit.components.tfdv_validate.validation import (
    Thresholds,
    anomaly_lines,
    measurements,
    validate,
)
from kfpkit.runtime.executor import Executor, main, write_text_artifact
from kfpkit.tfdv import artifacts, report

_METRIC_NAME = re.compile(r"[^A-Za-z0-9_]+")


def thresholds_from(executor: Executor, kind: str) -> Thresholds:
    """Drift or skew thresholds from the step's parameters (shared by tfdv_validate_splits)."""
    per_feature = executor.json_param(f"{kind}_thresholds", {}) or {}
    if not isinstance(per_feature, dict):
        raise ValueError(f"{kind}_thresholds must be a dict feature -> threshold: {per_feature!r}")
    return Thresholds(
        categorical=executor.number_param(f"default_categorical_{kind}_threshold", 0.0),
        numeric=executor.number_param(f"default_numeric_{kind}_threshold", 0.0),
        per_feature=per_feature,
    )


def _optional_statistics(executor: Executor, name: str) -> Any:
    given = executor.input(name)
    return artifacts.load_statistics(given.path, name) if given is not None else None


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
        metrics[f"{prefix}{m.kind}_{_METRIC_NAME.sub('_', m.feature)}"] = round(m.value, 6)
    return metrics


def comparison_rows(anomalies: anomalies_pb2.Anomalies) -> list[tuple[str, str, str, float, float]]:
    return [(m.feature, m.kind, m.measure, m.value, m.threshold) for m in measurements(anomalies)]


def fail_if_anomalies(lines: list[str], executor: Executor) -> None:
    if lines and executor.param("fail_on_anomalies", False):
        listing = "\n".join(f"  - {line}" for line in lines)
        raise ValueError(f"{len(lines)} data anomalies (fail_on_anomalies is set):\n{listing}")


def run(executor: Executor) -> None:
    stats = artifacts.load_statistics(executor.required_input("statistics").path, "statistics")
    schema = artifacts.load_schema(executor.required_input("schema").path, "schema")
    anomalies = validate(
        stats,
        schema,
        baseline=_optional_statistics(executor, "baseline_statistics"),
        serving=_optional_statistics(executor, "serving_statistics"),
        drift=thresholds_from(executor, "drift"),
        skew=thresholds_from(executor, "skew"),
        environment=executor.param("environment", ""),
    )
    lines = anomaly_lines(anomalies)
    fail_if_anomalies(lines, executor)

    out = executor.output("anomalies")
    artifacts.write_proto_text(out.path, artifacts.ANOMALIES_FILE, anomalies)
    out.metadata.update({"file": artifacts.ANOMALIES_FILE, "anomaly_count": len(lines),
                         "anomalies": lines})  # fmt: skip
    executor.output("metrics").metadata.update(validation_metrics(anomalies))
    write_text_artifact(
        executor.output("report").path,
        report.anomalies_html(anomalies, comparison_rows(anomalies), "Data validation"),
    )
    executor.set_output_param("valid", not lines)


if __name__ == "__main__":
    main(run)
