"""Launcher of tfdv_validate: validates statistics against a schema, with drift and skew.

Run inside the tfdv image as
``python3 -m kfpkit.components.tfdv_validate.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

from typing import Any

from kfpkit.runtime.executor import Executor, main, write_text_artifact
from kfpkit.tfdv import artifacts, report
from kfpkit.tfdv.validation import (
    anomaly_lines,
    comparison_rows,
    fail_if_anomalies,
    thresholds_from,
    validate,
    validation_metrics,
)


def _optional_statistics(executor: Executor, name: str) -> Any:
    given = executor.input(name)
    return artifacts.load_statistics(given.path, name) if given is not None else None


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
