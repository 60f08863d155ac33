"""Kubeflow Pipelines: a KFP run as a tracked run, through the v2beta1 REST API (no kfp).

``kfpkit submit --target kubeflow`` creates every run in a KFP experiment (``--experiment``,
default ``Default``; KFP's own run comparison works within it). The API gives a run's state,
experiment and parameters (``runtime_config.parameters``); KFP 2.x keeps the metrics of
Metrics artifacts in ML Metadata, which its REST API does not serve (its UI reads them over
gRPC-web), so a Kubeflow run compares by its parameters and says so.
"""

from __future__ import annotations

import re
from typing import Any

from kfpkit.runtime.deadline import check_timeout, deadline
from kfpkit.submit.kubeflow import Kubeflow
from kfpkit.submit.kubeflow_rest import KubeflowRest
from kfpkit.tracking.base import CANCELLED, FAILED, RUNNING, SUCCEEDED, RunRecord, param_text

STATES = {"SUCCEEDED": SUCCEEDED, "FAILED": FAILED, "CANCELED": CANCELLED,
          "CANCELING": CANCELLED}  # fmt: skip
NO_METRICS = "KFP 2.x serves no metrics over REST (ML Metadata): see the run in KFP's UI"
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,127}\Z")


class KubeflowTracker:
    backend = "kubeflow"

    def __init__(self, target: Kubeflow, timeout: float = 120.0):
        self.timeout = check_timeout(timeout)
        self.rest = KubeflowRest(target, timeout=min(self.timeout, 30.0))

    def get(self, run: str) -> RunRecord:
        """The run ``run`` (a KFP run id), within ``timeout`` seconds in all."""
        if not _RUN_ID.match(run):
            raise ValueError(f"{run!r} is not a Kubeflow Pipelines run id")
        with deadline(self.timeout, f"Kubeflow Pipelines at {self.rest.host}"):
            return self._get(run)

    def _get(self, run: str) -> RunRecord:
        found = self.rest.get("runs", run)
        if found is None:
            raise ValueError(f"no run {run!r} on Kubeflow Pipelines at {self.rest.host}")
        experiment = ""
        if found.get("experiment_id"):
            doc = self.rest.get("experiments", str(found["experiment_id"])) or {}
            experiment = str(doc.get("display_name", ""))
        return RunRecord(
            run_id=str(found.get("run_id", run)),
            name=str(found.get("display_name", "")),
            pipeline=self._pipeline_name(found),
            status=STATES.get(str(found.get("state", "")), RUNNING),
            params={k: param_text(v) for k, v in
                    ((found.get("runtime_config") or {}).get("parameters") or {}).items()},
            experiment=experiment,
            backend=self.backend,
            note=NO_METRICS,
        )  # fmt: skip

    def _pipeline_name(self, run: dict[str, Any]) -> str:
        spec = run.get("pipeline_spec") or {}
        if not spec and run.get("pipeline_version_reference"):
            ref = run["pipeline_version_reference"]
            version = self.rest.get("pipelines", ref.get("pipeline_id", ""),
                                    ref.get("pipeline_version_id", "")) or {}  # fmt: skip
            spec = version.get("pipeline_spec") or {}
        spec = spec.get("pipeline_spec", spec)  # a spec with a platform spec beside it
        return str((spec.get("pipelineInfo") or {}).get("name", ""))
