"""Launcher of bigquery_split: parses the executor input, calls the runner, records outputs.

Run inside the core image as
``python3 -m kfpkit.components.bigquery_split.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

from typing import Any

from kfpkit.components._runtime.executor import Executor, main
from kfpkit.components._runtime.identity import step_key
from kfpkit.components.bigquery_split import sql
from kfpkit.components.bigquery_split.runner import (
    PARQUET_PATTERN,
    SplitRequest,
    SplitRunner,
)

OTHER_SPLITS = "other_splits"
METRICS = "split_metrics"


def request_from(executor: Executor) -> SplitRequest:
    ratios = executor.json_param("split_ratios", sql.DEFAULT_RATIOS)
    export_format = executor.param("export_format", "parquet")
    export_uris: dict[str, str] = {}
    if export_format == "parquet" and isinstance(ratios, dict):
        other = executor.output(OTHER_SPLITS).uri.rstrip("/")
        for name in ratios:
            standard = name in sql.STANDARD_SPLITS
            export_uris[name] = executor.output(name).uri if standard else f"{other}/{name}"
    identity = {
        "inputs": executor.raw.get("inputs", {}),
        "outputs": sorted(a.uri for a in executor.output_artifacts.values()),
    }
    return SplitRequest(
        source_table=executor.param("source_table"),
        key_columns=executor.json_param("key_columns"),
        split_ratios=ratios,
        destination_dataset=executor.param("destination_dataset"),
        project=executor.param("project"),
        location=executor.param("location", "US"),
        bigquery_endpoint=executor.param("bigquery_endpoint", ""),
        export_format=export_format,
        destination_table_prefix=executor.param("destination_table_prefix", ""),
        export_uris=export_uris,
        step_key=step_key(identity),
    )


def run(executor: Executor) -> None:
    request = request_from(executor)
    results = SplitRunner(request).run()
    metrics = executor.output(METRICS)
    metrics.metadata["rows_total"] = sum(r.row_count for r in results)
    others: dict[str, Any] = {}
    for r in results:
        meta = {
            "split": r.name,
            "table_id": r.table_id,
            "row_count": r.row_count,
            "schema": r.schema,
            "format": request.export_format,
            "key_columns": request.key_columns,
        }
        if r.export_uri:
            meta["files"] = r.export_uri.rstrip("/") + "/" + PARQUET_PATTERN
        metrics.metadata[f"rows_{r.name}"] = r.row_count
        if r.name in sql.STANDARD_SPLITS:
            executor.output(r.name).metadata.update(meta)
        else:
            others[r.name] = meta
    executor.output(OTHER_SPLITS).metadata["splits"] = others
    for name in sql.STANDARD_SPLITS:
        art = executor.output(name)
        if "split" not in art.metadata:
            # Not asked for in split_ratios: an explicitly empty artifact, never a silent one.
            art.metadata.update({"split": name, "row_count": 0, "absent": True})


if __name__ == "__main__":
    main(run)
