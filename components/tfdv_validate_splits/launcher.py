"""Launcher of tfdv_validate_splits: statistics of every split in one Beam pipeline, the
schema from the train split (or the user's), validation of the other splits against it.

Run inside the tfdv image as
``python3 -m kfpkit.components.tfdv_validate_splits.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

import os

from kfpkit.runtime.executor import Executor, main, write_text_artifact
from kfpkit.tfdv import artifacts, data_files, report
from kfpkit.tfdv.schema import schema_from, write_schema
from kfpkit.tfdv.statistics import compute_split_statistics
from kfpkit.tfdv.validation import (
    Thresholds,
    anomaly_lines,
    comparison_rows,
    fail_if_anomalies,
    thresholds_from,
    validate,
    validation_metrics,
)

BASELINE = "train"
VALIDATED = ("validation", "test")  # validated against the schema, drift against train


def statistics_output(split: str) -> str:
    return f"{split}_statistics"


def run(executor: Executor) -> None:
    splits = {BASELINE: executor.required_input(BASELINE)}
    splits["validation"] = executor.required_input("validation")
    test = executor.input("test")
    if test is not None:
        splits["test"] = test
    files = {name: data_files.find_data_files(a.path, name) for name, a in splits.items()}
    drift = thresholds_from(executor, "drift")
    skew = Thresholds()  # no serving data here: tfdv_validate compares serving statistics

    targets = {}
    for name in splits:
        out = executor.output(statistics_output(name))
        os.makedirs(out.path, exist_ok=True)
        targets[name] = (files[name], os.path.join(out.path, artifacts.STATISTICS_FILE))
    stats = compute_split_statistics(
        targets,
        slice_features=executor.string_list_param("slice_features"),
        beam_args=executor.string_list_param("beam_pipeline_args"),
    )
    for name, result in stats.items():
        executor.output(statistics_output(name)).metadata.update(
            {**artifacts.statistics_metadata(result, files[name].format), "split": name}
        )
    if "test" not in splits:  # an explicitly empty artifact, never a silent one
        executor.output(statistics_output("test")).metadata.update(
            {"split": "test", "absent": True}
        )

    overall_train = artifacts.default_slice(stats[BASELINE])
    schema, origin = schema_from(executor, overall_train)
    validated = {}
    for name in VALIDATED:
        if name in stats:
            validated[name] = validate(
                artifacts.default_slice(stats[name]), schema, baseline=overall_train,
                drift=drift, skew=skew,
            )  # fmt: skip
    lines = {name: anomaly_lines(a) for name, a in validated.items()}
    anomaly_count = sum(len(ls) for ls in lines.values())
    fail_if_anomalies([f"{n}: {line}" for n, ls in lines.items() for line in ls], executor)

    write_schema(executor, schema, origin)
    out = executor.output("anomalies")
    for name, anomalies in validated.items():
        artifacts.write_proto_text(
            os.path.join(out.path, name), artifacts.ANOMALIES_FILE, anomalies
        )
    out.metadata.update(
        {
            "files": {name: f"{name}/{artifacts.ANOMALIES_FILE}" for name in validated},
            "anomaly_count": anomaly_count,
            "anomalies": lines,
        }
    )
    metrics = executor.output("metrics").metadata
    metrics["anomaly_count"] = float(anomaly_count)
    for name, anomalies in validated.items():
        metrics.update(validation_metrics(anomalies, prefix=f"{name}_"))
    write_text_artifact(executor.output("report").path, _report(stats, validated))
    executor.set_output_param("valid", anomaly_count == 0)


def _report(stats: dict, validated: dict) -> str:
    body, total = [], 0
    for name, anomalies in validated.items():
        section, count = report.anomalies_section(anomalies, comparison_rows(anomalies), f"-{name}")
        total += count
        body.append(f"<h2>Validation of {report.esc(name)} (drift against train)</h2>{section}")
    for name, result in stats.items():
        body.append(f"<h1>Statistics of {report.esc(name)}</h1>")
        body += [report.dataset_section(d) for d in result.datasets]
    examples = ", ".join(f"{n} {stats[n].datasets[0].num_examples}" for n in stats)
    subtitle = f"{total} anomalies; examples: {examples}"
    return report.page("Data validation of the splits", subtitle, "".join(body))


if __name__ == "__main__":
    main(run)
