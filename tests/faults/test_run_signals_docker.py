"""``kfpkit run training --local --emulator`` stopped by a real SIGTERM (what ``kill``, systemd,
Kubernetes and CI send), in a child process: afterwards no step container (``docker ps``), no
emulator (the process table), no kfp.local workspace, the run recorded as CANCELLED, exit 130.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kfpkit import images
from kfpkit.local_run import RUN_LABEL

pytestmark = [pytest.mark.docker, pytest.mark.emulator]
ROOT = Path(__file__).resolve().parents[2]
TRAIN_LAUNCHER = "kfpkit.components.train.launcher"


def _processes() -> dict[int, str]:
    """pid -> command line of every process (the process table, from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:  # gone meanwhile
                continue
    return {pid: cmd.decode(errors="replace") for pid, cmd in found.items()}


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


class Run:
    """``kfpkit run training --local --emulator`` in a child process of its own."""

    def __init__(self, tmp_path: Path, rows: int):
        self.root = tmp_path / "root"
        self.tmpdir = tmp_path / "tmp"  # the child's TMPDIR: where kfp.local's workspace goes
        self.tmpdir.mkdir()
        self.out = tmp_path / "out.log"
        self.err = tmp_path / "err.log"
        cmd = [sys.executable, "-m", "kfpkit.cli", "run", "training", "--local", "--emulator",
               "--rows", str(rows), "--pipeline-root", str(self.root),
               "--param", "tuning_trials=0"]  # fmt: skip
        env = {**os.environ, "TMPDIR": str(self.tmpdir), "PYTHONUNBUFFERED": "1"}
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err)

    def output(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def wait_for(self, what: str, check, timeout: float):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"exited {self.proc.returncode} before {what}:\n" + (
                self.output()[-4000:]
            )
            found = check()
            if found:
                return found
            time.sleep(0.5)
        self.proc.kill()
        pytest.fail(f"no {what} after {timeout:.0f}s:\n{self.output()[-4000:]}")

    def terminate(self, timeout: float = 120) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"still running {timeout:.0f}s after SIGTERM:\n{self.output()[-4000:]}")

    def emulators(self) -> list[int]:
        return [p for p in _children(self.proc.pid) if "bqemulator" in _processes().get(p, "")]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _assert_emulator_gone(emulator_pids: list[int], port: int | None) -> None:
    table = _processes()
    assert not [p for p in emulator_pids if p in table], "emulator still running"
    if port is not None:
        assert not [c for c in table.values() if f"--rest-port {port}" in c]
        assert not _port_open(port), f"something still listens on {port}"


def test_sigterm_while_the_emulator_starts_stops_it(tmp_path):
    run = Run(tmp_path, rows=20_000)
    emulators = run.wait_for("emulator process", run.emulators, 120)
    assert run.terminate() == 130, run.output()
    _assert_emulator_gone(emulators, None)
    assert "kfpkit: cancelled: received signal SIGTERM" in run.output()
    assert not list(run.tmpdir.glob("kfp-workspace-*"))


def test_sigterm_during_a_step_stops_container_and_emulator_and_records_cancelled(tmp_path):
    import docker

    client = docker.from_env()
    train_image = images.image("train")
    assert client.images.list(name=train_image), f"{train_image} not built: run `make images`"
    run = Run(tmp_path, rows=20_000)
    emulators = run.wait_for("emulator process", run.emulators, 120)
    port = int(run.wait_for(
        "emulator port", lambda: re.findall(r"at http://127\.0\.0\.1:(\d+)", run.output()), 300
    )[0])  # fmt: skip
    label = f"{RUN_LABEL}={run.proc.pid}"

    def train_step_running():  # type: ignore[no-untyped-def]
        # the train step, by its launcher: it imports TensorFlow and trains for several
        # seconds, so the signal lands inside it (tfdv-validate-splits on 20k rows can end
        # between the poll that saw it running and the signal)
        running = client.containers.list(filters={"label": label, "status": "running"})
        return [c for c in running if TRAIN_LAUNCHER in " ".join(c.attrs["Args"])]

    run.wait_for("running train container", train_step_running, 600)
    started = time.monotonic()
    assert run.terminate() == 130, run.output()
    took = time.monotonic() - started

    assert client.containers.list(all=True, filters={"label": label}) == []  # docker ps -a
    _assert_emulator_gone(emulators, port)
    assert not list(run.tmpdir.glob("kfp-workspace-*"))
    (run_dir,) = [p for p in run.root.iterdir() if p.name.startswith("kfpkit-training")]
    outcome_file = run_dir / "record-outcome" / "outcome" / "outcome.json"
    outcome = json.loads(outcome_file.read_text())
    assert outcome["state"] == "CANCELLED" and not outcome["succeeded"]
    assert outcome["finished_steps"] == ["bigquery-split", "katib-tune", "tfdv-validate-splits"]
    assert outcome["failed_steps"] == ["train"]
    assert "Cancelled" in outcome["step_errors"]["train"]
    assert "SIGTERM" in outcome["error_message"]
    # the stopped step left no output that looks complete
    assert not (run_dir / "train" / "executor_output.json").exists()
    failure = json.loads((run_dir / "train" / "kfpkit_failure.json").read_text())
    assert failure["exit_code"] == 130
    text = run.output()
    assert "recorded outcome: CANCELLED, failed: train" in text
    assert str(outcome_file) in text
    assert took < 60, f"{took:.0f}s from SIGTERM to exit"
    # tracked as KILLED (MLflow's word for a cancelled run), with what the split measured
    from kfpkit.tracking import open_tracker

    tracker = open_tracker("mlflow", tracking_uri=str(run.root / "registry" / "mlflow.db"))
    tracked = tracker.get(run_dir.name)
    assert tracked.status == "KILLED" and f"recorded run {run_dir.name}" in text
    assert tracked.metrics["bigquery-split/rows_total"] == 20_000
