"""Launcher of register_model: registers a model version with its lineage and metrics.

Run inside the core image as
``python3 -m kfpkit.components.register_model.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from kfpkit.components.register_model.registration import parse_bool, registration_from
from kfpkit.explain.vertex import explanation_spec
from kfpkit.registry.launching import registry_from, write_version
from kfpkit.registry.vertex_backend import VertexRegistry
from kfpkit.runtime.executor import Artifact, Executor, main

_log = logging.getLogger("kfpkit")
OPTIONAL_INPUTS = ("train_data", "validation_data", "statistics", "schema")


def run(executor: Executor) -> None:
    registration = registration_from(
        model_name=executor.param("model_name", ""),
        model=executor.required_input("model"),
        metrics=executor.required_input("metrics"),
        blessed=parse_bool("blessed", executor.param("blessed")),  # KFP passes its default
        optional_inputs={name: executor.input(name) for name in OPTIONAL_INPUTS},
        pipeline_run=executor.param("pipeline_run", ""),
        pipeline_run_id=executor.param("pipeline_run_id", ""),
    )
    registry = registry_from(executor)
    explanation = executor.input("explanation")
    if explanation is not None and explanation.uri:
        spec = vertex_explanation(explanation)
        if isinstance(registry, VertexRegistry) and spec is not None:
            registry.explanation_spec = spec  # Vertex AI explains on an endpoint as evaluate did
    version = registry.register(
        registration.name,
        registration.uri,
        registration.lineage,
        registration.metrics,
        registration.aliases,
    )
    _log.info(
        "Registered %s version %s (%s) at %s with aliases %s",
        version.name, version.version, version.backend, version.uri, ", ".join(version.aliases),
    )  # fmt: skip
    write_version(executor.output("registered_model"), version)
    executor.set_output_param("registered_version", version.version)


def vertex_explanation(artifact: Artifact) -> dict[str, Any] | None:
    """Vertex AI's explanationSpec from evaluate's ``explanation`` artifact; None when evaluate
    computed no attributions (explain_rows 0); ValueError for an unreadable artifact."""
    path = os.path.join(artifact.path, "explanation.json")
    try:
        with open(path, encoding="utf-8") as f:
            summary = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"explanation {artifact.uri!r}: no readable explanation.json: {e}") from e
    if not summary.get("rows"):
        _log.info("explanation: evaluate computed no attributions; no explanation spec")
        return None
    return explanation_spec(summary, f"explanation {artifact.uri!r}")


if __name__ == "__main__":
    main(run)
