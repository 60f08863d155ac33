"""Multi-worker training launched on a cluster service, through the shared remote-job helper.

Two services, one shape: ``workers`` copies of the train image run one command; the service
gives each its place in the cluster; the caller waits with a deadline, resumes the job a
previous attempt of the same step started (deterministic name), cancels it when the step is
stopped (SIGTERM) and fails with the service's reason.

- **Vertex AI**: a ``CustomJob`` (REST ``projects.locations.customJobs``) with two worker
  pools: pool 0 the chief (one replica), pool 1 the other ``workers - 1``, each with its
  machine type and accelerators. Vertex sets ``TF_CONFIG`` (``chief`` and ``worker``) in every
  replica and mounts Cloud Storage at ``/gcs/``, where a Vertex pipeline's artifacts are, so
  the workers read the step's inputs and the chief writes its outputs at the step's own
  paths. Chosen over GCPC's ``create_custom_training_job_from_component`` because that one
  wraps the component at compile time (Vertex only, a GCPC dependency on the host, the job
  not the step's to resume or cancel); this request is sent by the step, so the same
  ``train`` component runs on one machine or many, and waiting, resuming and cancelling are
  the shared helper's.
- **Kubeflow**: a Kubeflow Trainer v2 ``TrainJob`` (``trainer.kubeflow.org/v1alpha1``; Trainer
  v2.0 and later, Kubeflow 1.10+), built as a plain dict (no SDK in the image: the
  ``kubeflow-trainer-api`` models would add pydantic models for one object). Trainer v2 has
  no TensorFlow runtime; the job references a ``ClusterTrainingRuntime`` (``runtime``,
  default ``torch-distributed``, present in a default install) only for its JobSet template,
  and each worker builds its ``TF_CONFIG`` from the JobSet's stable pod names
  (:func:`tf_config_for_trainjob`). Clusters still on the Training Operator v1 (Kubeflow
  1.9 and earlier) have ``TFJob`` instead, which sets ``TF_CONFIG`` itself
  (``kubeflow-training``'s ``TFJob`` models); not built here.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kfpkit.jobs import kube, wait

_log = logging.getLogger("kfpkit")

# Vertex AI
SUCCEEDED = "JOB_STATE_SUCCEEDED"
FAILED_STATES = ("JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED")
STEP_LABEL = "kfpkit-step"  # the label a CustomJob of one step carries (its deterministic key)
_MACHINE = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)+\Z")  # n1-standard-8, a2-highgpu-1g
_ACCELERATOR = re.compile(r"[A-Z][A-Z0-9_]*\Z")  # NVIDIA_TESLA_T4, TPU_V3

# Kubeflow Trainer v2
TRAINJOB = ("trainer.kubeflow.org", "v1alpha1", "trainjobs", "TrainJob")
DEFAULT_RUNTIME = "torch-distributed"
NODE_JOB = "node"  # the JobSet's replicated job that runs the training nodes (Trainer v2)
TF_PORT = 2222  # the port every worker's TensorFlow server listens on in a TrainJob
TRAINJOB_ENV = "KFPKIT_TRAINJOB"  # "<name>:<nodes>" in every node: its TF_CONFIG's source


@dataclass(frozen=True)
class WorkerPool:
    """The machines of a multi-worker run: ``workers`` in all (the chief included), each with
    ``machine_type`` (Vertex) or ``cpu``/``memory`` (Kubernetes quantities) and accelerators."""

    workers: int
    machine_type: str = "n1-standard-4"
    accelerator_type: str = ""  # Vertex: NVIDIA_L4...; Kubeflow: the resource, nvidia.com/gpu
    accelerator_count: int = 0
    cpu: str = ""
    memory: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 2:
            raise ValueError(f"workers must be a whole number >= 2, not {self.workers!r}")
        if self.accelerator_count < 0 or (self.accelerator_count > 0) != bool(
            self.accelerator_type
        ):
            raise ValueError(
                f"accelerator_type {self.accelerator_type!r} and accelerator_count "
                f"{self.accelerator_count!r} must be given together (count >= 1)"
            )


# The train step's ``distribution`` parameter (and a compile target's ``distribution``).
BACKENDS = ("vertex", "kubeflow")
DISTRIBUTION_KEYS = {
    "backend": str, "workers": int, "image": str, "machine_type": str,
    "accelerator_type": str, "accelerator_count": int, "cpu": str, "memory": str,
    "project": str, "location": str, "api_endpoint": str, "service_account": str,
    "namespace": str, "runtime": str, "poll_interval": float, "timeout": float,
}  # fmt: skip


@dataclass(frozen=True)
class Distribution:
    """A checked ``distribution``: where the workers run, how many, on what."""

    backend: str
    pool: WorkerPool
    image: str
    options: dict[str, Any]  # the backend's own settings (project, namespace, ...)
    poll_interval: float = 30.0
    timeout: float = 7 * 24 * 3600.0


def parse_distribution(value: Mapping[str, Any] | None) -> Distribution | None:
    """The ``distribution`` parameter; None when empty (the step trains itself). ValueError
    naming an unknown key, a value of the wrong type, or a missing one."""
    if not value:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"distribution must be a JSON object, not {value!r}")
    unknown = sorted(set(value) - set(DISTRIBUTION_KEYS))
    if unknown:
        known = sorted(DISTRIBUTION_KEYS)
        raise ValueError(f"distribution: unknown key(s) {unknown}; known: {known}")
    settings: dict[str, Any] = {}
    for key, item in value.items():
        kind = DISTRIBUTION_KEYS[key]
        if isinstance(item, bool) or not isinstance(item, (kind, int) if kind is float else kind):
            raise ValueError(f"distribution[{key!r}] must be a {kind.__name__}, not {item!r}")
        settings[key] = item
    backend = settings.pop("backend", "")
    if backend not in BACKENDS:
        raise ValueError(f"distribution['backend'] must be one of {BACKENDS}, not {backend!r}")
    image = settings.pop("image", "")
    if not image:
        raise ValueError("distribution['image'] is required: the train image the workers run")
    pool_keys = ("machine_type", "accelerator_type", "accelerator_count", "cpu", "memory")
    pool = WorkerPool(settings.pop("workers", 0), **{k: settings.pop(k) for k in pool_keys
                                                     if k in settings})  # fmt: skip
    waits = {k: float(settings.pop(k)) for k in ("poll_interval", "timeout") if k in settings}
    for key, need in (("vertex", ("project", "location")), ("kubeflow", ("namespace",))):
        missing = [k for k in need if backend == key and not settings.get(k)]
        if missing:
            raise ValueError(f"distribution: the {backend} backend needs {missing}")
    if backend == "kubeflow":
        kube.check_name(settings["namespace"], "distribution['namespace']")
    return Distribution(backend, pool, image, settings, **waits)


# -- Vertex AI ------------------------------------------------------------------------------
def custom_job_body(
    display_name: str,
    pool: WorkerPool,
    image: str,
    command: Sequence[str],
    args: Sequence[str],
    labels: Mapping[str, str] | None = None,
    service_account: str = "",
) -> dict[str, Any]:
    """The ``CustomJob`` resource: pool 0 the chief, pool 1 the other workers."""
    if not _MACHINE.match(pool.machine_type):
        raise ValueError(f"machine_type {pool.machine_type!r} is not a Vertex machine type")
    if pool.accelerator_type and not _ACCELERATOR.match(pool.accelerator_type):
        raise ValueError(
            f"accelerator_type {pool.accelerator_type!r} is not a Vertex accelerator "
            "(e.g. NVIDIA_L4, NVIDIA_TESLA_T4)"
        )
    machine: dict[str, Any] = {"machineType": pool.machine_type}
    if pool.accelerator_count:
        machine.update(acceleratorType=pool.accelerator_type,
                       acceleratorCount=pool.accelerator_count)  # fmt: skip
    container = {"imageUri": image, "command": list(command), "args": list(args)}
    spec: dict[str, Any] = {
        "workerPoolSpecs": [
            {"machineSpec": machine, "replicaCount": "1", "containerSpec": container},
            {"machineSpec": machine, "replicaCount": str(pool.workers - 1),
             "containerSpec": container},
        ]
    }  # fmt: skip
    if service_account:
        spec["serviceAccount"] = service_account
    return {"displayName": display_name, "jobSpec": spec, "labels": dict(labels or {})}


def custom_job_progress(job: Mapping[str, Any]) -> wait.Progress:
    state = job.get("state", "JOB_STATE_UNSPECIFIED")
    if state == SUCCEEDED:
        return wait.Progress.done(state)
    if state in FAILED_STATES:
        return wait.Progress.failed(f"{state}: {(job.get('error') or {}).get('message', '')}")
    return wait.Progress.pending(state)


def run_custom_job(
    api: Any,
    body: Mapping[str, Any],
    key: str,
    *,
    poll_interval: float = 30.0,
    timeout: float = 7 * 24 * 3600.0,
) -> dict[str, Any]:
    """Creates the CustomJob (or resumes the one labelled ``key`` that is not failed) on
    ``api`` (a :class:`kfpkit.vertex_api.VertexApi`) and waits for it: the finished job, or
    RuntimeError with Vertex's reason; cancelled on SIGTERM and on timeout."""
    kube.check_name(key, "step key")
    body = {**body, "labels": {**body.get("labels", {}), STEP_LABEL: key}}
    found = api.pages(f"{api.parent}/customJobs", "customJobs",
                      {"filter": f'labels.{STEP_LABEL}="{key}"'})  # fmt: skip
    live = [j for j in found if j.get("state") not in FAILED_STATES]
    if live:
        job = live[0]
        _log.info("resuming CustomJob %s (%s)", job["name"], job.get("state"))
    else:
        job = api.call("POST", f"{api.parent}/customJobs", body=body)
        _log.info("created CustomJob %s", job["name"])
    name = job["name"]
    return wait.wait_for(
        lambda: api.call("GET", name),
        custom_job_progress,
        what=f"CustomJob {name}",
        poll_interval=poll_interval,
        timeout=timeout,
        cancel=lambda: api.call("POST", f"{name}:cancel", body={}) and None,
    )


