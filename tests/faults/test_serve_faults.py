"""``kfpkit serve`` and its model server under faults, on real parts: the CLI as a child process
stopped by real signals (SIGTERM, SIGKILL), the process table and ``docker ps`` afterwards,
the request log and shadow report on disk; broken SavedModels; bad requests over real HTTP;
the server's output under load. The server runs in the train environment (TensorFlow, kserve).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kfpkit.serving.client import ServerProcess, server_args, v2_body

ROOT = Path(__file__).resolve().parents[2]
TRAIN_PYTHON = ROOT / ".venvs" / "train" / "bin" / "python"
ROW = {"AGEP": 33.0, "SEX": "2"}


def _processes_mentioning(text: str) -> dict[int, str]:
    """pid -> command line of every process whose command line holds ``text``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:  # gone meanwhile
                continue
            if text in cmd:
                found[int(entry.name)] = cmd
    return found


def _wait_until_gone(text: str, timeout: float) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while (left := _processes_mentioning(text)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def _logged_rows(folder: Path) -> int:
    files = sorted(folder.glob("*.parquet"))
    return sum(pq.read_metadata(f).num_rows for f in files)


def _post(url: str, body: bytes, content_type: str) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, body, {"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read()), dict(answer.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


def _predict(base: str, model: str = "candidate") -> None:
    body = json.dumps({"instances": [ROW]}).encode()
    status, answer, _ = _post(f"{base}/v1/models/{model}:predict", body, "application/json")
    assert status == 200 and len(answer["predictions"]) == 1, answer


class ServeCli:
    """``kfpkit serve ...`` in a child process, its output in a file."""

    def __init__(self, tmp_path: Path, *args: str):
        self.out = tmp_path / "serve.out"
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kfpkit.cli", "serve", *args], cwd=ROOT,
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def ready(self, timeout: float = 300) -> str:
        """The server's base URL once the CLI says it is ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"ready in .*: (http://127\.0\.0\.1:\d+)/v1/models/", self.output())
            if found:
                return found.group(1)
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.output()}"
            time.sleep(0.3)
        raise AssertionError(f"not ready in {timeout} s:\n{self.output()[-3000:]}")

    def stop(self, sig: int, timeout: float = 120) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def _kill_leftovers(marker: str) -> None:
    """What a failed test leaves: the servers it started (found by their unique model path)."""
    for pid in _processes_mentioning(marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_sigterm_stops_the_server_flushes_the_log_and_writes_the_shadow_report(candidate, tmp_path):
    model, shadow, logs = tmp_path / "primary", tmp_path / "shadow", tmp_path / "logs"
    shutil.copytree(candidate, model)
    shutil.copytree(candidate, shadow)
    cli = ServeCli(tmp_path, str(model), "--shadow", str(shadow), "--log-dir", str(logs),
                   "--runner", "python", "--python", str(TRAIN_PYTHON), "--port", "0")  # fmt: skip
    try:
        base = cli.ready()
        for _ in range(3):
            _predict(base, "primary")
        code = cli.stop(signal.SIGTERM)
        assert code == 0, cli.output()
        assert _wait_until_gone(str(model), 5) == {}, "the model server outlived the CLI"
    finally:
        if cli.proc.poll() is None:
            cli.proc.kill()
        _kill_leftovers(str(model))
    assert _logged_rows(logs / "primary") == 3
    assert "request log: 3 rows in" in cli.output()
    report = json.loads((logs / "shadow_report.json").read_text())
    assert report["requests_mirrored"] == 3 and report["rows_compared"] == 3
    assert "shadow: {" in cli.output()


def test_sigkill_of_the_cli_leaves_no_server_behind(candidate, tmp_path):
    """The CLI cannot clean up after SIGKILL: the server goes down with it (parent-death
    signal), still flushing its request log, instead of living on under pid 1."""
    model, logs = tmp_path / "primary", tmp_path / "logs"
    shutil.copytree(candidate, model)
    cli = ServeCli(tmp_path, str(model), "--log-dir", str(logs), "--runner", "python",
                   "--python", str(TRAIN_PYTHON), "--port", "0")  # fmt: skip
    try:
        base = cli.ready()
        _predict(base, "primary")
        _predict(base, "primary")
        assert cli.stop(signal.SIGKILL) == -signal.SIGKILL
        left = _wait_until_gone(str(model), 90)
        assert left == {}, f"left running after the CLI was killed: {left}"
    finally:
        _kill_leftovers(str(model))
    assert _logged_rows(logs / "primary") == 2


def test_sigterm_while_the_server_starts_exits_130_and_leaves_nothing(candidate, tmp_path):
    model = tmp_path / "primary"
    shutil.copytree(candidate, model)
    cli = ServeCli(tmp_path, str(model), "--runner", "python", "--python", str(TRAIN_PYTHON),
                   "--port", "0")  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(_processes_mentioning(str(model))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # the CLI and the server it started (loading TensorFlow)
        assert "ready in" not in cli.output()
        assert cli.stop(signal.SIGTERM) == 130, cli.output()
        assert _wait_until_gone(str(model), 5) == {}, "the starting server outlived the CLI"
    finally:
        if cli.proc.poll() is None:
            cli.proc.kill()
        _kill_leftovers(str(model))
    assert "[kfpkit serve] stopped by SIGTERM before it was done" in cli.output()


@pytest.mark.docker
def test_sigterm_stops_and_removes_the_container(candidate, tmp_path):
    from kfpkit import images

    ref = images.image("train")
    probe = subprocess.run(["docker", "image", "inspect", ref], capture_output=True)
    assert probe.returncode == 0, f"{ref} not built: run `make images`"
    logs = tmp_path / "logs"
    cli = ServeCli(tmp_path, str(candidate), "--log-dir", str(logs), "--port", "0")
    container = f"kfpkit-serve-{cli.proc.pid}"
    try:
        base = cli.ready()
        _predict(base)
        _predict(base)
        assert cli.stop(signal.SIGTERM) == 0, cli.output()
        listed = subprocess.run(["docker", "ps", "-a", "-q", "--filter", f"name=^{container}$"],
                                capture_output=True, text=True, check=True)  # fmt: skip
        assert listed.stdout.strip() == "", f"container {container} is still there"
    finally:
        if cli.proc.poll() is None:
            cli.proc.kill()
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    assert _logged_rows(logs / "candidate") == 2


@pytest.mark.parametrize("content", [b"", b"random"], ids=["empty", "random-bytes"])
@pytest.mark.parametrize("role", ["model", "shadow"])
def test_a_broken_saved_model_is_refused_with_exit_2_and_no_traceback(
    candidate, tmp_path, content, role
):
    broken = tmp_path / "broken"
    shutil.copytree(candidate, broken)
    data = os.urandom(4096) if content == b"random" else content
    (broken / "1" / "saved_model.pb").write_bytes(data)
    args = [str(broken)] if role == "model" else [str(candidate), "--shadow", str(broken)]
    for runner in (["--runner", "python", "--python", str(TRAIN_PYTHON)], []):  # docker: no start
        command = [sys.executable, "-m", "kfpkit.cli", "serve", *args, *runner, "--port", "0"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "Traceback" not in done.stdout + done.stderr
        what = "is empty (0 bytes)" if not data else "is not a SavedModel protocol buffer"
        named = "model" if role == "model" else "shadow candidate"
        assert f"kfpkit: error: {named} {str(broken)!r} version 1: saved_model.pb " in done.stderr
        assert what in done.stderr


def test_a_model_that_tensorflow_cannot_load_is_refused_naming_it(candidate, tmp_path):
    """Its saved_model.pb is sound, its variables are not: the server refuses it (exit 2) with
    TensorFlow's reason in one line, and the CLI passes that on."""
    broken = tmp_path / "broken"
    shutil.copytree(candidate, broken)
    for part in (broken / "1" / "variables").iterdir():
        part.write_bytes(b"not a checkpoint")
    done = subprocess.run([sys.executable, "-m", "kfpkit.cli", "serve", str(broken), "--runner",
                           "python", "--python", str(TRAIN_PYTHON), "--port", "0"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert f"kfpkit: error: model {str(broken)!r} version 1: TensorFlow cannot load it: " in (
        done.stderr
    )


@pytest.fixture(scope="module")
def server(candidate, tmp_path_factory):
    """The model server module itself, its whole output kept in a file."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    process = ServerProcess.python(str(TRAIN_PYTHON), server_args(str(candidate), port=0),
                                   log_path=str(log))  # fmt: skip
    process.start()
    process.output_file = log  # type: ignore[attr-defined]
    yield process
    process.stop()


def _output_lines(server) -> int:  # type: ignore[no-untyped-def]
    return len(server.output_file.read_text(errors="replace").splitlines())


def test_json_with_a_charset_is_json(server):
    body = json.dumps({"instances": [ROW]}).encode()
    url = f"{server.base_url}/v1/models/candidate:predict"
    status, answer, _ = _post(url, body, "application/json; charset=utf-8")
    assert status == 200 and len(answer["predictions"]) == 1, answer


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_a_body_sent_as_another_content_type_is_told_so(server, content_type, protocol):
    if protocol == "v1":
        body, path = {"instances": [ROW]}, "/v1/models/candidate:predict"
    else:
        body = v2_body([ROW], {"AGEP": "numeric", "SEX": "categorical"})
        path = "/v2/models/candidate/infer"
    status, answer, _ = _post(server.base_url + path, json.dumps(body).encode(), content_type)
    assert status == 415, answer
    assert answer["error"] == (
        f"Content-Type {content_type!r} is not JSON: send the body as application/json"
    )
    status, answer, _ = _post(server.base_url + path, json.dumps(body).encode(),
                              "application/json; charset=utf-8")  # fmt: skip
    assert status == 200, answer


def test_get_on_predict_is_method_not_allowed(server):
    for path in ("/v1/models/candidate:predict", "/v1/models/other:predict"):
        try:
            urllib.request.urlopen(server.base_url + path, timeout=30)
            raise AssertionError("GET was answered")
        except urllib.error.HTTPError as e:
            assert e.code == 405 and e.headers["Allow"] == "POST", e.read()
            assert json.loads(e.read())["error"] == f"{path} takes POST only, not GET"
    with urllib.request.urlopen(f"{server.base_url}/v1/models/candidate", timeout=30) as ready:
        assert json.loads(ready.read())["ready"] is True  # the model's GET route is untouched


def test_requests_print_nothing(server):
    """No access-log line per request (the server turns the access log off), and no traceback
    for a refused request: under load these were most of the server's output."""
    _predict(server.base_url)  # first-use warnings, once
    before = _output_lines(server)
    for _ in range(50):
        _predict(server.base_url)
    bad = json.dumps({"instances": [{"AGEP": "old", "SEX": "1"}]}).encode()
    for _ in range(10):
        url = f"{server.base_url}/v1/models/candidate:predict"
        status, answer, _ = _post(url, bad, "application/json")
        assert status == 400 and "'AGEP'" in answer["error"], answer
    time.sleep(0.5)  # the reader thread copies the output to the file
    printed = server.output_file.read_text(errors="replace").splitlines()[before:]
    assert len(printed) == 0, "\n".join(printed[:20])
