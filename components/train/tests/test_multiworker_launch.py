"""The train step with ``distribution`` end to end: the step creates a Kubeflow Trainer TrainJob
on a real kube-apiserver and waits; the test plays Trainer by running the job's own command
and args as two real worker processes on 127.0.0.1 (TF_CONFIG on free ports), then writing
the job's status from their exit codes; the step records what the chief wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kfpkit import testing
from kfpkit.components.train import launcher, multiworker
from kfpkit.jobs import kube
from kfpkit.runtime.executor import EXIT_USER_ERROR, launch
from kfpkit.runtime.identity import executor_identity
from kfpkit.training import cluster_jobs

CRDS = Path(__file__).parent / "crds"
NS = "training"
OUTPUTS = {"model": "system.Model", "metrics": "system.Metrics", "training_curve": "system.HTML"}
HYPERPARAMETERS = {"epochs": 2, "batch_size": 128}


@pytest.fixture(scope="module")
def api(kube_server, tmp_path_factory):
    kube_server.install_crd(CRDS / "trainjobs.yaml")
    kube_server.create_namespace(NS)
    config = kube_server.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
    old = {k: os.environ.get(k) for k in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    os.environ["KUBECONFIG"] = config
    os.environ.pop("KUBERNETES_SERVICE_HOST", None)
    yield kube_server.api_client()
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def step_input(out: Path, splits: dict[str, Path], distribution: dict) -> dict:
    params = {"label_column": "employed", "exclude_columns": ["id"],
              "hyperparameters": HYPERPARAMETERS, "distribution": distribution}  # fmt: skip
    inputs = {"train_data": ("system.Dataset", str(splits["train"])),
              "validation_data": ("system.Dataset", str(splits["validation"]))}  # fmt: skip
    return testing.executor_input(out, params, OUTPUTS, inputs)


class Trainer(threading.Thread):
    """Plays Kubeflow Trainer for one TrainJob: runs its nodes as local processes."""

    def __init__(self, api, name: str, logs: Path):
        super().__init__(daemon=True)
        self.objects, self.name, self.logs = cluster_jobs.trainjobs(api), name, logs
        self.job: dict | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # noqa: BLE001 - the test reads it
            self.error = e

    def _status(self, *conditions: dict) -> None:
        group, version, plural, _ = cluster_jobs.TRAINJOB
        self.objects.api.patch_namespaced_custom_object_status(
            group, version, NS, plural, self.name, {"status": {"conditions": list(conditions)}}
        )

    def _run(self) -> None:
        deadline = time.monotonic() + 60
        while (job := self.objects.find(NS, self.name)) is None:
            assert time.monotonic() < deadline, "the TrainJob never appeared"
            time.sleep(0.1)
        self.job = job
        created = {"type": "Created", "status": "True", "reason": "JobSetCreated"}
        self._status(created)
        trainer = job["spec"]["trainer"]
        nodes = trainer["numNodes"]
        ports = [free_port() for _ in range(nodes)]
        env = {**os.environ, **{e["name"]: e["value"] for e in trainer["env"]}}
        procs = []
        for i in range(nodes):
            config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                      "task": {"type": "worker", "index": i}}  # fmt: skip
            command = [sys.executable, *trainer["command"][1:], *trainer["args"]]
            procs.append(subprocess.Popen(
                command, env={**env, "TF_CONFIG": json.dumps(config), "JOB_COMPLETION_INDEX":
                              str(i)},
                stdout=open(self.logs / f"node{i}.log", "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
            ))  # fmt: skip
        codes = [p.wait(timeout=900) for p in procs]
        if all(c == 0 for c in codes):
            self._status(created, {"type": "Complete", "status": "True", "reason": "Done"})
        else:
            self._status(created, {"type": "Failed", "status": "True", "reason": "JobSetFailed",
                                   "message": f"node exit codes {codes}"})  # fmt: skip


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_step_runs_a_trainjob_and_records_the_chiefs_outputs(api, splits, tmp_path):
    out = tmp_path / "step"
    distribution = {"backend": "kubeflow", "namespace": NS, "workers": 2,
                    "image": "ghcr.io/kfpkit/train:test", "cpu": "2", "memory": "4Gi",
                    "poll_interval": 0.5, "timeout": 900.0}  # fmt: skip
    raw = step_input(out, splits, distribution)
    name = kube.object_name(multiworker.JOB_PREFIX, executor_identity(raw))
    trainer = Trainer(api, name, tmp_path)
    trainer.start()
    code = launch(launcher.run, ["--executor_input", json.dumps(raw)])
    trainer.join(timeout=60)
    logs = "\n".join(p.read_text()[-2000:] for p in sorted(tmp_path.glob("node*.log")))
    assert trainer.error is None and code == 0, logs

    # what the workers were given: this step's input, less distribution, output redirected
    args = trainer.job["spec"]["trainer"]["args"]
    given = json.loads(args[args.index("--executor_input") + 1])
    assert "distribution" not in given["inputs"]["parameterValues"]
    assert given["outputs"]["outputFile"] == str(out / multiworker.CHIEF_OUTPUT)
    assert given["outputs"]["artifacts"] == raw["outputs"]["artifacts"]

    doc = json.loads((out / "executor_output.json").read_text())
    arts = {k: v["artifacts"][0]["metadata"] for k, v in doc["artifacts"].items()}
    assert arts["model"]["strategy"] == "MultiWorkerMirroredStrategy"
    assert arts["metrics"]["workers"] == 2 and arts["metrics"]["replicas"] == 2
    assert arts["metrics"]["validation_accuracy"] > 0.7
    assert (out / "model" / "1" / "saved_model.pb").is_file()
    assert "<svg" in (out / "training_curve").read_text()


@pytest.mark.parametrize(
    "distribution, message",
    [
        ({"backend": "slurm", "workers": 2, "image": "x"}, "backend'] must be one of"),
        ({"backend": "kubeflow", "workers": 1, "image": "x", "namespace": NS}, "workers must"),
        ({"backend": "kubeflow", "workers": 2, "image": "x"}, "needs ['namespace']"),
        ({"backend": "vertex", "workers": 2, "image": "x", "project": "p"}, "['location']"),
        ({"backend": "kubeflow", "workers": 2, "namespace": NS}, "'image'] is required"),
        ({"backend": "kubeflow", "workers": "2", "image": "x", "namespace": NS}, "'2'"),
        ({"backend": "kubeflow", "nodes": 2}, "unknown key(s) ['nodes']"),
    ],
)
def test_bad_distribution_exits_2_and_starts_nothing(api, splits, tmp_path, distribution,
                                                      message, caplog):  # fmt: skip
    def names() -> list[str]:
        items = cluster_jobs.trainjobs(api).api.list_namespaced_custom_object(
            *cluster_jobs.TRAINJOB[:2], NS, cluster_jobs.TRAINJOB[2])["items"]  # fmt: skip
        return [j["metadata"]["name"] for j in items]

    before = names()
    raw = step_input(tmp_path, splits, distribution)
    assert launch(launcher.run, ["--executor_input", json.dumps(raw)]) == EXIT_USER_ERROR
    assert message in caplog.text
    assert names() == before


def test_the_step_on_vertex_sends_the_custom_job_and_fails_with_vertex_reason(
    splits, tmp_path, caplog
):
    from kfpkit.testing.vertex_jobs import VertexCustomJobServer

    with VertexCustomJobServer() as server:
        distribution = {"backend": "vertex", "project": "kfpkit-test", "location": "us-east1",
                        "api_endpoint": server.url, "workers": 3, "machine_type": "n1-highmem-4",
                        "accelerator_type": "NVIDIA_L4", "accelerator_count": 1,
                        "image": "europe-docker.pkg.dev/p/kfpkit/train-gpu:v7",
                        "poll_interval": 0.1, "timeout": 60.0}  # fmt: skip
        raw = step_input(tmp_path, splits, distribution)

        def fail_when_created() -> None:
            deadline = time.monotonic() + 60
            while not server.jobs and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)
            reason = "The replica workerpool1-1 exited with a non-zero status of 1"
            server.set_state(next(iter(server.jobs)), "JOB_STATE_FAILED", reason)

        threading.Thread(target=fail_when_created, daemon=True).start()
        assert launch(launcher.run, ["--executor_input", json.dumps(raw)]) == 1
        (create,) = server.calls("POST", r"/customJobs$")
    assert create.path == "/v1/projects/kfpkit-test/locations/us-east1/customJobs"
    chief, workers = create.json()["jobSpec"]["workerPoolSpecs"]
    assert (chief["replicaCount"], workers["replicaCount"]) == ("1", "2")
    machine = {"machineType": "n1-highmem-4", "acceleratorType": "NVIDIA_L4", "acceleratorCount": 1}
    assert chief["machineSpec"] == machine == workers["machineSpec"]
    container = chief["containerSpec"]
    assert container["imageUri"] == "europe-docker.pkg.dev/p/kfpkit/train-gpu:v7"
    assert container["command"] == list(multiworker.WORKER_COMMAND)
    given = json.loads(container["args"][1])
    assert "distribution" not in given["inputs"]["parameterValues"]
    assert "workerpool1-1 exited with a non-zero status of 1" in caplog.text
    assert not (tmp_path / "executor_output.json").exists()