# -- Kubeflow Trainer v2 ----------------------------------------------------------------------
def trainjobs(api_client: Any) -> kube.CustomObjects:
    return kube.CustomObjects(api_client, *TRAINJOB)


def trainjob_body(
    name: str,
    pool: WorkerPool,
    image: str,
    command: Sequence[str],
    args: Sequence[str],
    runtime: str = DEFAULT_RUNTIME,
) -> dict[str, Any]:
    """The ``TrainJob``: ``workers`` nodes of ``image`` running ``command args`` with the
    pool's resources; ``KFPKIT_TRAINJOB`` tells each node the job's name and size."""
    kube.check_name(name, "TrainJob name")
    kube.check_name(runtime, "training runtime")
    limits: dict[str, Any] = {}
    if pool.cpu:
        limits["cpu"] = pool.cpu
    if pool.memory:
        limits["memory"] = pool.memory
    if pool.accelerator_count:
        limits[pool.accelerator_type] = pool.accelerator_count
    trainer: dict[str, Any] = {
        "image": image,
        "command": list(command),
        "args": list(args),
        "numNodes": pool.workers,
        "env": [{"name": TRAINJOB_ENV, "value": f"{name}:{pool.workers}"}],
    }
    if limits:
        trainer["resourcesPerNode"] = {"limits": limits, "requests": dict(limits)}
    return {
        "metadata": {"name": name},
        "spec": {
            "runtimeRef": {"name": runtime, "apiGroup": TRAINJOB[0],
                           "kind": "ClusterTrainingRuntime"},
            "trainer": trainer,
        },
    }  # fmt: skip


