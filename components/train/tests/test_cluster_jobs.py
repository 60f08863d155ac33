"""Multi-worker jobs on the services, through the shared remote-job helper: the Kubeflow Trainer
TrainJob on a real kube-apiserver (the test plays Trainer's controller by writing status), the
Vertex AI CustomJob on the Vertex stand-in (the test plays the service by setting states)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from kfpkit.jobs import kube, wait
from kfpkit.runtime.executor import Cancelled
from kfpkit.runtime.identity import step_key
from kfpkit.training import cluster_jobs
from kfpkit.training.cluster_jobs import WorkerPool

CRDS = Path(__file__).parent / "crds"
NS = "training"
IMAGE = "ghcr.io/kfpkit/train:test"
COMMAND = ["python3", "-m", "kfpkit.components.train.worker"]
ARGS = ["--executor_input", '{"inputs": {}}']


@pytest.fixture(scope="module")
def api(kube_server):
    kube_server.install_crd(CRDS / "trainjobs.yaml")
    kube_server.create_namespace(NS)
    return kube_server.api_client()


def set_status(api, name: str, *conditions: dict) -> None:
    group, version, plural, _ = cluster_jobs.TRAINJOB
    cluster_jobs.trainjobs(api).api.patch_namespaced_custom_object_status(
        group, version, NS, plural, name, {"status": {"conditions": list(conditions)}}
    )


def play_trainer(api, name: str, final: dict | None) -> threading.Thread:
    """Trainer's controller: once the TrainJob exists, Created, then ``final`` (if any)."""

    def run() -> None:
        deadline = time.monotonic() + 30
        while cluster_jobs.trainjobs(api).find(NS, name) is None:
            assert time.monotonic() < deadline, "the TrainJob never appeared"
            time.sleep(0.05)
        created = {"type": "Created", "status": "True", "reason": "JobSetCreated"}
        set_status(api, name, created)
        if final is not None:
            time.sleep(0.3)
            set_status(api, name, created, final)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def trainjob(name: str) -> dict:
    pool = WorkerPool(3, accelerator_type="nvidia.com/gpu", accelerator_count=1, cpu="4",
                      memory="16Gi")  # fmt: skip
    return cluster_jobs.trainjob_body(name, pool, IMAGE, COMMAND, ARGS)


def test_trainjob_created_waited_on_and_resumed_after_a_restart(api):
    name = kube.object_name("kfpkit-train", {"step": "resume"})
    owner = step_key({"step": "resume"})
    play_trainer(api, name, {"type": "Complete", "status": "True", "reason": "JobSetCompleted"})
    done = cluster_jobs.run_trainjob(api, NS, trainjob(name), owner, poll_interval=0.1, timeout=30)
    assert kube.condition_true(done, "Complete")

    stored = cluster_jobs.trainjobs(api).get(NS, name)
    spec = stored["spec"]
    assert stored["metadata"]["labels"][kube.OWNER_LABEL] == owner
    assert spec["runtimeRef"] == {"name": "torch-distributed", "apiGroup": "trainer.kubeflow.org",
                                  "kind": "ClusterTrainingRuntime"}  # fmt: skip
    trainer = spec["trainer"]
    assert (trainer["image"], trainer["command"], trainer["args"]) == (IMAGE, COMMAND, ARGS)
    assert trainer["numNodes"] == 3
    assert trainer["resourcesPerNode"]["limits"] == {"cpu": "4", "memory": "16Gi",
                                                     "nvidia.com/gpu": 1}  # fmt: skip
    assert trainer["env"] == [{"name": "KFPKIT_TRAINJOB", "value": f"{name}:3"}]

    # a restarted step: the same deterministic name resumes the finished job, creates nothing
    again = cluster_jobs.run_trainjob(api, NS, trainjob(name), owner, poll_interval=0.1,
                                      timeout=30)  # fmt: skip
    assert again["metadata"]["uid"] == stored["metadata"]["uid"]
    listed = cluster_jobs.trainjobs(api).api.list_namespaced_custom_object(
        "trainer.kubeflow.org", "v1alpha1", NS, "trainjobs")["items"]  # fmt: skip
    assert [j["metadata"]["name"] for j in listed].count(name) == 1


def test_a_failed_trainjob_fails_with_the_controllers_reason(api):
    name = kube.object_name("kfpkit-train", {"step": "fail"})
    play_trainer(api, name, {"type": "Failed", "status": "True", "reason": "JobSetFailed",
                             "message": "node-0-1 exited with 137 (OOMKilled)"})  # fmt: skip
    with pytest.raises(wait.RemoteJobFailed, match=r"JobSetFailed: node-0-1 exited with 137"):
        cluster_jobs.run_trainjob(api, NS, trainjob(name), "owner-fail", poll_interval=0.1,
                                  timeout=30)  # fmt: skip


def test_timeout_and_sigterm_delete_the_trainjob(api):
    name = kube.object_name("kfpkit-train", {"step": "slow"})
    play_trainer(api, name, None)  # created, never finishes
    with pytest.raises(wait.RemoteJobTimeout):
        cluster_jobs.run_trainjob(api, NS, trainjob(name), "owner-slow", poll_interval=0.1,
                                  timeout=1.0)  # fmt: skip
    assert cluster_jobs.trainjobs(api).find(NS, name) is None

    name = kube.object_name("kfpkit-train", {"step": "cancel"})
    play_trainer(api, name, None)

    def stop_when_created() -> None:
        deadline = time.monotonic() + 30
        while cluster_jobs.trainjobs(api).find(NS, name) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGTERM)

    def cancelled(signum, frame):
        raise Cancelled("SIGTERM")

    previous = signal.signal(signal.SIGTERM, cancelled)
    threading.Thread(target=stop_when_created, daemon=True).start()
    try:
        with pytest.raises(Cancelled):
            cluster_jobs.run_trainjob(api, NS, trainjob(name), "owner-cancel",
                                      poll_interval=0.1, timeout=60)  # fmt: skip
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert cluster_jobs.trainjobs(api).find(NS, name) is None


