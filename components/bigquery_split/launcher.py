"""Launcher of bigquery_split: parses the executor input, runs the split, records outputs.

Run inside the core image as
``python3 -m kfpkit.components.bigquery_split.launcher --executor_input '{{$}}'``.
A BigQuery table runs on BigQuery (runner.py); Parquet or CSV data (a path or gs:// URI) on
the embedded engine (embedded.py); both record the same outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kfpkit.components.bigquery_split import sql
from kfpkit.components.bigquery_split.source import (
    PARQUET_PATTERN,
    SplitResult,
    is_file_source,
    table_id,
)
from kfpkit.runtime.executor import Executor, main, uri_to_path
from kfpkit.runtime.identity import executor_identity, step_key

if TYPE_CHECKING:
    from kfpkit.components.bigquery_split.runner import SplitRequest

OTHER_SPLITS = "other_splits"
METRICS = "split_metrics"


def output_uris(executor: Executor, ratios: Any) -> dict[str, str]:
    """Split name -> the artifact URI receiving its Parquet files (other names: under
    ``other_splits``)."""
    if not isinstance(ratios, dict):
        return {}
    other = executor.output(OTHER_SPLITS).uri.rstrip("/")
    return {
        name: executor.output(name).uri if name in sql.STANDARD_SPLITS else f"{other}/{name}"
        for name in ratios
    }


def request_from(executor: Executor) -> SplitRequest:
    from kfpkit.components.bigquery_split.runner import SplitRequest

    ratios = executor.json_param("split_ratios", sql.DEFAULT_RATIOS)
    export_format = executor.param("export_format", sql.PARQUET)
    export_uris = output_uris(executor, ratios) if export_format == sql.PARQUET else {}
    return SplitRequest(
        source_table=table_id(executor.param("source_table")),
        key_columns=executor.json_param("key_columns"),
        split_ratios=ratios,
        destination_dataset=executor.param("destination_dataset"),
        project=executor.param("project"),
        location=executor.param("location", sql.DEFAULT_LOCATION),
        bigquery_endpoint=executor.param("bigquery_endpoint", ""),
        export_format=export_format,
        destination_table_prefix=executor.param("destination_table_prefix", ""),
        export_uris=export_uris,
        step_key=step_key(executor_identity(executor.raw)),
        label_column=executor.param("label_column", ""),
    )


def split_files(executor: Executor) -> list[SplitResult]:
    """The embedded engine on a Parquet/CSV source; the BigQuery-only inputs must be unset."""
    from kfpkit.components.bigquery_split.embedded import split_files as split

    if executor.param("export_format", sql.PARQUET) != sql.PARQUET:
        raise ValueError("a Parquet/CSV source is split into Parquet files: export_format "
                         f"must be 'parquet', got {executor.param('export_format')!r}")  # fmt: skip
    ratios = executor.json_param("split_ratios", sql.DEFAULT_RATIOS)
    sql.split_ranges(ratios)  # the ratios' errors before anything else
    uris = output_uris(executor, ratios)
    results = split(
        executor.param("source_table"),
        executor.json_param("key_columns"),
        ratios,
        {name: uri_to_path(uri) for name, uri in uris.items()},
        label_column=executor.param("label_column", ""),
    )
    for r in results:  # the files as the artifact's URI names them, as on BigQuery
        r.export_uri = uris[r.name]
    return results


def run(executor: Executor) -> None:
    if is_file_source(executor.param("source_table")):
        results, export_format = split_files(executor), sql.PARQUET
    else:
        from kfpkit.components.bigquery_split.runner import SplitRunner

        request = request_from(executor)
        results, export_format = SplitRunner(request).run(), request.export_format
    key_columns = executor.json_param("key_columns")
    metrics = executor.output(METRICS)
    metrics.metadata["rows_total"] = sum(r.row_count for r in results)
    others: dict[str, Any] = {}
    for r in results:
        meta = {
            "split": r.name,
            "table_id": r.table_id,
            "row_count": r.row_count,
            "schema": r.schema,
            "format": export_format,
            "key_columns": key_columns,
            "source": executor.param("source_table"),
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
