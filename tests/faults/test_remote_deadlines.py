"""``kfpkit submit`` / ``schedule`` / ``runs`` against services that accept the TCP connection
and never answer (real sockets on 127.0.0.1), the Vertex AI stand-in without a service
account, and values refused before anything is sent."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials

from kfpkit.cli import main
from kfpkit.submit import vertex
from kfpkit.testing.pipeline_servers import VertexTestServer

ROOT = Path(__file__).resolve().parents[2]
KUBEFLOW_YAML = ROOT / "compiled" / "kubeflow" / "training.yaml"
VERTEX_YAML = ROOT / "compiled" / "vertex" / "training.yaml"
PARAMS = ["--param=project=p", "--param=source_table=p.d.t", "--param=destination_dataset=d",
          "--param=serving_model_uri=gs://b/models/employment"]  # fmt: skip
DEADLINE = 3.0


class SilentServer:
    """Accepts every TCP connection and never sends a byte (a hung service or proxy)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


class HealthyThenSilent(http.server.BaseHTTPRequestHandler):
    """Answers Kubeflow Pipelines' healthz, then hangs on every other request."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.startswith("/apis/v2beta1/healthz"):
            body = json.dumps({"commit_sha": "x", "tag_name": "2.5.0"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        time.sleep(3600)

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture()
def sdk_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Credentials the SDK already holds (as after a notebook's aiplatform.init); the
    process-wide config is put back afterwards."""
    from google.cloud.aiplatform import initializer

    saved = dict(vars(initializer.global_config))
    vertex.aiplatform().init(credentials=AnonymousCredentials())
    yield
    vars(initializer.global_config).clear()
    vars(initializer.global_config).update(saved)


def _vertex_args(endpoint: str) -> list[str]:
    return ["--target", "vertex", "--project", "proj", "--location", "europe-west4",
            "--api-endpoint", endpoint, "--timeout", str(DEADLINE)]  # fmt: skip


def _timed(argv: list[str]) -> tuple[int, float]:
    start = time.monotonic()
    code = main(argv)
    return code, time.monotonic() - start


@pytest.mark.parametrize(
    "command",
    [
        ["submit", str(VERTEX_YAML), "--pipeline-root", "gs://bucket/r", *PARAMS],
        ["schedule", str(VERTEX_YAML), "--pipeline-root", "gs://bucket/r", "--cron",
         "0 6 * * *", *PARAMS],  # fmt: skip
        ["runs"],
    ],
    ids=["submit", "schedule", "runs"],
)
def test_vertex_silent_endpoint_fails_within_the_deadline(silent, sdk_config, capsys, command):
    code, took = _timed([*command, *_vertex_args(silent.url)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"Vertex AI at {silent.url} did not answer within {DEADLINE:g} s" in err
    assert took < DEADLINE + 5, f"{took:.1f}s"
    assert silent.held, "the command never connected: the test proves nothing"


@pytest.mark.parametrize(
    "command",
    [["submit", str(KUBEFLOW_YAML), *PARAMS], ["runs"]],
    ids=["submit", "runs"],
)
def test_kubeflow_silent_endpoint_fails_within_the_deadline(silent, capsys, command):
    code, took = _timed([*command, "--target", "kubeflow", "--host", silent.url,
                         "--timeout", str(DEADLINE)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1, err
    # the health check's own 5 s timeout is longer than the deadline: the deadline speaks
    assert f"Kubeflow Pipelines at {silent.url} did not answer within {DEADLINE:g} s" in err
    assert took < DEADLINE + 5, f"{took:.1f}s"


def test_kubeflow_that_hangs_after_its_health_check_fails_within_the_deadline(capsys):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HealthyThenSilent)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        code, took = _timed(["submit", str(KUBEFLOW_YAML), *PARAMS, "--target", "kubeflow",
                             "--host", host, "--timeout", str(DEADLINE)])  # fmt: skip
    finally:
        server.shutdown()
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"Kubeflow Pipelines at {host} did not answer within {DEADLINE:g} s" in err
    assert took < DEADLINE + 5, f"{took:.1f}s"


@pytest.fixture()
def stand_in(monkeypatch: pytest.MonkeyPatch, sdk_config) -> Iterator[VertexTestServer]:
    with VertexTestServer() as server:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
        yield server


def test_vertex_without_a_service_account_looks_nothing_up(stand_in, capsys, caplog):
    """The SDK would look up the project number in Cloud Resource Manager (unreachable here:
    60 s of retries and a RetryError traceback) to grant the default service account roles
    on a bucket it creates; kfpkit skips that set-up and sends the job alone."""
    code, took = _timed(["submit", str(VERTEX_YAML), "--pipeline-root", "gs://bucket/r",
                         *PARAMS, *_vertex_args(stand_in.url)])  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    assert took < 15, f"{took:.1f}s"
    assert "RetryError" not in out.err + caplog.text and "Traceback" not in out.err
    (job,) = stand_in.calls("POST", "/pipelineJobs")
    assert "serviceAccount" not in job.json()  # Vertex AI's default service account
    assert [r.path for r in stand_in.requests if not r.path.startswith("/v1/")] == []


@pytest.mark.parametrize("location", ["", " ", "US", "us-central1 ", "global"])
@pytest.mark.parametrize("command", ["submit", "schedule", "runs"])
def test_vertex_refuses_a_bad_location_before_sending(stand_in, capsys, command, location):
    argv = {
        "submit": ["submit", str(VERTEX_YAML), "--pipeline-root", "gs://bucket/r", *PARAMS],
        "schedule": ["schedule", str(VERTEX_YAML), "--pipeline-root", "gs://bucket/r",
                     "--cron", "0 6 * * *", *PARAMS],  # fmt: skip
        "runs": ["runs"],
    }[command]
    args = _vertex_args(stand_in.url)
    args[args.index("--location") + 1] = location
    assert main([*argv, *args]) == 2
    err = capsys.readouterr().err
    assert "location must be a Vertex AI region such as 'us-central1'" in err
    assert f"not {location!r}" in err
    assert stand_in.requests == []


@pytest.mark.parametrize(
    ("compiled", "target", "other"),
    [(KUBEFLOW_YAML, "vertex", "kubeflow"), (VERTEX_YAML, "kubeflow", "vertex")],
)
def test_a_file_compiled_for_the_other_platform_is_refused(stand_in, capsys, compiled, target,
                                                           other):  # fmt: skip
    args = _vertex_args(stand_in.url) if target == "vertex" else [
        "--target", "kubeflow", "--host", stand_in.url]  # fmt: skip
    code = main(["submit", str(compiled), "--pipeline-root", "gs://bucket/r", *PARAMS, *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"was compiled for target '{other}' (platform {other}), not for {target}" in err
    assert stand_in.requests == []


@pytest.mark.parametrize("timeout", ["0", "-1", "nan"])
def test_a_bad_timeout_is_refused(stand_in, capsys, timeout):
    args = _vertex_args(stand_in.url)
    args[args.index("--timeout") + 1] = timeout
    assert main(["runs", *args]) == 2
    assert "timeout must be a number of seconds > 0" in capsys.readouterr().err
    assert stand_in.requests == []
