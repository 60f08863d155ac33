"""MLflow tracking in the same store as kfpkit's MLflow model registry (SQLite by default):
`mlflow ui --backend-store-uri sqlite:///<pipeline root>/registry/mlflow.db` shows the runs
and the registered models together, and a model version's ``pipeline_run`` is the name of
the run that produced it.

A run is recorded once, after it ended (a local run's steps write nothing to the store while
they run, so no step competes with it for SQLite's lock): an experiment per pipeline unless
named, the run named after its folder, its parameters, metrics, artifact URIs (tags
``kfpkit.artifact.<step>/<output>``) and its state. Recording the same run again (same
experiment, same name) returns the first record.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from kfpkit.registry.mlflow_backend import store_uri
from kfpkit.tracking.base import RunRecord, param_text

ARTIFACT_TAG = "kfpkit.artifact."
PIPELINE_TAG = "kfpkit.pipeline"
RUN_DIR_TAG = "kfpkit.run_dir"
_RUN_ID = re.compile(r"[0-9a-f]{32}\Z")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,249}\Z")
# MLflow's limits per log_batch call
_PARAMS_PER_BATCH, _METRICS_PER_BATCH = 100, 1000


class MlflowTracker:
    backend = "mlflow"

    def __init__(self, tracking_uri: str):
        self.uri = store_uri(tracking_uri)
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # as the registry
        os.environ.setdefault("DO_NOT_TRACK", "true")
        from mlflow import MlflowClient
        from mlflow.entities import Metric, Param, RunTag

        self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        self._types = (Metric, Param, RunTag)

    def _experiment_id(self, name: str) -> str:
        found = self._client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        location = None
        if self.uri.startswith("sqlite:///"):
            # beside the database, not MLflow's default ./mlruns under whatever the cwd is
            folder = Path(self.uri[len("sqlite:///") :]).parent / "mlartifacts"
            location = folder.absolute().as_uri()
        return str(self._client.create_experiment(name, artifact_location=location))

    def find(self, name: str, experiment_ids: list[str] | None = None) -> Any | None:
        """The newest MLflow run named ``name`` (in these experiments; default all)."""
        if not _NAME.match(name):
            raise ValueError(f"run name {name!r} is not valid: letters, digits, '_.:-'")
        ids = experiment_ids or [e.experiment_id for e in self._client.search_experiments()]
        if not ids:
            return None
        found = self._client.search_runs(
            ids, f"attributes.run_name = '{name}'", order_by=["attributes.start_time DESC"],
            max_results=1,
        )  # fmt: skip
        return found[0] if found else None

    def record(
        self,
        run: RunRecord,
        *,
        started: float | None = None,
        ended: float | None = None,
        tags: dict[str, str] | None = None,
    ) -> RunRecord:
        """Records ``run`` (its name, pipeline, status, params, metrics, artifacts) in the
        experiment ``run.experiment`` (default: its pipeline), started and ended at these
        UNIX times; returns it with MLflow's run id. Once per experiment and name."""
        experiment_id = self._experiment_id(run.experiment or run.pipeline or "Default")
        existing = self.find(run.name, [experiment_id])
        if existing is not None:
            return self._to_record(existing)
        Metric, Param, RunTag = self._types
        now = time.time()
        start_ms = int((started or now) * 1000)
        all_tags = {PIPELINE_TAG: run.pipeline, **(tags or {})}
        all_tags.update({f"{ARTIFACT_TAG}{k}": v for k, v in run.artifacts.items()})
        created = self._client.create_run(experiment_id, start_time=start_ms,
                                          tags={k: v for k, v in all_tags.items() if v},
                                          run_name=run.name)  # fmt: skip
        run_id = created.info.run_id
        params = [Param(k, param_text(v)[:6000]) for k, v in sorted(run.params.items())]
        metrics = [Metric(k, v, start_ms, 0) for k, v in sorted(run.metrics.items())]
        for i in range(0, len(params), _PARAMS_PER_BATCH):
            self._client.log_batch(run_id, params=params[i : i + _PARAMS_PER_BATCH])
        for i in range(0, len(metrics), _METRICS_PER_BATCH):
            self._client.log_batch(run_id, metrics=metrics[i : i + _METRICS_PER_BATCH])
        self._client.set_terminated(run_id, run.status or "FINISHED",
                                    end_time=int((ended or now) * 1000))  # fmt: skip
        return self.get(run_id)

    def get(self, run: str) -> RunRecord:
        """A run by MLflow run id or by name (a local run's folder name); ValueError naming
        it, and the newest runs there, when the store has no such run."""
        from mlflow.exceptions import MlflowException

        found: Any = None
        if _RUN_ID.match(run):
            try:
                found = self._client.get_run(run)
            except MlflowException:
                found = None
        if found is None and _NAME.match(run):
            found = self.find(run)
        if found is None:
            raise ValueError(f"no run {run!r} in {self.uri}; newest runs there: "
                             f"{', '.join(self.recent_names()) or 'none'}")  # fmt: skip
        return self._to_record(found)

    def recent_names(self, limit: int = 5) -> list[str]:
        ids = [e.experiment_id for e in self._client.search_experiments()]
        if not ids:
            return []
        runs = self._client.search_runs(ids, order_by=["attributes.start_time DESC"],
                                        max_results=limit)  # fmt: skip
        return [r.info.run_name for r in runs]

    def _to_record(self, run: Any) -> RunRecord:
        tags = dict(run.data.tags)
        experiment = self._client.get_experiment(run.info.experiment_id)
        return RunRecord(
            run_id=run.info.run_id,
            name=run.info.run_name or "",
            pipeline=tags.get(PIPELINE_TAG, ""),
            status=run.info.status,
            params=dict(run.data.params),
            metrics={k: float(v) for k, v in run.data.metrics.items()},
            artifacts={
                k[len(ARTIFACT_TAG) :]: v for k, v in tags.items() if k.startswith(ARTIFACT_TAG)
            },  # fmt: skip
            experiment=experiment.name if experiment is not None else "",
            backend=self.backend,
        )
