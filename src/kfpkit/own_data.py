"""``kfpkit run training --local --data PATH --label COLUMN [--key COLUMN ...]``: the training
pipeline on a user's own Parquet or CSV data, with no BigQuery and no emulator.

The split step's embedded engine splits the data as BigQuery would (bigquery_split with a
path as its source). Before Docker starts, the data is checked (the path, its files and their
schemas, the key and label columns, at least one row, and the label's values: only the label
column is read, in batches, about a second for 10M Parquet rows), so a wrong path or column
name, or a label that is constant or has a third value, exits 2 at once, naming it. A local
path is mounted read-only, at the same path, into each step's container (kfp.local mounts
only the pipeline root).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

# The training pipeline's demo defaults that name the demo's own columns.
DEMO_KEY = ["id"]
_MODEL_NAME_RE = re.compile(r"[^a-z0-9]+")


def model_name(data: str) -> str:
    """A served model name from the data's file or folder name (letters, digits, '-')."""
    stem = Path(data.rstrip("/")).name.split(".")[0]
    return _MODEL_NAME_RE.sub("-", stem.lower()).strip("-")[:40] or "model"


def data_source(data: str) -> str:
    """The source as the split step takes it: an absolute path, or the gs:// URI."""
    if data.startswith("gs://"):
        return data
    if "://" in data and not data.startswith("file://"):
        raise ValueError(f"--data must be a path or a gs:// URI, got {data!r}")
    path = os.path.abspath(data.removeprefix("file://"))
    if not os.path.exists(path):
        raise ValueError(f"--data {data!r} does not exist")
    return path


def arguments(
    data: str, label: str, keys: list[str], root: Path, params: dict[str, Any]
) -> dict[str, Any]:
    """The training pipeline's arguments for a run on ``data``; ``params`` (``--param``)
    override them. Checks the data first (ValueError naming the bad value)."""
    from kfpkit.splitting.data import check_source

    if not label:
        raise ValueError("--data needs --label COLUMN: the binary label to train on")
    source = data_source(data)
    key_columns = keys or params.get("key_columns") or DEMO_KEY
    try:
        check_source(source, key_columns, label)
    except ValueError as e:
        hint = "" if keys else " (no --key given: the key defaults to 'id'; pass --key COLUMN)"
        raise ValueError(f"{e}{hint}") from e
    name = str(params.get("serving_model_name") or model_name(source))
    return {
        "source_table": source,
        "label_column": label,
        "key_columns": key_columns,
        "exclude_columns": key_columns,  # keys identify rows; they are not features
        "slice_columns": [],  # the demo's slices (SEX, year) are not in a user's data
        "serving_model_name": name,
        # under the pipeline root: the only host folder the step containers see
        "serving_model_uri": str(root.absolute() / "serving" / name),
        **params,
    }


def docker_args(source: str) -> dict[str, Any]:
    """kfp.local DockerRunner arguments that let the steps read a local ``source``."""
    if source.startswith("gs://"):
        return {}
    from docker.types import Mount

    return {"mounts": [Mount(target=source, source=source, type="bind", read_only=True)]}
