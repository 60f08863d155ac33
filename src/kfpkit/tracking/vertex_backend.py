"""Vertex AI: a pipeline job as a tracked run. ``kfpkit submit --target vertex`` makes every
job a run of a Vertex AI Experiment (``PipelineJob.submit(experiment=...)``), where Vertex AI
records its parameters and the metrics of its Metrics artifacts; this reads the same from
the job itself (``runtimeConfig.parameterValues`` and each task's output artifacts), so a
comparison needs one request per run."""

from __future__ import annotations

import re
from typing import Any

from kfpkit.runtime.deadline import check_timeout, deadline
from kfpkit.submit import DEFAULT_TIMEOUT
from kfpkit.submit.vertex import Vertex
from kfpkit.tracking.base import (
    CANCELLED,
    FAILED,
    RUNNING,
    SUCCEEDED,
    RunRecord,
    param_text,
    step_record,
)

STATES = {
    "PIPELINE_STATE_SUCCEEDED": SUCCEEDED,
    "PIPELINE_STATE_FAILED": FAILED,
    "PIPELINE_STATE_CANCELLED": CANCELLED,
    "PIPELINE_STATE_CANCELLING": CANCELLED,
}
_JOB = re.compile(r"(projects/[^/]+/locations/[^/]+/pipelineJobs/)?[a-z0-9][-a-z0-9]{0,127}\Z")


class VertexTracker:
    backend = "vertex"

    def __init__(self, target: Vertex, timeout: float = DEFAULT_TIMEOUT):
        self.target, self.timeout = target, check_timeout(timeout)

    def job_name(self, run: str) -> str:
        if not _JOB.match(run):
            raise ValueError(f"{run!r} is not a Vertex AI pipeline job id or resource name")
        if run.startswith("projects/"):
            return run
        return f"projects/{self.target.project}/locations/{self.target.location}/pipelineJobs/{run}"

    def get(self, run: str) -> RunRecord:
        name = self.job_name(run)
        with deadline(self.timeout, f"Vertex AI at {self.target.endpoint()}"):
            module = self.target.init()
            try:
                job = module.PipelineJob.get(resource_name=name)
            except Exception as e:  # noqa: BLE001 - the SDK's NotFound and the like
                if "404" in str(e) or "not found" in str(e).lower():
                    raise ValueError(f"no pipeline job {name!r} on Vertex AI") from None
                raise RuntimeError(f"Vertex AI: reading {name} failed: {e}") from e
            gca = job.gca_resource
            doc = type(gca).to_dict(gca, use_integers_for_enums=False)
        return job_record(doc)


def job_record(job: dict[str, Any]) -> RunRecord:
    """A PipelineJob (its REST resource, snake_case field names) as a run record."""
    parameters = dict((job.get("runtime_config") or {}).get("parameter_values") or {})
    spec = job.get("pipeline_spec") or {}
    declared = ((spec.get("root") or {}).get("inputDefinitions") or {}).get("parameters") or {}
    for name, value in parameters.items():  # JSON numbers come back as doubles
        kind = (declared.get(name) or {}).get("parameterType")
        if kind == "NUMBER_INTEGER" and isinstance(value, float) and value.is_integer():
            parameters[name] = int(value)
    record = RunRecord(
        run_id=str(job.get("name", "")),
        name=str(job.get("display_name", "")),
        pipeline=str((spec.get("pipelineInfo") or {}).get("name", "")),
        status=STATES.get(str(job.get("state", "")), RUNNING),
        params={k: param_text(v) for k, v in parameters.items()},
        backend="vertex",
    )
    for task in (job.get("job_detail") or {}).get("task_details") or []:
        outputs = {
            output: {"uri": a.get("uri", ""), "metadata": a.get("metadata") or {},
                     "type": {"schemaTitle": a.get("schema_title", "")}}
            for output, artifacts in (task.get("outputs") or {}).items()
            for a in (artifacts.get("artifacts") or [])[:1]
        }  # fmt: skip
        step_params, metrics, uris = step_record(str(task.get("task_name", "")), {}, outputs)
        record.params.update(step_params)
        record.metrics.update(metrics)
        record.artifacts.update(uris)
    return record
