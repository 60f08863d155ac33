"""Starts one run of a compiled pipeline on Kubeflow Pipelines or Vertex AI, once per step.

The run's name is derived from the step's identity (its inputs and output URIs, which name
the calling run and task), so a restarted step finds the run its previous attempt started
instead of starting a second; another calling run (or another task) starts its own.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from kfpkit.runtime.identity import step_key
from kfpkit.submit import pipeline_spec

TARGETS = ("kubeflow", "vertex")
# A prefix both services accept: Vertex AI job ids are [a-z][-a-z0-9]{0,127}.
_RUN_NAME = re.compile(r"^[a-z][a-z0-9-]{0,49}\Z")
HASH_LENGTH = 12


@dataclass(frozen=True)
class Target:
    kind: str = "kubeflow"  # kubeflow | vertex
    host: str = ""  # kubeflow: the KFP API (default: $KF_PIPELINES_ENDPOINT, else in-cluster)
    namespace: str = ""  # kubeflow, multi-user: the profile namespace
    experiment: str = ""  # kubeflow: the experiment (created when missing); "" the default
    project: str = ""  # vertex
    location: str = "us-central1"  # vertex
    api_endpoint: str = ""  # vertex: another endpoint than {location}-aiplatform...
    pipeline_root: str = ""  # vertex: required (gs://); kubeflow: the server's default
    service_account: str = ""

    def check(self) -> None:
        if self.kind not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {self.kind!r}")
        if self.kind == "vertex":
            if not self.project:
                raise ValueError("target vertex needs a project")
            if not self.pipeline_root.startswith("gs://"):
                raise ValueError(
                    f"target vertex needs a gs:// pipeline_root, not {self.pipeline_root!r}"
                )


@dataclass
class Outcome:
    triggered: bool
    reason: str
    target: str
    run_name: str = ""
    run_id: str = ""  # kubeflow: the run id; vertex: the job's resource name
    created: bool = False  # False: found the run an earlier attempt started
    pipeline: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_name(prefix: str, pipeline_name: str, identity: Any) -> str:
    """``<prefix>-<12 hex of the step identity>``; the prefix defaults to the pipeline's
    name made name-safe. ValueError for a given prefix that is not ``[a-z][a-z0-9-]``."""
    if prefix:
        if not _RUN_NAME.match(prefix):
            raise ValueError(
                f"run_name {prefix!r} must be lower-case letters, digits and '-', start with a "
                "letter, at most 50 characters (a hash is appended)"
            )
    else:
        safe = re.sub(r"[^a-z0-9-]+", "-", pipeline_name.lower()).strip("-")
        prefix = (safe if safe[:1].isalpha() else f"run-{safe}")[:50].rstrip("-") or "run"
    return f"{prefix}-{step_key(identity, HASH_LENGTH)}"


def trigger(
    compiled: str,
    target: Target,
    parameters: dict[str, Any],
    identity: Any,
    *,
    name_prefix: str = "",
    enabled: bool = True,
    reason: str = "",
) -> Outcome:
    """Starts (or finds) the run; with ``enabled`` False starts nothing and says why.

    Everything is checked before a service is called: the target, the compiled file, the
    parameters against the pipeline's declared ones (ValueError).
    """
    if not isinstance(parameters, dict):
        raise ValueError(f"parameters must be a mapping of name: value, not {parameters!r}")
    target.check()
    if not enabled:
        return Outcome(False, reason or "not enabled", target.kind)
    pipeline = pipeline_spec.load(compiled)
    values = pipeline_spec.parameter_values(pipeline, parameters)
    name = run_name(name_prefix, pipeline.name, identity)
    outcome = Outcome(True, reason, target.kind, name, pipeline=pipeline.name, parameters=values)
    if target.kind == "kubeflow":
        outcome.run_id, outcome.created = _kubeflow(pipeline, target, name, values, reason)
    else:
        outcome.run_id, outcome.created = _vertex(pipeline, target, name, values)
    return outcome


def _kubeflow(pipeline, target: Target, name: str, values: dict[str, Any],
              reason: str) -> tuple[str, bool]:  # type: ignore[no-untyped-def]  # fmt: skip
    from kfpkit.submit.kubeflow import Kubeflow
    from kfpkit.submit.kubeflow_rest import KubeflowRest

    api = KubeflowRest(Kubeflow(host=target.host, namespace=target.namespace))
    run = api.start_run(
        pipeline,
        name,
        values,
        experiment=target.experiment,
        pipeline_root=target.pipeline_root,
        service_account=target.service_account,
        description=reason,
    )
    return run.run_id, run.created


def _vertex(pipeline, target: Target, job_id: str,
            values: dict[str, Any]) -> tuple[str, bool]:  # type: ignore[no-untyped-def]  # fmt: skip
    from kfpkit.submit.vertex_rest import VertexJobs, job_body
    from kfpkit.vertex_api import VertexApi

    api = VertexApi(target.project, target.location, target.api_endpoint)
    body = job_body(pipeline, values, target.pipeline_root, job_id, target.service_account)
    job = VertexJobs(api).start(job_id, body)
    return job.name, job.created
