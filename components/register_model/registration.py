"""What register_model registers: the model's URI, its lineage and its metrics, taken from
the step's input artifacts (pure: no registry calls here)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kfpkit.registry import base
from kfpkit.runtime.executor import Artifact, path_to_uri
from kfpkit.runtime.model_versions import latest_version_dir


@dataclass(frozen=True)
class Registration:
    name: str
    uri: str
    lineage: dict[str, str]
    metrics: dict[str, float]
    aliases: tuple[str, ...] = field(default=())


def model_uri(model: Artifact) -> str:
    """The SavedModel folder a registry points at: publish_model's published version, or the
    highest ``<version>/`` folder of train's model (Vertex serves a folder that holds
    ``saved_model.pb`` itself)."""
    published = model.metadata.get("published_uri")
    if published:
        return str(published).rstrip("/")
    return path_to_uri(latest_version_dir(model.path)).rstrip("/")


def parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"{name} must be true or false, not {value!r}")


def registration_from(
    model_name: str,
    model: Artifact,
    metrics: Artifact,
    blessed: bool,
    optional_inputs: Mapping[str, Artifact | None],
    pipeline_run: str = "",
    pipeline_run_id: str = "",
) -> Registration:
    """A blessed model becomes the ``champion`` (the one in production); one that was not is
    registered too, as the ``challenger``: its lineage and metrics stay on record."""
    base.check_model_name(model_name)
    lineage: dict[str, Any] = {
        base.PIPELINE_RUN: pipeline_run,
        base.PIPELINE_RUN_ID: pipeline_run_id,
        base.SOURCE_MODEL_URI: model.uri,
        base.METRICS_URI: metrics.uri,
        base.BLESSED: "true" if blessed else "false",
    }
    keys = {"train_data": base.TRAIN_DATA_URI, "validation_data": base.VALIDATION_DATA_URI,
            "statistics": base.STATISTICS_URI, "schema": base.SCHEMA_URI}  # fmt: skip
    for input_name, lineage_key in keys.items():
        artifact = optional_inputs.get(input_name)
        if artifact is not None:
            lineage[lineage_key] = artifact.uri
    train = optional_inputs.get("train_data")
    if train is not None and train.metadata.get("table_id"):
        lineage[base.TRAIN_DATA_TABLE] = train.metadata["table_id"]
    if train is not None:  # the data window: what the split read, and how many rows trained
        lineage[base.TRAIN_DATA_SOURCE] = train.metadata.get("source", "")
        rows = train.metadata.get("row_count", "")  # a double once it crossed KFP's Struct
        lineage[base.TRAIN_DATA_ROWS] = int(rows) if isinstance(rows, float) else rows
    # train's model carries its hyperparameters; publish_model's carries them on
    hyperparameters = model.metadata.get("hyperparameters")
    if isinstance(hyperparameters, dict):
        lineage[base.HYPERPARAMETERS] = json.dumps(hyperparameters, sort_keys=True)
    if not os.path.lexists(model.path):
        raise ValueError(f"model artifact {model.uri!r} does not exist")
    return Registration(
        name=model_name,
        uri=model_uri(model),
        lineage=base.check_lineage(lineage),
        metrics=base.scalar_metrics(metrics.metadata),
        aliases=(base.CHAMPION if blessed else base.CHALLENGER,),
    )
