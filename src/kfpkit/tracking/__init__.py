"""kfpkit's experiment tracking: every pipeline run's parameters, metrics and artifact URIs
in an experiment store, read back and compared side by side, one shape for three backends.

>>> from kfpkit.tracking import open_tracker, format_comparison
>>> tracker = open_tracker("mlflow", tracking_uri="local_outputs/registry/mlflow.db")
>>> print(format_comparison([tracker.get(a), tracker.get(b)]))

Backends (each imports its client only when opened): ``mlflow`` (MLflow tracking in the
registry's store; ``kfpkit run`` records every local run there), ``kubeflow`` (a KFP run,
in the experiment ``kfpkit submit --experiment`` put it in, through the v2beta1 REST API),
``vertex`` (a Vertex AI pipeline job, in the Vertex AI Experiment ``kfpkit submit
--experiment`` put it in, through google-cloud-aiplatform).
"""

from __future__ import annotations

from typing import Any

from kfpkit.tracking.base import (
    ABSENT,
    RunRecord,
    Tracker,
    comparison,
    format_comparison,
    step_record,
)

__all__ = [
    "ABSENT",
    "BACKENDS",
    "RunRecord",
    "Tracker",
    "comparison",
    "format_comparison",
    "open_tracker",
    "step_record",
]

BACKENDS = ("mlflow", "kubeflow", "vertex")


def open_tracker(
    backend: str, *, tracking_uri: str = "", target: Any = None, timeout: float = 120.0
) -> Tracker:
    """The experiment store of ``backend``: mlflow with ``tracking_uri`` (a path: SQLite
    there, as the registry's ``registry_uri``; or an MLflow URI); kubeflow with ``target``
    a :class:`kfpkit.submit.kubeflow.Kubeflow`; vertex with ``target`` a
    :class:`kfpkit.submit.vertex.Vertex`; ``timeout``: seconds for a remote store's
    answers."""
    if backend == "mlflow":
        from kfpkit.tracking.mlflow_backend import MlflowTracker

        return MlflowTracker(tracking_uri)
    if backend == "kubeflow":
        from kfpkit.tracking.kubeflow_backend import KubeflowTracker

        return KubeflowTracker(target, timeout=timeout)
    if backend == "vertex":
        from kfpkit.tracking.vertex_backend import VertexTracker

        return VertexTracker(target, timeout=timeout)
    raise ValueError(f"tracking backend {backend!r} is not one of {', '.join(BACKENDS)}")
