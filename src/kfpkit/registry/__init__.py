"""kfpkit's model registry API, one shape for three backends.

>>> from kfpkit.registry import open_registry, CHAMPION
>>> registry = open_registry("mlflow", registry_uri="local_outputs/registry/mlflow.db")
>>> production = registry.get_by_alias("employment", CHAMPION)  # None before the first
>>> production.uri, production.created_at, production.lineage["statistics_uri"]

Backends (each imports its client only when opened): ``mlflow`` (MLflow's model registry;
SQLite by default, no server), ``vertex`` (Vertex AI Model Registry through its REST API,
``kfpkit.vertex_api``), ``kubeflow`` (Kubeflow Model Registry through its REST client).
"""

from __future__ import annotations

from typing import Any

from kfpkit.registry.base import (
    BACKENDS,
    CHALLENGER,
    CHAMPION,
    ModelVersion,
    Registry,
)

__all__ = ["BACKENDS", "CHALLENGER", "CHAMPION", "ModelVersion", "Registry", "open_registry"]


def open_registry(
    backend: str,
    *,
    registry_uri: str = "",
    project: str = "",
    location: str = "",
    api_endpoint: str = "",
    serving_image: str = "",
    server_address: str = "",
    credentials: Any = None,
) -> Registry:
    """The registry of ``backend`` with its settings.

    mlflow: ``registry_uri`` (a path: SQLite there; or ``sqlite:///...``, a database URI or
    an MLflow server). vertex: ``project``, ``location``, optional ``api_endpoint`` (REST; for
    tests or private endpoints), ``serving_image`` and ``credentials``. kubeflow:
    ``server_address`` (``http(s)://host:port`` of the Model Registry's REST API).
    """
    if backend == "mlflow":
        from kfpkit.registry.mlflow_backend import MlflowRegistry

        return MlflowRegistry(registry_uri)
    if backend == "vertex":
        from kfpkit.registry.vertex_backend import (
            DEFAULT_SERVING_IMAGE,
            VertexRegistry,
        )

        return VertexRegistry(
            project,
            location,
            serving_image=serving_image or DEFAULT_SERVING_IMAGE,
            api_endpoint=api_endpoint,
            credentials=credentials,
        )
    if backend == "kubeflow":
        from kfpkit.registry.kubeflow_backend import KubeflowRegistry

        return KubeflowRegistry(server_address)
    raise ValueError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