def test_each_trainjob_node_builds_its_tf_config():
    env = {"KFPKIT_TRAINJOB": "kfpkit-train-abc:3", "JOB_COMPLETION_INDEX": "2"}
    config = json.loads(cluster_jobs.tf_config_for_trainjob(env) or "")
    assert config["cluster"]["worker"] == [
        f"kfpkit-train-abc-node-0-{i}.kfpkit-train-abc:2222" for i in range(3)
    ]
    assert config["task"] == {"type": "worker", "index": 2}
    assert cluster_jobs.tf_config_for_trainjob({}) is None
    with pytest.raises(ValueError, match="JOB_COMPLETION_INDEX='3'"):
        cluster_jobs.tf_config_for_trainjob({**env, "JOB_COMPLETION_INDEX": "3"})


# -- Vertex AI ------------------------------------------------------------------------------
@pytest.fixture()
def vertex():
    from kfpkit.testing.vertex_jobs import VertexCustomJobServer
    from kfpkit.vertex_api import VertexApi

    with VertexCustomJobServer() as server:
        yield server, VertexApi("kfpkit-test", "us-central1", server.url)


def play_vertex(server, states: list[tuple[str, str]]) -> None:
    def run() -> None:
        deadline = time.monotonic() + 30
        while not server.jobs:
            assert time.monotonic() < deadline, "no CustomJob created"
            time.sleep(0.05)
        name = next(iter(server.jobs))
        for state, message in states:
            time.sleep(0.2)
            server.set_state(name, state, message)

    threading.Thread(target=run, daemon=True).start()


def custom_job(pool: WorkerPool) -> dict:
    return cluster_jobs.custom_job_body("kfpkit-train", pool, IMAGE, COMMAND, ARGS,
                                        labels={"kfpkit-run": "run-1"})  # fmt: skip


def test_custom_job_request_worker_pools_image_args_accelerators(vertex):
    server, api = vertex
    pool = WorkerPool(3, machine_type="n1-standard-8", accelerator_type="NVIDIA_TESLA_T4",
                      accelerator_count=2)  # fmt: skip
    play_vertex(server, [("JOB_STATE_RUNNING", ""), ("JOB_STATE_SUCCEEDED", "")])
    done = cluster_jobs.run_custom_job(api, custom_job(pool), "step-abc", poll_interval=0.1,
                                       timeout=30)  # fmt: skip
    assert done["state"] == "JOB_STATE_SUCCEEDED"

    (create,) = server.calls("POST", r"/customJobs$")
    assert create.path == "/v1/projects/kfpkit-test/locations/us-central1/customJobs"
    body = create.json()
    assert body["labels"] == {"kfpkit-run": "run-1", "kfpkit-step": "step-abc"}
    chief, workers = body["jobSpec"]["workerPoolSpecs"]
    machine = {"machineType": "n1-standard-8", "acceleratorType": "NVIDIA_TESLA_T4",
               "acceleratorCount": 2}  # fmt: skip
    container = {"imageUri": IMAGE, "command": COMMAND, "args": ARGS}
    assert chief == {"machineSpec": machine, "replicaCount": "1", "containerSpec": container}
    assert workers == {"machineSpec": machine, "replicaCount": "2", "containerSpec": container}

    # a restarted step finds its job by its label and creates no second one
    again = cluster_jobs.run_custom_job(api, custom_job(pool), "step-abc", poll_interval=0.1,
                                        timeout=30)  # fmt: skip
    assert again["name"] == done["name"] and len(server.calls("POST", r"/customJobs$")) == 1


def test_custom_job_failure_carries_vertex_reason_and_a_timeout_cancels(vertex):
    server, api = vertex
    play_vertex(server, [("JOB_STATE_FAILED", "The replica workerpool1-0 exited with 1")])
    with pytest.raises(wait.RemoteJobFailed, match="workerpool1-0 exited with 1"):
        cluster_jobs.run_custom_job(api, custom_job(WorkerPool(2)), "step-fail",
                                    poll_interval=0.1, timeout=30)  # fmt: skip

    with pytest.raises(wait.RemoteJobTimeout):
        cluster_jobs.run_custom_job(api, custom_job(WorkerPool(2)), "step-slow",
                                    poll_interval=0.1, timeout=0.5)  # fmt: skip
    (cancel,) = server.calls("POST", r":cancel$")
    assert server.jobs[cancel.path[len("/v1/") : -len(":cancel")]]["state"] == "JOB_STATE_CANCELLED"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: WorkerPool(1), "workers must be a whole number >= 2"),
        (lambda: WorkerPool(2, accelerator_type="NVIDIA_L4"), "must be given together"),
        (lambda: custom_job(WorkerPool(2, machine_type="big one")), "'big one'"),
        (lambda: custom_job(WorkerPool(2, accelerator_type="l4", accelerator_count=1)), "'l4'"),
        (lambda: cluster_jobs.trainjob_body("Bad_Name", WorkerPool(2), IMAGE, COMMAND, ARGS),
         "'Bad_Name'"),
    ],
)  # fmt: skip
def test_bad_worker_settings_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()
