"""Vertex AI pipeline jobs over the v1 REST API (kfpkit.vertex_api), without the SDK.

For code that runs inside a pipeline step (trigger_pipeline), whose images hold no
google-cloud-aiplatform: a job is created from the compiled pipeline spec inline (nothing is
uploaded) under a caller-chosen job id, or found again by that id. The request is the one
``kfpkit submit --target vertex`` (the SDK's PipelineJob) sends for the same file, parameters
and pipeline root (components/trigger_pipeline/tests compares the two).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kfpkit import targets
from kfpkit.runtime.retry import is_connection_error, retry
from kfpkit.submit.pipeline_spec import CompiledPipeline
from kfpkit.vertex_api import VertexApi


def _is_transient(error: BaseException) -> bool:
    from google.api_core import exceptions as e

    transient = (e.ServiceUnavailable, e.TooManyRequests, e.InternalServerError,
                 e.DeadlineExceeded, e.BadGateway, e.GatewayTimeout)  # fmt: skip
    return isinstance(error, transient) or is_connection_error(error)


@dataclass(frozen=True)
class Job:
    name: str  # projects/<p>/locations/<l>/pipelineJobs/<id>
    created: bool  # False: a job of that id existed already


def job_body(pipeline: CompiledPipeline, values: dict[str, Any], pipeline_root: str,
             display_name: str, service_account: str = "") -> dict[str, Any]:  # fmt: skip
    """The PipelineJob resource for ``pipeline`` with checked parameter ``values``;
    ValueError for a file compiled for Kubeflow (as ``kfpkit submit`` refuses it)."""
    targets.check_compiled_for(pipeline.spec, "vertex", str(pipeline.path))
    job: dict[str, Any] = {
        "displayName": display_name,
        "pipelineSpec": pipeline.spec,
        "runtimeConfig": {
            "gcsOutputDirectory": pipeline_root,
            "parameterValues": {k: v for k, v in values.items() if v is not None},
        },
    }
    if service_account:
        job["serviceAccount"] = service_account
    return job


class VertexJobs:
    """Pipeline jobs of one project and region; each request retried when transient."""

    def __init__(self, api: VertexApi, attempts: int = 5):
        self.api, self.attempts = api, attempts

    def _call(self, fn: Any, what: str) -> Any:
        return retry(fn, _is_transient, attempts=self.attempts, what=f"Vertex AI: {what}",
                     sleep=self.api.sleep)  # fmt: skip

    def get(self, job_id: str) -> str | None:
        """The job's resource name, None when there is no job of that id."""
        from google.api_core import exceptions

        name = f"{self.api.parent}/pipelineJobs/{job_id}"
        try:
            return str(self._call(lambda: self.api.call("GET", name), f"get {job_id}")["name"])
        except exceptions.NotFound:
            return None

    def start(self, job_id: str, body: dict[str, Any]) -> Job:
        """Creates the job ``job_id``, or finds it when an earlier attempt created it."""
        from google.api_core import exceptions

        found = self.get(job_id)
        if found:
            return Job(found, created=False)
        path = f"{self.api.parent}/pipelineJobs"
        try:
            created = self._call(
                lambda: self.api.call("POST", path, params={"pipelineJobId": job_id}, body=body),
                f"create {job_id}",
            )
        except exceptions.AlreadyExists:  # another attempt created it meanwhile
            return Job(self.get(job_id) or f"{path}/{job_id}", created=False)
        return Job(str(created["name"]), created=True)
