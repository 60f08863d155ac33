"""Vertex AI Pipelines through google-cloud-aiplatform (the ``vertex`` extra): a PipelineJob
from the compiled file, submitted and/or scheduled (``create_schedule``).

Credentials are Application Default Credentials unless given (tests pass anonymous ones);
``api_endpoint`` points the SDK elsewhere (tests: a local server, with ``api_transport="rest"``).
The template is read from the local file (nothing is uploaded for it) and ``pipeline_root``
must be given (gs://...), so the SDK never invents a bucket. The SDK's own set-up of that
bucket (create it when missing, grant the run's service account roles on it, check it
belongs to the project) is skipped: it looks up the project number through Cloud Resource
Manager, which without ``--service-account`` (and for every existing bucket) retried for 60 s
and printed a traceback. kfpkit needs none of it: the bucket must exist, and Vertex AI itself
refuses a job whose service account cannot use it. Every call runs under a total deadline
(``timeout``): an endpoint that accepts the connection and never answers fails in bounded time.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfpkit import cron as cron_syntax
from kfpkit import targets
from kfpkit.runtime.deadline import DeadlineExceeded, check_timeout, deadline
from kfpkit.submit import DEFAULT_TIMEOUT, check_reachable, pipeline_spec

_LABEL = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_JOB_ID = re.compile(r"^[a-z][-a-z0-9]{0,127}$")
_EXPERIMENT = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")  # a Vertex AI Metadata context id
_REGION = re.compile(r"^[a-z]+(-[a-z]+)+[0-9]+$")  # us-central1, northamerica-northeast1


def aiplatform():  # type: ignore[no-untyped-def]
    """The google.cloud.aiplatform module, or an error saying which extra installs it."""
    try:
        from google.cloud import aiplatform as module
    except ImportError as e:
        raise RuntimeError(
            f"Vertex AI needs google-cloud-aiplatform: pip install 'kfpkit[vertex]' ({e})"
        ) from None
    return module


@dataclass(frozen=True)
class Vertex:
    """Which project and region, and how to reach Vertex AI."""

    project: str
    location: str = "us-central1"
    api_endpoint: str = ""  # default https://{location}-aiplatform.googleapis.com
    credentials: Any = None  # default: Application Default Credentials
    api_transport: str = ""  # "rest" or "grpc"; default the SDK's (grpc), rest for http://

    def __post_init__(self) -> None:
        # aiplatform.init(location="") silently becomes us-central1
        if not isinstance(self.location, str) or not _REGION.match(self.location):
            raise ValueError(
                f"location must be a Vertex AI region such as 'us-central1' or "
                f"'europe-west4', not {self.location!r}"
            )

    def endpoint(self) -> str:
        return self.api_endpoint or f"https://{self.location}-aiplatform.googleapis.com"

    def init(self) -> Any:
        if not self.project:
            raise ValueError("Vertex AI needs a project (--project or $GOOGLE_CLOUD_PROJECT)")
        check_reachable(self.endpoint(), "Vertex AI")
        module = aiplatform()
        kwargs: dict[str, Any] = {"project": self.project, "location": self.location}
        if self.api_endpoint:
            kwargs["api_endpoint"] = self.api_endpoint
        if self.credentials is not None:
            kwargs["credentials"] = self.credentials
        # an http:// endpoint (a local server) can only be spoken to over REST
        transport = self.api_transport or (
            "rest" if self.api_endpoint.startswith("http://") else ""
        )
        if transport:
            kwargs["api_transport"] = transport
        module.init(**kwargs)
        return module


@contextlib.contextmanager
def _without_bucket_setup(module: Any) -> Iterator[None]:
    """PipelineJob.submit without the SDK's set-up of the pipeline root's bucket (see the
    module's docstring); the SDK's function is put back afterwards."""
    gcs_utils = getattr(module.pipeline_jobs, "gcs_utils", None)
    name = "create_gcs_bucket_for_pipeline_artifacts_if_it_does_not_exist"
    original = getattr(gcs_utils, name, None)
    if original is None:  # another SDK version: nothing of this kind to skip
        yield
        return
    setattr(gcs_utils, name, lambda **_: None)
    try:
        yield
    finally:
        setattr(gcs_utils, name, original)


@contextlib.contextmanager
def _sdk_error_causes() -> Iterator[None]:
    """The SDK turns whatever its experiment calls raised into "Experiment ... could not be
    found or created": a missed deadline is raised as itself, any other cause is named."""
    try:
        yield
    except RuntimeError as e:
        cause = e.__cause__
        while cause is not None and not isinstance(cause, DeadlineExceeded):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise cause from None
        if e.__cause__ is not None:
            raise RuntimeError(f"{e}: {e.__cause__}") from e.__cause__
        raise


@dataclass
class VertexSubmission:
    job_name: str = ""  # projects/.../pipelineJobs/<id>, when submitted
    schedule_name: str = ""  # projects/.../schedules/<id>, when scheduled
    cron: str = ""  # what Vertex received
    parameters: dict[str, Any] | None = None
    experiment: str = ""  # the Vertex AI Experiment the job is a run of


def _check_labels(labels: dict[str, str]) -> None:
    for key, value in labels.items():
        if not _LABEL.match(key) or not isinstance(value, str) or not _LABEL_VALUE.match(value):
            raise ValueError(
                f"label {key}={value!r} is not a Vertex AI label (lower-case letters, digits, "
                f"_ and -; keys start with a letter; at most 63 characters)"
            )


def submit(
    compiled: str | Path,
    target: Vertex,
    *,
    pipeline_root: str,
    params: dict[str, Any] | None = None,
    cli_params: list[str] | None = None,
    display_name: str = "",
    job_id: str = "",
    enable_caching: bool | None = None,
    labels: dict[str, str] | None = None,
    service_account: str = "",
    network: str = "",
    cron: str = "",
    max_concurrent_run_count: int = 1,
    max_run_count: int | None = None,
    run: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    experiment: str = "",
) -> VertexSubmission:
    """Submits a PipelineJob (``run``) and, with ``cron``, a schedule of it, all within
    ``timeout`` seconds (RuntimeError after it).

    The job is a run of the Vertex AI Experiment ``experiment`` (created when missing;
    default: the pipeline's name), which records its parameters and the metrics of its
    Metrics artifacts, as Vertex AI records them (``kfpkit runs compare --target vertex``).

    Checked before the first request: the file (and that it was not compiled for Kubeflow),
    parameters, cron, labels, pipeline root, timeout (ValueError), the endpoint (RuntimeError).
    """
    pipeline = pipeline_spec.load(compiled)
    targets.check_compiled_for(pipeline.spec, "vertex", str(pipeline.path))
    values = pipeline_spec.parameter_values(pipeline, params, cli_params)
    vertex_cron = cron_syntax.parse(cron).vertex() if cron else ""
    if not pipeline_root.startswith("gs://"):
        raise ValueError(f"Vertex AI needs a gs:// pipeline_root, not {pipeline_root!r}")
    if job_id and not _JOB_ID.match(job_id):
        raise ValueError(f"job_id {job_id!r} must match {_JOB_ID.pattern}")
    experiment = experiment or pipeline.name
    if not _EXPERIMENT.match(experiment):
        raise ValueError(
            f"experiment {experiment!r} is not a Vertex AI Experiment name (lower-case "
            f"letters, digits and -, at most 128: {_EXPERIMENT.pattern})"
        )
    _check_labels(labels or {})
    if max_concurrent_run_count < 1:
        raise ValueError(f"max_concurrent_run_count must be >= 1, not {max_concurrent_run_count}")
    if max_run_count is not None and max_run_count < 1:
        raise ValueError(f"max_run_count must be >= 1, not {max_run_count}")
    if not run and not cron:
        raise ValueError("nothing to do: neither a run nor a schedule (cron) was asked for")
    with deadline(check_timeout(timeout), f"Vertex AI at {target.endpoint()}"):
        return _submit(target, pipeline, values, vertex_cron, pipeline_root, display_name,
                       job_id, enable_caching, labels, service_account, network,
                       max_concurrent_run_count, max_run_count, run, experiment)  # fmt: skip


def _submit(target: Vertex, pipeline: pipeline_spec.CompiledPipeline, values: dict[str, Any],
            vertex_cron: str, pipeline_root: str, display_name: str, job_id: str,
            enable_caching: bool | None, labels: dict[str, str] | None, service_account: str,
            network: str, max_concurrent_run_count: int, max_run_count: int | None,
            run: bool, experiment: str) -> VertexSubmission:  # fmt: skip
    module = target.init()
    job = module.PipelineJob(
        display_name=display_name or pipeline.name,
        template_path=str(pipeline.path),
        job_id=job_id or None,
        pipeline_root=pipeline_root,
        parameter_values=values,
        enable_caching=enable_caching,
        labels=labels or None,
    )
    result = VertexSubmission(parameters=values)
    if run:
        with _without_bucket_setup(module), _sdk_error_causes():
            job.submit(service_account=service_account or None, network=network or None,
                       experiment=experiment)  # fmt: skip
        result.job_name = job.resource_name
        result.experiment = experiment
    if vertex_cron:
        schedule = job.create_schedule(
            cron=vertex_cron,
            display_name=f"{display_name or pipeline.name}-schedule",
            max_concurrent_run_count=max_concurrent_run_count,
            max_run_count=max_run_count,
            service_account=service_account or None,
            network=network or None,
        )
        result.schedule_name = schedule.resource_name
        result.cron = vertex_cron
    return result


def list_runs(
    target: Vertex, limit: int = 20, timeout: float = DEFAULT_TIMEOUT
) -> list[dict[str, str]]:
    """The newest pipeline jobs of the project and region: id, name, state, created; within
    ``timeout`` seconds (RuntimeError after it)."""
    with deadline(check_timeout(timeout), f"Vertex AI at {target.endpoint()}"):
        module = target.init()
        jobs = module.PipelineJob.list(order_by="create_time desc")[:limit]
    return [
        {
            "id": job.resource_name,
            "name": job.display_name,
            "state": job.state.name if job.state is not None else "",
            "created": str(job.create_time or ""),
        }
        for job in jobs
    ]
