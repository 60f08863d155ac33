"""Launcher of trigger_pipeline: starts (or finds) one run of a compiled pipeline.

Run inside the core image as
``python3 -m kfpkit.components.trigger_pipeline.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

from kfpkit.components.trigger_pipeline.trigger import Target, trigger
from kfpkit.runtime.executor import (
    Executor,
    main,
    uri_to_path,
    write_json_artifact,
)
from kfpkit.runtime.identity import executor_identity

RUN_FILE = "run.json"


def run(executor: Executor) -> None:
    uri = executor.param("pipeline_spec_uri", "")
    if not uri:
        raise ValueError("pipeline_spec_uri is required: the compiled pipeline's path or gs:// URI")
    target = Target(
        kind=executor.param("target", Target.kind),
        host=executor.param("host", ""),
        namespace=executor.param("namespace", ""),
        experiment=executor.param("experiment", ""),
        project=executor.param("project", ""),
        location=executor.param("location", Target.location),
        api_endpoint=executor.param("api_endpoint", ""),
        pipeline_root=executor.param("pipeline_root", ""),
        service_account=executor.param("service_account", ""),
    )
    # KFP passes the component's declared ``enabled``; an input without one leaves trigger's
    enabled = executor.param("enabled")
    options = {} if enabled is None else {"enabled": bool(enabled)}
    outcome = trigger(
        uri_to_path(uri),
        target,
        executor.json_param("parameters", {}) or {},
        executor_identity(executor.raw),
        name_prefix=executor.param("run_name", ""),
        reason=executor.param("reason", ""),
        **options,
    )
    doc = outcome.to_dict()
    write_json_artifact(executor.output("triggered_run"), RUN_FILE, doc)
    executor.set_output_param("triggered", outcome.triggered)
    executor.set_output_param("run_id", outcome.run_id)


if __name__ == "__main__":
    main(run)
