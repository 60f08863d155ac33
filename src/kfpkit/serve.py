"""``kfpkit serve``: a local model server in one command, from the SDK (no TensorFlow here).

The SDK environment stays free of TensorFlow and kserve (they need protobuf 6 and 2 GB; a
notebook's kfp may pin otherwise), so the server runs where that stack already is:

- ``--runner docker`` (default): the train image, the very image the ``kserve_push`` step
  runs and infra-validates in, with ``docker run --network host`` (the server binds the
  host's 127.0.0.1 only, so nothing is exposed) and the model (and log) folders mounted at
  the same paths, read-only for models.
- ``--runner python --python PATH``: any interpreter that has kfpkit, TensorFlow and kserve
  (e.g. ``.venvs/train/bin/python``), for development without Docker.

``--smoke-test N`` starts the server, sends N rows of ``--data`` one request each over V1
and V2, prints the first answers and the latency (p50/p99), then stops it: what ``make run``
ends with.
"""

from __future__ import annotations

import contextlib
import math
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfpkit.serving.client import (
    CATEGORICAL,
    SERVER_MODULE,
    ServerProcess,
    percentile,
    server_args,
)
from kfpkit.serving.loading import check_saved_model

RUNNERS = ("docker", "python")


@dataclass(frozen=True)
class ServeOptions:
    model_dir: str
    name: str = ""
    shadow_dir: str = ""
    log_dir: str = ""
    port: int = 8080
    runner: str = "docker"
    python: str = ""
    image: str = ""
    # an online experiment: NAME=MODEL_DIR[:WEIGHT] each (instead of model_dir), and the
    # server's routing / feedback flags as given (``--routing bandit`` ...)
    variants: tuple[str, ...] = ()
    experiment_flags: tuple[str, ...] = ()
    schema: str = ""
    # ``:explain``'s baseline (JSON, evaluate's explanation.json or Parquet) and method
    explain_baseline: str = ""
    explain_method: str = ""


def _existing_dir(path: str, what: str) -> str:
    full = os.path.abspath(path)
    if not os.path.isdir(full):
        raise ValueError(f"{what} {path!r} is not a directory")
    return full


def command(options: ServeOptions) -> list[str]:
    """The command that runs the server for these options."""
    if options.runner not in RUNNERS:
        raise ValueError(f"--runner {options.runner!r}: expected one of {RUNNERS}")
    if bool(options.model_dir) == bool(options.variants):
        raise ValueError("give MODEL_DIR or --variant NAME=MODEL_DIR[:WEIGHT] (repeatable)")
    model = _existing_dir(options.model_dir, "MODEL_DIR") if options.model_dir else ""
    shadow = _existing_dir(options.shadow_dir, "--shadow") if options.shadow_dir else ""
    if options.runner == "python" and not options.python:
        raise ValueError("--runner python needs --python PATH (an interpreter with kserve)")
    # a broken saved_model.pb is refused here, in a second, not after the server started
    if model:
        check_saved_model(model, "model")
    if shadow:
        check_saved_model(shadow, "shadow candidate")
    folders, variant_args = [model] if model else [], []
    if options.variants:
        from kfpkit.serving.routing import check_variants, parse_variant

        specs = [parse_variant(v) for v in options.variants]
        check_variants(specs)
        for spec in specs:
            folder = _existing_dir(spec.model_dir, f"--variant {spec.name}")
            check_saved_model(folder, f"variant {spec.name!r}")
            folders.append(folder)
            variant_args += ["--variant", f"{spec.name}={folder}:{spec.weight!r}"]
    schema = os.path.abspath(options.schema) if options.schema else ""
    if schema and not os.path.exists(schema):
        raise ValueError(f"--schema {options.schema!r} does not exist")
    logs = os.path.abspath(options.log_dir) if options.log_dir else ""
    extra = [*variant_args, *options.experiment_flags, *(["--schema", schema] if schema else [])]
    explain_baseline = os.path.abspath(options.explain_baseline) if options.explain_baseline \
        else ""  # fmt: skip
    if explain_baseline and not os.path.exists(explain_baseline):
        raise ValueError(f"--explain-baseline {options.explain_baseline!r} does not exist")
    extra += ["--explain-baseline", explain_baseline] if explain_baseline else []
    extra += ["--explain-method", options.explain_method] if options.explain_method else []
    args = server_args(model, options.name, options.port, shadow, logs, extra)
    if not model:
        args = args[2:]  # no --model-dir: the variants are the models
    if options.runner == "python":
        return [options.python, "-m", SERVER_MODULE, *args]
    from kfpkit import images

    mounts = [m for folder in folders for m in ("-v", f"{folder}:{folder}:ro")]
    if schema:
        mounts += ["-v", f"{schema}:{schema}:ro"]
    if explain_baseline:
        mounts += ["-v", f"{explain_baseline}:{explain_baseline}:ro"]
    if shadow:
        mounts += ["-v", f"{shadow}:{shadow}:ro"]
    if logs:
        os.makedirs(logs, exist_ok=True)
        mounts += ["-v", f"{logs}:{logs}"]
    return [
        "docker", "run", "--rm", "--network", "host", "--name", f"kfpkit-serve-{os.getpid()}",
        "--user", f"{os.getuid()}:{os.getgid()}", *mounts,
        options.image or images.image("train"), "python3", "-m", SERVER_MODULE, *args,
    ]  # fmt: skip