def trainjob_progress(job: Mapping[str, Any]) -> wait.Progress:
    if kube.condition_true(job, "Complete"):
        return wait.Progress.done("Complete")
    if kube.condition_true(job, "Failed"):
        failed = kube.condition(job, "Failed") or {}
        return wait.Progress.failed(f"{failed.get('reason', '')}: {failed.get('message', '')}")
    return wait.Progress.pending("running" if kube.condition(job, "Created") else "created")


def run_trainjob(
    api_client: Any,
    namespace: str,
    body: Mapping[str, Any],
    owner: str,
    *,
    poll_interval: float = 10.0,
    timeout: float = 7 * 24 * 3600.0,
) -> dict[str, Any]:
    """Creates (or resumes, same name and owner) the TrainJob and waits for it to complete;
    RuntimeError with the controller's reason when it fails; deleted on SIGTERM and timeout."""
    objects = trainjobs(api_client)
    job, _resumed = objects.create_or_resume(namespace, body, owner)
    return objects.wait(namespace, job["metadata"]["name"], trainjob_progress,
                        poll_interval=poll_interval, timeout=timeout)  # fmt: skip


def tf_config_for_trainjob(env: Mapping[str, str]) -> str | None:
    """The ``TF_CONFIG`` of a TrainJob node: its workers are the JobSet's pods
    ``<job>-node-0-<i>.<job>`` (stable names on the JobSet's headless service), this node
    the ``JOB_COMPLETION_INDEX``-th. None outside a TrainJob."""
    if TRAINJOB_ENV not in env:
        return None
    name, _, nodes = env[TRAINJOB_ENV].partition(":")
    index = env.get("JOB_COMPLETION_INDEX", "")
    if not nodes.isdigit() or not index.isdigit() or int(index) >= int(nodes):
        raise ValueError(
            f"{TRAINJOB_ENV}={env[TRAINJOB_ENV]!r} with JOB_COMPLETION_INDEX={index!r} "
            "names no node of the job"
        )
    workers = [f"{name}-{NODE_JOB}-0-{i}.{name}:{TF_PORT}" for i in range(int(nodes))]
    return json.dumps({"cluster": {"worker": workers},
                       "task": {"type": "worker", "index": int(index)}})  # fmt: skip
