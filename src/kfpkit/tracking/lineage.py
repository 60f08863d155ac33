"""Lineage from a registered model back: which run, data window, statistics, hyperparameters
and evaluation produced it (``kfpkit models lineage NAME[:VERSION]``).

The registry's own record of the version answers it (register_model writes the run, the
data, the statistics, the schema, the hyperparameters and the evaluation's metrics on every
version); with MLflow, the run that registered it is also in the same store's tracking (its
pipeline parameters, e.g. a continuous-training ``window``), found by its name.
"""

from __future__ import annotations

import json
from typing import Any

from kfpkit.registry import CHAMPION, Registry, base
from kfpkit.tracking.base import RunRecord, Tracker


def parse_reference(reference: str) -> tuple[str, str]:
    """``NAME[:VERSION]`` -> (name, version or ''); ValueError naming a bad one."""
    name, _, version = reference.partition(":")
    base.check_model_name(name)
    if ":" in reference and not version:
        raise ValueError(f"{reference!r}: give NAME or NAME:VERSION")
    return name, version


def find_version(registry: Registry, name: str, version: str = "") -> base.ModelVersion:
    """The version asked for; without one the champion, else the newest. ValueError naming
    the model and the versions there are when it is not registered."""
    versions = registry.list_versions(name)
    if not versions:
        raise ValueError(f"model {name!r} has no registered version")
    if version:
        for found in versions:
            if found.version == version:
                return found
        raise ValueError(f"model {name!r} has no version {version!r} (versions: "
                         f"{', '.join(v.version for v in versions)})")  # fmt: skip
    champion = [v for v in versions if CHAMPION in v.aliases]
    return champion[-1] if champion else versions[-1]


def lineage(version: base.ModelVersion, tracker: Tracker | None = None) -> dict[str, Any]:
    """What produced ``version``, as a JSON-ready document; with ``tracker``, the tracked
    run of its ``pipeline_run`` (None when the store has no such run)."""
    facts = dict(version.lineage)
    hyperparameters: Any = facts.get(base.HYPERPARAMETERS, "")
    if hyperparameters:
        hyperparameters = json.loads(hyperparameters)
    run: RunRecord | None = None
    run_name = facts.get(base.PIPELINE_RUN, "")
    if tracker is not None and run_name:
        try:
            run = tracker.get(run_name)
        except ValueError:
            run = None
    if not hyperparameters and run is not None:  # older registrations: from the run
        prefix = "train/hyperparameters/"
        hyperparameters = {k[len(prefix) :]: v for k, v in run.params.items()
                           if k.startswith(prefix)}  # fmt: skip
    return {
        "model": {"name": version.name, "version": version.version, "uri": version.uri,
                  "aliases": list(version.aliases), "created_at": version.created_at.isoformat(),
                  "backend": version.backend, "resource_name": version.resource_name},
        "run": {"name": run_name, "id": facts.get(base.PIPELINE_RUN_ID, ""),
                "tracked": None if run is None else {
                    "run_id": run.run_id, "status": run.status, "experiment": run.experiment,
                    "pipeline": run.pipeline,
                    "parameters": {k: v for k, v in run.params.items() if "/" not in k}}},
        "data": {"source": facts.get(base.TRAIN_DATA_SOURCE, ""),
                 "table": facts.get(base.TRAIN_DATA_TABLE, ""),
                 "train_rows": facts.get(base.TRAIN_DATA_ROWS, ""),
                 "train_uri": facts.get(base.TRAIN_DATA_URI, ""),
                 "validation_uri": facts.get(base.VALIDATION_DATA_URI, "")},
        "statistics": {"statistics_uri": facts.get(base.STATISTICS_URI, ""),
                       "schema_uri": facts.get(base.SCHEMA_URI, "")},
        "hyperparameters": hyperparameters or {},
        "evaluation": {"blessed": facts.get(base.BLESSED, ""),
                       "metrics_uri": facts.get(base.METRICS_URI, ""),
                       "metrics": dict(version.metrics)},
    }  # fmt: skip


def format_lineage(doc: dict[str, Any]) -> str:
    """The document as a few readable lines; '-' for what the registry did not record."""

    def show(value: Any) -> str:
        return str(value) if value not in ("", None, {}, []) else "-"

    model, run, data = doc["model"], doc["run"], doc["data"]
    stats, evaluation = doc["statistics"], doc["evaluation"]
    lines = [
        f"model {model['name']} version {model['version']}"
        + (f" ({', '.join(model['aliases'])})" if model["aliases"] else "")
        + f", registered {model['created_at']} in {model['backend']}: {model['uri']}",
        f"run: {show(run['name'])} (id {show(run['id'])})",
    ]
    tracked = run["tracked"]
    if tracked:
        lines.append(f"  tracked: {tracked['run_id']} {tracked['status']} in experiment "
                     f"{tracked['experiment']!r}")  # fmt: skip
        params = tracked["parameters"]
        if params:
            lines.append(
                "  parameters: " + ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
            )
    lines += [
        f"data window: {show(data['source'] or data['table'])}, {show(data['train_rows'])} "
        f"training rows",
        f"  train split: {show(data['train_uri'])}",
        f"  validation split: {show(data['validation_uri'])}",
        f"statistics: {show(stats['statistics_uri'])}",
        f"schema: {show(stats['schema_uri'])}",
        "hyperparameters: "
        + (", ".join(f"{k}={v}" for k, v in sorted(doc["hyperparameters"].items())) or "-"),
        f"evaluation: blessed={show(evaluation['blessed'])}, metrics "
        f"{show(evaluation['metrics_uri'])}",
    ]  # fmt: skip
    metrics = evaluation["metrics"]
    if metrics:
        lines.append("  " + ", ".join(f"{k}={v:.6g}" for k, v in sorted(metrics.items())))
    return "\n".join(lines)
