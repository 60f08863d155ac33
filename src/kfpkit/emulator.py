"""Start and stop the local BigQuery emulator (the ``bqemulator`` package, its own venv).

Used by ``kfpkit run --local``, the tests and the benchmarks. The emulator is started with
``BQEMU_GCS_LOCAL_ROOT=/`` so ``gs://a/b/c`` is the local path ``/a/b/c``: this is what lets
``EXPORT DATA`` write a split's Parquet files straight into a local artifact folder, and a
load job read a local Parquet file, with no bytes passing through a client.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path

from google.cloud import bigquery

from kfpkit import processes
from kfpkit.bigquery import make_client

DEFAULT_VENV = Path(".venvs/emu")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the emulator's process before exec: Linux sends it SIGTERM when its parent dies,
    so even a ``kill -9`` of kfpkit leaves no emulator listening (no-op elsewhere). Linux ties
    it to the starting thread: start the emulator from a thread that outlives it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def emulator_venv() -> Path:
    return Path(os.environ.get("KFPKIT_BQEMULATOR_VENV", DEFAULT_VENV)).absolute()


class Emulator:
    """A running bqemulator on 127.0.0.1 (in memory unless ``data_dir`` is given)."""

    def __init__(
        self,
        project: str = "kfpkit-demo",
        rest_port: int = 0,
        grpc_port: int = 0,
        data_dir: str | None = None,
        log_path: str | None = None,
    ):
        self.project = project
        self.rest_port = rest_port or _free_port()
        self.grpc_port = grpc_port or _free_port()
        self.data_dir = data_dir
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def start(self, timeout: float = 60.0) -> Emulator:
        venv = emulator_venv()
        binary = venv / "bin" / "bqemulator"
        if not binary.exists():
            raise RuntimeError(
                f"BigQuery emulator not found at {binary}; run tools/bqemulator/setup.sh "
                "(or `make setup`), or set KFPKIT_BQEMULATOR_VENV"
            )
        cmd = [
            str(binary),
            "start",
            "--rest-host",
            "127.0.0.1",
            "--rest-port",
            str(self.rest_port),
            "--grpc-port",
            str(self.grpc_port),
            "--project",
            self.project,
        ]
        if self.data_dir:
            cmd += ["--persistent", "--data-dir", self.data_dir]
        # HOME points DuckDB at the extensions setup.sh placed in the venv (no downloads).
        env = {**os.environ, "BQEMU_GCS_LOCAL_ROOT": "/", "HOME": str(venv / "home")}
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )
        try:
            self._wait_ready(timeout)
        except BaseException:  # not ready, or a signal while waiting: no emulator left behind
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        log = f"; see {self.log_path}" if self.log_path else ""
        processes.wait_ready(
            [self._proc],
            self._answers_ready,
            timeout,
            exited=lambda p: RuntimeError(
                f"BigQuery emulator exited with code {p.returncode}{log}"
            ),
            not_ready=lambda: RuntimeError(
                f"BigQuery emulator not ready on {self.endpoint} after {timeout:.0f}s"
            ),
            interval=0.3,
        )

    def _answers_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/readyz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc:
            processes.stop(proc, timeout=15)

    def client(self) -> bigquery.Client:
        return make_client(self.project, location="", endpoint=self.endpoint)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