def request_rows(data: str, features: Sequence[dict[str, str]], rows: int) -> list[dict]:
    """The first ``rows`` rows of a Parquet file or folder, as the model's inputs."""
    import pyarrow.dataset as ds

    names = [f["name"] for f in features]
    try:
        dataset = ds.dataset(data, format="parquet")
        missing = [n for n in names if n not in dataset.schema.names]
        if missing:
            raise ValueError(f"--data {data!r} lacks the model's feature column(s) {missing}")
        table = dataset.head(rows, columns=names)
    except (OSError, ValueError) as e:
        raise ValueError(f"--data {data!r}: {e}") from e
    out = []
    for record in table.to_pylist():
        row: dict[str, Any] = {}
        for f in features:
            v = record[f["name"]]
            if f["kind"] == CATEGORICAL:
                row[f["name"]] = None if v is None else str(v)
            else:
                row[f["name"]] = None if v is None or math.isnan(float(v)) else float(v)
        out.append(row)
    return out


def smoke_test(server: ServerProcess, data: str, rows: int, show: int = 5) -> dict[str, Any]:
    client = server.client()
    status = client.status()
    payload = request_rows(data, status["features"], rows)
    kinds = {f["name"]: f["kind"] for f in status["features"]}
    report: dict[str, Any] = {"rows": len(payload), "model": status["model_name"],
                              "version": status["model_version"]}  # fmt: skip
    client.predict_v1(server.model, payload[:1])  # the first request of a connection is slower
    client.infer_v2(server.model, payload[:1], kinds)
    for protocol in ("v1", "v2"):
        answers, latencies = [], []
        for row in payload:
            started = time.perf_counter()
            if protocol == "v1":
                answers += client.predict_v1(server.model, [row])
            else:
                answers += client.infer_v2(server.model, [row], kinds)
            latencies.append((time.perf_counter() - started) * 1000)
        report[protocol] = {
            "answers": answers,
            "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99),
        }
    for i, row in enumerate(payload[:show]):
        shown = ", ".join(f"{k}={v}" for k, v in list(row.items())[:4])
        print(f"[kfpkit serve] row {i} ({shown}, ...): V1 {report['v1']['answers'][i]:.4f}, "
              f"V2 {report['v2']['answers'][i]:.4f}")  # fmt: skip
    for protocol in ("v1", "v2"):
        r = report[protocol]
        print(f"[kfpkit serve] {protocol}: {len(payload)} requests of 1 row: p50 "
              f"{r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms")  # fmt: skip
    client.close()
    return report


def serve(options: ServeOptions, smoke_rows: int = 0, data: str = "",
          start_timeout: float = 300.0) -> int:  # fmt: skip
    cmd = command(options)
    if smoke_rows and not data:
        raise ValueError("--smoke-test needs --data (a Parquet file or folder of rows)")
    if smoke_rows and not Path(data).exists():
        raise ValueError(f"--data {data!r} does not exist")
    print(f"[kfpkit serve] starting: {shlex.join(cmd)}", flush=True)
    server = ServerProcess(cmd)
    interrupted = False
    with StopSignals() as stop:
        try:
            server.start(start_timeout)
            base = server.base_url
            print(f"[kfpkit serve] ready in {server.ready_seconds:.1f} s: {base}/v1/models/"
                  f"{server.model}:predict and {base}/v2/models/{server.model}/infer "
                  f"(status: {base}/kfpkit/v1/status)", flush=True)  # fmt: skip
            if smoke_rows:
                smoke_test(server, data, smoke_rows)
            else:
                print("[kfpkit serve] Ctrl-C or SIGTERM stops it", flush=True)
                while server.process is not None and server.process.poll() is None:
                    time.sleep(0.5)
        except KeyboardInterrupt:
            # serving until stopped is the normal end; a start or smoke test cut short is not
            interrupted = smoke_rows > 0 or server.listening is None
        finally:
            stop.stopping = True  # a second signal must not cut the shutdown short
            code = server.stop()
            if options.runner == "docker":
                _remove_container(cmd)
    if server.stopped is not None:
        shadow, log = server.stopped.get("shadow"), server.stopped.get("request_log")
        if shadow:
            print(f"[kfpkit serve] shadow: {shadow}")
        if log:
            print(f"[kfpkit serve] request log: {log['rows_written']} rows in "
                  f"{log['files_written']} file(s) under {log['directory']}")  # fmt: skip
    if interrupted:
        print(f"[kfpkit serve] stopped by {stop.received} before it was done", file=sys.stderr)
        return 130
    if code not in (0, None):
        print(server.output()[-3000:], file=sys.stderr)
        return int(code)
    return 0


class StopSignals:
    """SIGTERM (``kill``, systemd, Kubernetes, CI) and SIGHUP (the terminal closed) stop
    ``kfpkit serve`` as Ctrl-C does: the first one raises KeyboardInterrupt, so the server is
    stopped, its request log flushed and its shadow report written; once ``stopping``, further
    signals are noted and ignored. Only the main thread can set handlers: elsewhere a no-op."""

    SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP")
                    if hasattr(signal, n))  # fmt: skip

    def __init__(self) -> None:
        self.stopping = False
        self.received = ""
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        self.received = signal.Signals(signum).name
        if not self.stopping:
            self.stopping = True
            raise KeyboardInterrupt

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


def _remove_container(cmd: Sequence[str]) -> None:
    """``docker run --rm`` removes the container when it stops; if the docker client was
    killed before (stop()'s timeout), the container would live on: remove it by name."""
    name = cmd[cmd.index("--name") + 1]
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):  # never hide why it stopped
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60, check=False)
