"""Kubeflow Pipelines through kfp.Client: pipeline and version, experiment, run, recurring run.

Authentication, first that applies: ``token`` (or ``$KF_PIPELINES_TOKEN``) sent as a bearer
token; the pod's projected KFP service-account token (``$KF_PIPELINES_SA_TOKEN_PATH``, default
``/var/run/secrets/kubeflow/pipelines/token``) when present; otherwise kfp.Client's own rules:
``host`` (or ``$KF_PIPELINES_ENDPOINT``) as is, e.g. a port-forward, or, without a host, the
in-cluster service or the kubeconfig's ``kube_context`` through the API server's proxy.

Idempotent by content: the pipeline is found by name (uploaded when missing) and the version
is named after the file's sha256 (``<name>-<12 hex>``), so submitting the same file again reuses
its version and a changed file adds a new version to the same pipeline. A schedule submitted
again (same name, version and cron) is found instead of doubled; a different one of the same
name is refused.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kfpkit import cron as cron_syntax
from kfpkit import targets
from kfpkit.runtime.deadline import check_timeout, deadline
from kfpkit.submit import DEFAULT_TIMEOUT, pipeline_spec

TOKEN_ENV = "KF_PIPELINES_TOKEN"
SA_TOKEN_PATH_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
SA_TOKEN_PATH = "/var/run/secrets/kubeflow/pipelines/token"


@dataclass(frozen=True)
class Kubeflow:
    """Where and as whom to reach Kubeflow Pipelines."""

    host: str = ""  # default $KF_PIPELINES_ENDPOINT; empty: in-cluster or kubeconfig
    token: str = ""  # default $KF_PIPELINES_TOKEN
    namespace: str = ""  # multi-user deployments: the profile namespace
    kube_context: str = ""

    def resolved_host(self) -> str:
        return (self.host or os.environ.get("KF_PIPELINES_ENDPOINT", "")).rstrip("/")

    def resolved_token(self) -> str:
        if self.token or os.environ.get(TOKEN_ENV):
            return self.token or os.environ[TOKEN_ENV]
        sa = Path(os.environ.get(SA_TOKEN_PATH_ENV, SA_TOKEN_PATH))
        return sa.read_text().strip() if sa.is_file() else ""

    def check_health(self, timeout: float = 5.0) -> None:
        """One GET of KFP's healthz; RuntimeError naming the host when it does not answer
        as Kubeflow Pipelines (kfp.Client itself would retry for 25 s)."""
        host = self.resolved_host()
        if not host:
            return  # in-cluster / kubeconfig: kfp.Client finds the host
        if "://" not in host:
            host = f"https://{host}"
        request = urllib.request.Request(f"{host}/apis/v2beta1/healthz")
        token = self.resolved_token()
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise RuntimeError(
                f"Kubeflow Pipelines at {host} answered healthz with HTTP {e.code} {e.reason}"
                + (" (check the token)" if e.code in (401, 403) else "")
            ) from None
        except (OSError, ValueError) as e:
            raise RuntimeError(f"cannot reach Kubeflow Pipelines at {host}: {e}") from None

    def client(self):  # type: ignore[no-untyped-def]
        import kfp

        token = self.resolved_token()
        return kfp.Client(
            host=self.resolved_host() or None,
            existing_token=token or None,
            namespace=self.namespace or "kubeflow",
            kube_context=self.kube_context or None,
        )


@dataclass
class Submission:
    """What was created (or reused) on Kubeflow Pipelines."""

    pipeline_id: str
    version_id: str
    version_name: str
    experiment_id: str
    run_id: str = ""
    recurring_run_id: str = ""
    cron: str = ""  # what KFP received (6 fields)
    parameters: dict[str, Any] = field(default_factory=dict)


def _by_name(name: str) -> str:
    return json.dumps(
        {"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]}
    )


def _upload_file(pipeline: pipeline_spec.CompiledPipeline, enable_caching: bool | None) -> Path:
    """The file to upload: as compiled, or with every task's caching set (KFP ignores a
    run's caching option when the run refers to an uploaded version)."""
    if enable_caching is None:
        return pipeline.path
    docs = list(yaml.safe_load_all(pipeline.path.read_text()))
    for task in docs[0]["root"].get("dag", {}).get("tasks", {}).values():
        task.setdefault("cachingOptions", {})["enableCache"] = enable_caching
    out = Path(tempfile.mkdtemp(prefix="kfpkit-submit-")) / pipeline.path.name
    out.write_text(yaml.safe_dump_all(docs, sort_keys=True))
    return out


def _ensure_version(client, pipeline, upload: Path, pipeline_name: str, version_name: str):  # type: ignore[no-untyped-def]
    pipeline_id = client.get_pipeline_id(pipeline_name)
    if pipeline_id is None:
        pipeline_id = client.upload_pipeline(str(upload), pipeline_name=pipeline_name).pipeline_id
    found = client.list_pipeline_versions(pipeline_id, filter=_by_name(version_name))
    if found.pipeline_versions:
        return pipeline_id, found.pipeline_versions[0].pipeline_version_id
    version = client.upload_pipeline_version(str(upload), version_name, pipeline_id=pipeline_id)
    return pipeline_id, version.pipeline_version_id


