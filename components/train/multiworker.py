"""The train step as the launcher of a multi-worker job (its ``distribution`` parameter).

With ``distribution`` set, the step does not train: it starts ``workers`` copies of the train
image on Vertex AI (a CustomJob) or Kubeflow (a Trainer v2 TrainJob) through
:mod:`kfpkit.training.cluster_jobs`, waits for them, and records what the chief wrote. Every
worker runs :mod:`kfpkit.components.train.worker` with this step's executor input, less the
``distribution`` parameter (so it trains) and with the executor output redirected to
``chief_output.json`` beside the step's own (so only this step writes the step's result): the
chief writes the model, the training curve and that file at the step's own paths, which
therefore must be storage every worker mounts at the same path (Vertex AI: ``/gcs/``, where a
Vertex pipeline's artifacts are; Kubeflow: a volume the training runtime mounts at the
pipeline root's path).
"""

from __future__ import annotations

import json
import os
from typing import Any

from kfpkit.jobs import kube
from kfpkit.runtime.executor import Executor, uri_to_path
from kfpkit.runtime.identity import executor_identity, step_key
from kfpkit.training import cluster_jobs
from kfpkit.training.cluster_jobs import Distribution, parse_distribution

__all__ = ["Distribution", "launch", "parse_distribution", "worker_input"]

CHIEF_OUTPUT = "chief_output.json"
WORKER_COMMAND = ("python3", "-m", "kfpkit.components.train.worker")
JOB_PREFIX = "kfpkit-train"


def worker_input(raw: dict[str, Any]) -> dict[str, Any]:
    """The executor input every worker gets: no ``distribution``, the output file redirected."""
    doc = json.loads(json.dumps(raw))
    doc.get("inputs", {}).get("parameterValues", {}).pop("distribution", None)
    outputs = doc.setdefault("outputs", {})
    outputs["outputFile"] = os.path.join(os.path.dirname(outputs.get("outputFile", "")),
                                         CHIEF_OUTPUT)  # fmt: skip
    return doc


def launch(executor: Executor, distribution: Distribution) -> None:
    """Runs the job, then copies the chief's recorded outputs into this step's."""
    identity = executor_identity(executor.raw)
    args = ["--executor_input", json.dumps(worker_input(executor.raw), sort_keys=True)]
    chief_output = os.path.join(os.path.dirname(uri_to_path(executor.output_file)), CHIEF_OUTPUT)
    if os.path.exists(chief_output):
        os.remove(chief_output)  # a previous attempt's: only this job's result counts
    waits = {"poll_interval": distribution.poll_interval, "timeout": distribution.timeout}
    options = distribution.options
    if distribution.backend == "vertex":
        from kfpkit.vertex_api import VertexApi

        api = VertexApi(options["project"], options["location"], options.get("api_endpoint", ""))
        body = cluster_jobs.custom_job_body(
            JOB_PREFIX, distribution.pool, distribution.image, WORKER_COMMAND, args,
            service_account=options.get("service_account", ""),
        )  # fmt: skip
        cluster_jobs.run_custom_job(api, body, step_key(identity), **waits)
    else:
        name = kube.object_name(JOB_PREFIX, identity)
        body = cluster_jobs.trainjob_body(
            name, distribution.pool, distribution.image, WORKER_COMMAND, args,
            runtime=options.get("runtime", cluster_jobs.DEFAULT_RUNTIME),
        )  # fmt: skip
        with kube.api_client() as api:
            cluster_jobs.run_trainjob(api, options["namespace"], body, step_key(identity),
                                      **waits)  # fmt: skip
    record_chief_outputs(executor, chief_output)


def record_chief_outputs(executor: Executor, chief_output: str) -> None:
    """The chief's artifact metadata, as this step's; RuntimeError when the job succeeded but
    no chief output is visible here (the workers' storage is not this step's)."""
    try:
        with open(chief_output, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise RuntimeError(
            f"the job succeeded but its chief's output {chief_output!r} is not visible to this "
            "step: the workers must write to storage mounted at the step's paths"
        ) from None
    for name, entry in doc.get("artifacts", {}).items():
        artifacts = entry.get("artifacts") or [{}]
        executor.output(name).metadata.update(artifacts[0].get("metadata") or {})
