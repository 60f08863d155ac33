"""Publishes a SavedModel into a versioned serving directory, the layout KServe serves from.

``<destination>/<version>/saved_model.pb``: TensorFlow Serving (KServe's TensorFlow runtime)
serves the highest numbered version under the base path, so a new model gets the next
number. The copy goes to a hidden temporary folder first and is renamed into place, so a
reader never sees a half-copied version, and a version records where it came from, so a
restarted step finds its own earlier publication instead of publishing the model twice.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass

from kfpkit.runtime.model_versions import latest_version_dir, versions

SOURCE_RECORD = "kfpkit-source.json"
_TMP_PREFIX = ".kfpkit-tmp-"


@dataclass(frozen=True)
class Published:
    path: str
    version: int
    reused: bool


def _source_of(version_dir: str) -> str | None:
    try:
        with open(os.path.join(version_dir, SOURCE_RECORD), encoding="utf-8") as f:
            return json.load(f).get("source")
    except (OSError, ValueError):
        return None


def publish(model_uri: str, model_path: str, destination: str) -> Published:
    """Copies the model's latest version to ``destination/<next version>``."""
    if not destination:
        raise ValueError("destination is empty: give the serving model directory")
    if os.path.exists(destination) and not os.path.isdir(destination):
        raise ValueError(f"destination {destination!r} exists and is not a directory")
    source = latest_version_dir(model_path)
    existing = versions(destination)
    source_id = f"{model_uri.rstrip('/')}/{os.path.basename(source)}"
    if existing:
        latest = os.path.join(destination, str(existing[-1]))
        if _source_of(latest) == source_id:
            return Published(latest, existing[-1], reused=True)
    version = (existing[-1] if existing else 0) + 1
    os.makedirs(destination, exist_ok=True)
    tmp = os.path.join(destination, f"{_TMP_PREFIX}{version}-{uuid.uuid4().hex[:8]}")
    try:
        shutil.copytree(source, tmp)
        with open(os.path.join(tmp, SOURCE_RECORD), "w", encoding="utf-8") as f:
            json.dump({"source": source_id}, f)
        target = os.path.join(destination, str(version))
        try:
            os.rename(tmp, target)
        except OSError as e:  # another publisher took this number meanwhile
            raise RuntimeError(f"could not publish {target!r}: {e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Published(target, version, reused=False)
