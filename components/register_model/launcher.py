"""Launcher of register_model: registers a model version with its lineage and metrics.

Run inside the core image as
``python3 -m kfpkit.components.register_model.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

import logging

from kfpkit.components.register_model.registration import parse_bool, registration_from
from kfpkit.registry.launching import registry_from, write_version
from kfpkit.runtime.executor import Executor, main

_log = logging.getLogger("kfpkit")
OPTIONAL_INPUTS = ("train_data", "validation_data", "statistics", "schema")


def run(executor: Executor) -> None:
    registration = registration_from(
        model_name=executor.param("model_name", ""),
        model=executor.required_input("model"),
        metrics=executor.required_input("metrics"),
        blessed=parse_bool("blessed", executor.param("blessed", False)),
        optional_inputs={name: executor.input(name) for name in OPTIONAL_INPUTS},
        pipeline_run=executor.param("pipeline_run", ""),
        pipeline_run_id=executor.param("pipeline_run_id", ""),
    )
    registry = registry_from(executor)
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


if __name__ == "__main__":
    main(run)
