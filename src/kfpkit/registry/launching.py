"""What the registry components' launchers share: the backend settings they all take, and
the artifact a model version is written to."""

from __future__ import annotations

import json
import os

from kfpkit.registry import open_registry
from kfpkit.registry.base import ModelVersion, Registry
from kfpkit.runtime.executor import Artifact, Executor

VERSION_FILE = "model_version.json"


def registry_from(executor: Executor) -> Registry:
    """The registry the step's parameters name (``backend`` and that backend's settings)."""
    return open_registry(
        executor.param("backend", "mlflow"),
        registry_uri=executor.param("registry_uri", ""),
        project=executor.param("project", ""),
        location=executor.param("location", ""),
        api_endpoint=executor.param("api_endpoint", ""),
        serving_image=executor.param("serving_image", ""),
        server_address=executor.param("server_address", ""),
    )


def write_version(artifact: Artifact, version: ModelVersion | None, **extra: object) -> None:
    """The version (or ``found: false``) in the artifact's metadata and as JSON in it."""
    doc: dict[str, object] = {"found": False}
    if version is not None:
        doc = {"found": True, **version.to_metadata()}
    doc.update(extra)
    artifact.metadata.update(doc)
    os.makedirs(artifact.path, exist_ok=True)
    with open(os.path.join(artifact.path, VERSION_FILE), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
