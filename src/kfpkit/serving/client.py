"""Drives a local model server: start it as a child process, wait until it answers, send V1
and V2 requests, stop it. Standard library only, so the SDK's ``kfpkit serve`` (no
TensorFlow, no kserve) uses it as well as the kserve_push step and the tests."""

from __future__ import annotations

import http.client
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kfpkit import processes

SERVER_MODULE = "kfpkit.serving.server"
NUMERIC = "numeric"
CATEGORICAL = "categorical"


class Client:
    """One keep-alive HTTP connection to the server (use one per thread)."""

    def __init__(self, host: str, port: int, timeout: float = 30.0):
        self.host, self.port, self.timeout = host, port, timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str = "application/json") -> tuple[int, Any]:  # fmt: skip
        """(status, decoded JSON or text); reconnects once if the connection was dropped."""
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                headers = {"Content-Type": content_type} if body is not None else {}
                self._conn.request(method, path, body=body, headers=headers)
                response = self._conn.getresponse()
                raw = response.read()
                status = response.status
                if response.getheader("connection", "").lower() == "close":
                    self.close()
                break
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def post(self, path: str, payload: Any) -> tuple[int, Any]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.request("POST", path, body)

    def predict_v1(self, model: str, rows: Sequence[Mapping[str, Any]]) -> list[float]:
        status, body = self.post(f"/v1/models/{model}:predict", v1_body(rows))
        if status != 200:
            raise RuntimeError(f"V1 predict answered {status}: {body}")
        return list(body["predictions"])

    def infer_v2(self, model: str, rows: Sequence[Mapping[str, Any]],
                 kinds: Mapping[str, str]) -> list[float]:  # fmt: skip
        status, body = self.post(f"/v2/models/{model}/infer", v2_body(rows, kinds))
        if status != 200:
            raise RuntimeError(f"V2 infer answered {status}: {body}")
        return list(body["outputs"][0]["data"])

    def status(self) -> dict[str, Any]:
        status, body = self.request("GET", "/kfpkit/v1/status")
        if status != 200:
            raise RuntimeError(f"status answered {status}: {body}")
        return dict(body)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def v1_body(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"instances": [dict(r) for r in rows]}


def v2_body(rows: Sequence[Mapping[str, Any]], kinds: Mapping[str, str]) -> dict[str, Any]:
    """One V2 input per feature: BYTES for categorical, FP64 for numeric features."""
    return {
        "inputs": [
            {
                "name": name,
                "shape": [len(rows)],
                "datatype": "BYTES" if kind == CATEGORICAL else "FP64",
                "data": [r[name] for r in rows],
            }
            for name, kind in kinds.items()
        ]
    }


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def server_args(
    model_dir: str,
    name: str = "",
    port: int = 0,
    shadow_dir: str = "",
    log_dir: str = "",
    extra: Sequence[str] = (),
) -> list[str]:
    """Arguments of the server module (after ``python3 -m kfpkit.serving.server``)."""
    args = ["--model-dir", model_dir, "--port", str(port)]
    for flag, value in (("--name", name), ("--shadow-dir", shadow_dir), ("--log-dir", log_dir)):
        if value:
            args += [flag, value]
    return args + list(extra)


class ServerProcess:
    """The server as a child process; ``start`` returns once it answers for its model.

    ``command`` runs the server module (``[python, "-m", SERVER_MODULE, ...]`` or a
    ``docker run`` of it); its output is kept (the last lines, for error messages) and
    copied to ``log_path`` when given.
    """

    def __init__(self, command: Sequence[str], log_path: str | None = None,
                 env: Mapping[str, str] | None = None):  # fmt: skip
        self.command = list(command)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.process: subprocess.Popen | None = None
        self.listening: dict[str, Any] | None = None
        self.stopped: dict[str, Any] | None = None
        self.refused: dict[str, Any] | None = None  # the server's own user error, if any
        self.tail: deque[str] = deque(maxlen=60)
        self.started_at = 0.0
        self.ready_seconds = 0.0
        self._reader: threading.Thread | None = None

    @classmethod
    def python(cls, python: str, args: Sequence[str], log_path: str | None = None,
               env: Mapping[str, str] | None = None) -> ServerProcess:  # fmt: skip
        return cls([python, "-m", SERVER_MODULE, *args], log_path, env)

    @property
    def host(self) -> str:
        assert self.listening is not None
        return str(self.listening["host"])

    @property
    def port(self) -> int:
        assert self.listening is not None
        return int(self.listening["port"])

    @property
    def model(self) -> str:
        assert self.listening is not None
        return str(self.listening["model"])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self, timeout: float = 30.0) -> Client:
        return Client(self.host, self.port, timeout)

    def output(self) -> str:
        return "".join(self.tail)

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        log = open(self.log_path, "a", encoding="utf-8") if self.log_path else None  # noqa: SIM115
        try:
            for line in self.process.stdout:
                self.tail.append(line)
                if log is not None:
                    log.write(line)
                    log.flush()
                if line.startswith('{"'):
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if event.get("kfpkit_server") == "listening":
                        self.listening = event
                    elif event.get("kfpkit_server") == "stopped":
                        self.stopped = event
                    elif event.get("kfpkit_server") == "refused":
                        self.refused = event
        finally:
            if log is not None:
                log.close()

    def start(self, timeout: float = 300.0) -> ServerProcess:
        """Starts the server; RuntimeError with its output if it exits or is not ready."""
        self.started_at = time.monotonic()
        env = {**os.environ, **(self.env or {}), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            start_new_session=True,  # a Ctrl-C of the caller reaches the server only through stop()
            preexec_fn=_stop_with_parent(),
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

        def exited(process: subprocess.Popen) -> Exception:
            assert self._reader is not None
            self._reader.join(5)
            if self.refused is not None:  # e.g. a broken model: the server said what
                return ValueError(self.refused.get("error") or "the server refused to start")
            return RuntimeError(
                f"the model server exited with code {process.returncode} before it was "
                f"ready:\n{self.output()[-4000:]}"
            )

        def not_ready() -> Exception:
            self.stop()
            return RuntimeError(f"the model server was not ready within {timeout:.0f}s:\n"
                                f"{self.output()[-4000:]}")  # fmt: skip

        processes.wait_ready(
            [self.process],
            lambda: self.listening is not None and self._ready(),
            timeout,
            exited,
            not_ready,
            interval=0.1,
        )
        self.ready_seconds = time.monotonic() - self.started_at
        return self

    def _ready(self) -> bool:
        client = self.client(timeout=5)
        try:
            status, body = client.request("GET", f"/v1/models/{self.model}")
            return status == 200 and isinstance(body, dict) and body.get("ready") is True
        except OSError:
            return False
        finally:
            client.close()

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        if self.process is None:
            return None
        processes.stop(self.process, timeout)
        if self._reader is not None:
            self._reader.join(10)
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _stop_with_parent() -> Callable[[], None] | None:
    """On Linux, a child that gets SIGTERM when the thread that started it dies, even by
    SIGKILL: the server (or the ``docker run`` client, which passes the signal on to its
    container) stops cleanly instead of living on under pid 1. Only for a start from the main
    thread: the signal follows the starting thread, not the process."""
    on_linux = sys.platform.startswith("linux")
    if not on_linux or threading.current_thread() is not threading.main_thread():
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here: the child only calls it
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig, parent = 1, os.getpid()

    def set_parent_death_signal() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl: no signal would come
            os.kill(os.getpid(), signal.SIGTERM)

    return set_parent_death_signal