def _existing_schedule(client, experiment_id, name, version_id, cron) -> str:  # type: ignore[no-untyped-def]
    """The id of the same schedule made by an earlier submit (same name, version and cron),
    so that a repeated submit does not schedule twice; ValueError for a different one."""
    found = client.list_recurring_runs(experiment_id=experiment_id, filter=_by_name(name))
    for job in found.recurring_runs or []:
        same_version = (
            job.pipeline_version_reference is not None
            and job.pipeline_version_reference.pipeline_version_id == version_id
        )
        same_cron = (
            job.trigger is not None
            and job.trigger.cron_schedule is not None
            and (job.trigger.cron_schedule.cron == cron)
        )
        if same_version and same_cron:
            return str(job.recurring_run_id)
        raise ValueError(
            f"recurring run {name!r} ({job.recurring_run_id}) already exists in this experiment "
            f"with another version or cron: delete it first, or choose another run name"
        )
    return ""


def submit(
    compiled: str | Path,
    target: Kubeflow,
    *,
    params: dict[str, Any] | None = None,
    cli_params: list[str] | None = None,
    experiment: str = "Default",
    run_name: str = "",
    pipeline_name: str = "",
    version_name: str = "",
    pipeline_root: str = "",
    service_account: str = "",
    enable_caching: bool | None = None,
    cron: str = "",
    max_concurrency: int = 1,
    catchup: bool = False,
    run: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> Submission:
    """Uploads ``compiled`` (pipeline + content-named version), then creates a run (``run``)
    and, with ``cron``, a recurring run, in ``experiment`` (created when missing), all within
    ``timeout`` seconds (RuntimeError after it; kfp.Client has no deadline of its own).

    Everything is checked before the first call that creates something: the file (and that
    it was not compiled for Vertex AI), the parameters, the cron, the timeout (ValueError),
    and the host (RuntimeError).
    """
    pipeline = pipeline_spec.load(compiled)
    targets.check_compiled_for(pipeline.spec, "kubeflow", str(pipeline.path))
    values = pipeline_spec.parameter_values(pipeline, params, cli_params)
    kfp_cron = cron_syntax.parse(cron).kubeflow() if cron else ""
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, not {max_concurrency!r}")
    if not run and not cron:
        raise ValueError("nothing to do: neither a run nor a schedule (cron) was asked for")
    name = pipeline_name or pipeline.name
    upload = _upload_file(pipeline, enable_caching)
    digest = pipeline.digest if upload == pipeline.path else pipeline_spec.load(upload).digest
    version = version_name or f"{name}-{digest[:12]}"
    with deadline(check_timeout(timeout), _service(target)):
        return _submit(target, pipeline, values, upload, name, version, experiment,
                       run_name, pipeline_root, service_account, kfp_cron, max_concurrency,
                       catchup, run)  # fmt: skip


def _service(target: Kubeflow) -> str:
    return f"Kubeflow Pipelines at {target.resolved_host() or 'the in-cluster/kubeconfig host'}"


def _submit(target: Kubeflow, pipeline: pipeline_spec.CompiledPipeline, values: dict[str, Any],
            upload: Path, name: str, version: str, experiment: str, run_name: str,
            pipeline_root: str, service_account: str, kfp_cron: str, max_concurrency: int,
            catchup: bool, run: bool) -> Submission:  # fmt: skip
    target.check_health()
    client = target.client()
    pipeline_id, version_id = _ensure_version(client, pipeline, upload, name, version)
    namespace = target.namespace or None
    experiment_id = client.create_experiment(experiment, namespace=namespace).experiment_id
    result = Submission(pipeline_id, version_id, version, experiment_id, parameters=values)
    common = dict(
        params=values,
        pipeline_id=pipeline_id,
        version_id=version_id,
        pipeline_root=pipeline_root or None,
        service_account=service_account or None,
    )
    if run:
        result.run_id = client.run_pipeline(experiment_id, run_name or version, **common).run_id
    if kfp_cron:
        schedule_name = f"{run_name or name}-schedule"
        existing = _existing_schedule(client, experiment_id, schedule_name, version_id, kfp_cron)
        result.cron = kfp_cron
        if existing:
            result.recurring_run_id = existing
            return result
        result.recurring_run_id = client.create_recurring_run(
            experiment_id,
            schedule_name,
            cron_expression=kfp_cron,
            max_concurrency=max_concurrency,
            no_catchup=not catchup,
            **common,
        ).recurring_run_id
        result.cron = kfp_cron
    return result


def list_runs(
    target: Kubeflow, experiment: str = "", limit: int = 20, timeout: float = DEFAULT_TIMEOUT
) -> list[dict[str, str]]:
    """The newest runs (all, or one experiment's): id, name, state, created; within
    ``timeout`` seconds (RuntimeError after it)."""
    with deadline(check_timeout(timeout), _service(target)):
        target.check_health()
        client = target.client()
        experiment_id = None
        if experiment:
            experiment_id = client.get_experiment(
                experiment_name=experiment, namespace=target.namespace or None
            ).experiment_id
        response = client.list_runs(
            page_size=limit,
            sort_by="created_at desc",
            experiment_id=experiment_id,
            namespace=target.namespace or None,
        )
    return [
        {
            "id": r.run_id or "",
            "name": r.display_name or "",
            "state": r.state or "",
            "created": str(r.created_at or ""),
        }
        for r in response.runs or []
    ]
