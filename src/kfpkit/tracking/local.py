"""Recording a local run (``kfpkit run``, ``kfpkit replay``) in MLflow, in the store of the
run's model registry (``<pipeline root>/registry/mlflow.db`` unless the run names another)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kfpkit.tracking.base import RunRecord, param_text, read_executor_outputs, step_record

_log = logging.getLogger("kfpkit")


def run_record(
    pipeline: str,
    run_dir: Path,
    params: Mapping[str, Any],
    steps: Iterable[tuple[str, Mapping[str, Any], Mapping[str, Any]]] | None,
    status: str,
    seconds: float | None = None,
    experiment: str = "",
) -> RunRecord:
    """The record of a local run: the pipeline's ``params`` (given and defaults), then every
    step's outputs (``steps``: (task, output parameters, output artifacts); default: the
    steps that finished in ``run_dir``)."""
    record = RunRecord(
        run_id="",
        name=run_dir.name,
        pipeline=pipeline,
        status=status,
        params={k: param_text(v) for k, v in params.items()},
        experiment=experiment or pipeline,
    )
    for task, parameters, artifacts in (
        steps if steps is not None else read_executor_outputs(run_dir)
    ):
        step_params, metrics, uris = step_record(task, parameters, artifacts)
        record.params.update(step_params)
        record.metrics.update(metrics)
        record.artifacts.update(uris)
    if seconds is not None:
        record.metrics["run/seconds"] = round(seconds, 3)
    return record


def record_local_run(tracking_uri: str, record: RunRecord, started: float, ended: float,
                     run_dir: Path) -> RunRecord | None:  # fmt: skip
    """Records ``record`` in MLflow at ``tracking_uri``; a failure to record is logged, not
    raised: the run itself already succeeded or failed on its own."""
    from kfpkit.tracking.mlflow_backend import RUN_DIR_TAG, MlflowTracker

    try:
        tracker = MlflowTracker(tracking_uri)
        return tracker.record(record, started=started, ended=ended,
                              tags={RUN_DIR_TAG: str(run_dir)})  # fmt: skip
    except Exception as e:  # noqa: BLE001 - tracking must not change the run's outcome
        _log.warning("could not record run %s in %s: %s", record.name, tracking_uri, e)
        return None
