"""The Katib backend against a real kube-apiserver + etcd with Katib's Experiment and Trial
CRDs: the launcher creates the Experiment, the test plays Katib's controller by writing status
through the /status subresource. Never run against Katib's own controllers (see README)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from kfpkit.components.katib_tune import experiment as katib
from kfpkit.components.katib_tune import launcher
from kfpkit.jobs import kube
from kfpkit.runtime.executor import launch
from kfpkit.runtime.identity import executor_identity, step_key
from kfpkit.testing import executor_input

CRDS = Path(__file__).parent / "crds"
NS = "tuning"
OUTPUTS = {"metrics": "system.Metrics", "report": "system.HTML"}
SPACE = [
    {"name": "learning_rate", "type": "double", "min": 1e-4, "max": 0.1, "log": True},
    {"name": "hidden_units", "type": "categorical", "values": ["64,32", "128"]},
]


@pytest.fixture(scope="module")
def api(kube_server, tmp_path_factory):
    for crd in ("experiments", "trials"):
        kube_server.install_crd(CRDS / f"{crd}.yaml")
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


def step_input(tmp_path: Path, run: str, **params) -> dict:
    base = f"gs://kfpkit-test/{run}"
    values = {
        "backend": "katib",
        "namespace": NS,
        "search_space": SPACE,
        "max_trial_count": 4,
        "parallel_trial_count": 2,
        "algorithm": "tpe",
        "poll_interval": 0.2,
        "timeout": 60,
        "fixed_hyperparameters": {"epochs": 3},
        "trial_image": "ghcr.io/kfpkit/train:test",
        "label_column": "employed",
        "exclude_columns": ["id"],
        **params,
    }
    inputs = {
        "train_data": ("system.Dataset", f"{base}/train"),
        "validation_data": ("system.Dataset", f"{base}/validation"),
    }
    return executor_input(tmp_path / run, values, OUTPUTS, inputs, ["best_hyperparameters"])


def experiment_name(raw: dict) -> str:
    identity = executor_identity(raw)
    return kube.object_name(launcher.EXPERIMENT_PREFIX, identity, katib.MAX_EXPERIMENT_NAME)


def experiments(api) -> list[dict]:
    return katib.experiments(api).api.list_namespaced_custom_object(
        katib.GROUP, katib.VERSION, NS, katib.PLURAL
    )["items"]


class Controller(threading.Thread):
    """Plays Katib: waits for the Experiment, runs trials by writing their status, then
    finishes the Experiment (Succeeded with the optimal trial, or Failed with a reason)."""

    def __init__(self, api, name: str, outcome: str = "Succeeded", delay: float = 0.3):
        super().__init__(daemon=True)
        self.objects = katib.experiments(api)
        self.name, self.outcome, self.delay = name, outcome, delay
        self.seen: dict | None = None
        self.error: BaseException | None = None

    def status(self, plural: str, name: str, status: dict) -> None:
        self.objects.api.patch_namespaced_custom_object_status(
            katib.GROUP, katib.VERSION, NS, plural, name, {"status": status}
        )

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # noqa: BLE001 - the test reads it
            self.error = e

    def _run(self) -> None:
        deadline = time.monotonic() + 30
        while (exp := self.objects.find(NS, self.name)) is None:
            assert time.monotonic() < deadline, "the Experiment never appeared"
            time.sleep(0.1)
        self.seen = exp
        self.status(
            katib.PLURAL,
            self.name,
            {
                "conditions": [
                    {"type": "Created", "status": "True"},
                    {"type": "Running", "status": "True"},
                ]
            },
        )
        time.sleep(self.delay)
        if self.outcome == "Running":
            return
        trials = [
            ("0.001", "64,32", 0.71, "Succeeded"),
            ("0.02", "128", 0.83, "Succeeded"),
            ("0.0002", "128", 0.55, "EarlyStopped"),
            ("0.09", "64,32", None, "Failed"),
        ]
        for i, (lr, units, auc, state) in enumerate(trials):
            trial_name = f"{self.name}-t{i}"
            self.objects.api.create_namespaced_custom_object(
                katib.GROUP,
                katib.VERSION,
                NS,
                katib.TRIAL_PLURAL,
                {
                    "apiVersion": "kubeflow.org/v1beta1",
                    "kind": "Trial",
                    "metadata": {"name": trial_name, "labels": {katib.EXPERIMENT_LABEL: self.name}},
                    "spec": {
                        "parameterAssignments": [
                            {"name": "learning_rate", "value": lr},
                            {"name": "hidden_units", "value": units},
                        ]
                    },
                },
            )
            status = {"conditions": [{"type": state, "status": "True"}]}
            if auc is not None:
                status["observation"] = {
                    "metrics": [
                        {
                            "name": "validation-auc",
                            "latest": str(auc),
                            "max": str(auc),
                            "min": str(auc),
                        }
                    ]
                }
            self.status(katib.TRIAL_PLURAL, trial_name, status)
        if self.outcome == "Failed":
            self.status(
                katib.PLURAL,
                self.name,
                {
                    "conditions": [
                        {
                            "type": "Failed",
                            "status": "True",
                            "reason": "ExperimentMaxFailedTrialsReached",
                            "message": "Experiment has failed because max failed count has reached",
                        }
                    ]
                },
            )
            return
        self.status(
            katib.PLURAL,
            self.name,
            {
                "trials": 4,
                "trialsSucceeded": 2,
                "trialsFailed": 1,
                "trialsEarlyStopped": 1,
                "conditions": [
                    {"type": "Succeeded", "status": "True", "reason": "ExperimentMaxTrialsReached"}
                ],
                "currentOptimalTrial": {
                    "bestTrialName": f"{self.name}-t1",
                    "parameterAssignments": [
                        {"name": "learning_rate", "value": "0.02"},
                        {"name": "hidden_units", "value": "128"},
                    ],
                    "observation": {"metrics": [{"name": "validation-auc", "latest": "0.83"}]},
                },
            },
        )


def run_step(raw: dict) -> int:
    return launch(launcher.run, ["--executor_input", json.dumps(raw)])


def outputs_of(raw: dict) -> tuple[dict, dict]:
    out = json.loads(Path(raw["outputs"]["outputFile"]).read_text())
    best = json.loads(
        Path(raw["outputs"]["parameters"]["best_hyperparameters"]["outputFile"]).read_text()
    )
    return best, out["artifacts"]["metrics"]["artifacts"][0]["metadata"]


def test_create_wait_and_succeed_with_the_optimal_trial(api, tmp_path):
    raw = step_input(tmp_path, "run-ok", early_stopping="medianstop")
    controller = Controller(api, experiment_name(raw))
    controller.start()
    assert run_step(raw) == 0
    controller.join(10)
    assert controller.error is None
    # what reached the API server is what Katib's webhook accepts, labelled as this step's
    stored = controller.seen
    assert katib.webhook_errors(stored) == []
    assert stored["metadata"]["labels"][kube.OWNER_LABEL] == step_key(executor_identity(raw))
    command = stored["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"][
        "containers"
    ][0]["command"]
    assert "gs://kfpkit-test/run-ok/train" in command
    best, metrics = outputs_of(raw)
    assert best == {"epochs": 3, "learning_rate": 0.02, "hidden_units": "128"}
    assert metrics["best_validation-auc"] == 0.83 and metrics["trials_pruned"] == 1
    assert metrics["trials_failed"] == 1 and metrics["best_trial"].endswith("-t1")
    page = (tmp_path / "run-ok" / "report").read_text()
    assert "<script" not in page and page.count("<tr>") == 1 + 4


def test_restart_resumes_the_same_experiment(api, tmp_path):
    raw = step_input(tmp_path, "run-restart")
    name = experiment_name(raw)
    # attempt 1 created its Experiment and died (pod evicted): no cleanup ran
    spec = launcher.spec_from(launcher.Executor(raw))
    doc = katib.build_experiment(
        spec,
        name,
        NS,
        "ghcr.io/kfpkit/train:test",
        launcher.trial_data(launcher.Executor(raw), uris=True),
        owner=step_key(executor_identity(raw)),
    )
    first, _ = katib.experiments(api).create_or_resume(NS, doc, step_key(executor_identity(raw)))
    controller = Controller(api, name)
    controller.start()
    assert run_step(raw) == 0  # attempt 2
    controller.join(10)
    same = [e for e in experiments(api) if e["metadata"]["name"] == name]
    assert len(same) == 1 and same[0]["metadata"]["uid"] == first["metadata"]["uid"]
    assert outputs_of(raw)[0]["learning_rate"] == 0.02


def test_an_experiment_of_the_same_name_not_ours_is_left_alone(api, tmp_path):
    raw = step_input(tmp_path, "run-foreign")
    name = experiment_name(raw)
    katib.experiments(api).create_or_resume(
        NS, {"metadata": {"name": name}, "spec": {}}, owner="someone-else"
    )
    assert run_step(raw) == 1
    assert katib.experiments(api).find(NS, name)["metadata"]["labels"][kube.OWNER_LABEL] == (
        "someone-else"
    )
    assert not (tmp_path / "run-foreign" / "executor_output.json").exists()


def test_failure_carries_katibs_reason_and_leaves_no_outputs(api, tmp_path, caplog):
    raw = step_input(tmp_path, "run-fail")
    Controller(api, experiment_name(raw), outcome="Failed").start()
    with pytest.raises(RuntimeError, match="ExperimentMaxFailedTrialsReached: Experiment has"):
        launcher.run(launcher.Executor(raw))
    assert run_step(raw) == 1
    assert not (tmp_path / "run-fail" / "executor_output.json").exists()
    assert not (tmp_path / "run-fail" / "report").exists()


def test_timeout_deletes_the_experiment(api, tmp_path):
    raw = step_input(tmp_path, "run-slow", timeout=1.5)
    Controller(api, experiment_name(raw), outcome="Running").start()
    assert run_step(raw) == 1
    assert katib.experiments(api).find(NS, experiment_name(raw)) is None


def test_sigterm_deletes_the_experiment(api, tmp_path):
    raw = step_input(tmp_path, "run-cancel")
    name = experiment_name(raw)
    Controller(api, name, outcome="Running").start()

    def stop_when_created() -> None:
        deadline = time.monotonic() + 30
        while katib.experiments(api).find(NS, name) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    threading.Thread(target=stop_when_created, daemon=True).start()
    try:
        assert run_step(raw) == 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert katib.experiments(api).find(NS, name) is None
    assert not (tmp_path / "run-cancel" / "executor_output.json").exists()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"namespace": "Team_A"}, "namespace 'Team_A'"),
        ({"service_account": "Not Valid"}, "service_account 'Not Valid'"),
        ({"search_space": []}, "search_space is empty"),
        ({"algorithm": "hyperband"}, "algorithm 'hyperband'"),
        ({"search_space": [{**SPACE[0], "max": 50}]}, "out of range"),
        ({"poll_interval": 0}, "poll_interval must be > 0"),
    ],
)
def test_bad_input_creates_nothing(api, tmp_path, params, message):
    raw = step_input(tmp_path, "run-bad", **params)
    before = len(experiments(api))
    with pytest.raises(ValueError, match=message):
        launcher.run(launcher.Executor(raw))
    assert len(experiments(api)) == before
    assert run_step(raw) == 2
