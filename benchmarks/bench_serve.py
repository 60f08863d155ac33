"""Local serving: throughput and latency under concurrent load, against two baselines.

Same model, same rows, same machine, same run:
- ``in-process``: the SavedModel's ``serving_default`` called directly, one call per
  request-sized batch, no HTTP (the limit);
- ``plain kserve.Model``: the obvious wrapper, KServe's ``ModelServer`` with default
  settings, a synchronous ``predict`` that turns the request into tensors and calls the
  signature (what one writes from KServe's custom-model docs);
- ``kfpkit``: ``kfpkit.serving`` (validation, the batcher, loopback socket),
  without and with request logging to Parquet.

Load: ``--clients`` client processes, each one keep-alive connection sending requests
back to back for ``--seconds``; latency per request at the client; throughput in rows/s.
Batch 1 and 64, V1 and V2. Also each server's start-up time (process start to ready) and
resident memory after the load. Clients and server share the machine's cores.

Run in the train environment:
    .venvs/train/bin/python benchmarks/bench_serve.py [--seconds 4] [--clients 4]
Writes benchmarks/results_serve.json and prints a Markdown table.

``--experiment`` measures instead what an online experiment costs: the same model served
plainly (one model, no logging) and as an experiment (two variants, Thompson bandit routing,
request log, feedback log; clients send a feedback for every ``--feedback-every``-th answer),
both servers up at once and measured in alternating rounds (A, B, A, B, ...), so that load
from other jobs falls on both alike. Latency is of the predict requests (V1, batch 1).
Writes benchmarks/results_serve_experiment.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent / "components" / "train" / "tests" / "data" / "employment_6000.parquet"

PLAIN_SERVER = """
import sys
import kserve
import tensorflow as tf
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

class Plain(kserve.Model):
    def __init__(self, name, path):
        super().__init__(name)
        self.path = path
        self.load()

    def load(self):
        self.loaded = tf.saved_model.load(self.path)
        self.fn = self.loaded.signatures["serving_default"]
        self.dtypes = {k: s.dtype for k, s in self.fn.structured_input_signature[1].items()}
        self.ready = True

    def predict(self, payload, headers=None):
        if isinstance(payload, InferRequest):
            feed = {i.name: tf.constant(i.as_numpy().reshape(-1), self.dtypes[i.name])
                    for i in payload.inputs}
        else:
            rows = payload["instances"]
            feed = {k: tf.constant([r[k] for r in rows], self.dtypes[k]) for k in rows[0]}
        out = list(self.fn(**feed).values())[0].numpy().reshape(-1).tolist()
        if isinstance(payload, InferRequest):
            return InferResponse(payload.id or "none", self.name,
                                 [InferOutput("output_0", [len(out)], "FP32", out)])
        return {"predictions": out}

path, http_port, grpc_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sys.argv = sys.argv[:1]
kserve.ModelServer(http_port=http_port, grpc_port=grpc_port).start([Plain("employment", path)])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_model(root: Path) -> Path:
    import pyarrow.parquet as pq

    from kfpkit.training import trainer

    table, start = pq.read_table(SAMPLE), 0
    for name, rows in (("train", 4000), ("validation", 1000), ("test", 1000)):
        (root / name).mkdir(parents=True)
        pq.write_table(table.slice(start, rows), root / name / "data.parquet")
        start += rows
    trainer.train(trainer.TrainRequest(
        train_path=str(root / "train"), validation_path=str(root / "validation"),
        model_dir=str(root / "model"), label_column="employed", exclude_columns=("id",),
        hyperparameters=trainer.Hyperparameters(epochs=2),
    ))  # fmt: skip
    return root / "model"


def load_rows(root: Path, specs: list[Any]) -> list[dict[str, Any]]:
    from kfpkit import tabular
    from kfpkit.components.kserve_push.infra_validation import request_rows

    table = tabular.read_split(str(root / "test"), "test", [s.name for s in specs])
    return request_rows(table, specs)


def _client(args: tuple) -> list[float]:
    """One client process: back-to-back requests for ``seconds``; latencies in ms."""
    host, port, path, bodies, seconds = args
    from kfpkit.serving.client import Client

    client, latencies, i = Client(host, port, timeout=60), [], 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        status, body = client.request("POST", path, bodies[i % len(bodies)])
        if status != 200:
            raise RuntimeError(f"{status}: {body}")
        latencies.append((time.perf_counter() - started) * 1000)
        i += 1
    client.close()
    return latencies


def _experiment_client(args: tuple) -> list[float]:
    """Like :func:`_client`, reading each answer's request id and sending a feedback for every
    ``feedback_every``-th one (0: none); latencies of the predict requests only."""
    host, port, path, bodies, seconds, feedback_every = args
    from kfpkit.serving.client import Client

    client, latencies, i = Client(host, port, timeout=60), [], 0
    feedback_path = path.replace(":predict", "/feedback")
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        status, body = client.request("POST", path, bodies[i % len(bodies)])
        latencies.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise RuntimeError(f"{status}: {body}")
        i += 1
        if feedback_every and i % feedback_every == 0:
            status, answer = client.post(
                feedback_path, {"request_id": body["request_id"], "label": i % 2}
            )
            if status != 200:
                raise RuntimeError(f"feedback {status}: {answer}")
    client.close()
    return latencies


def experiment_overhead(
    model: Path, rows: list[dict], kinds: dict[str, str], work: Path, clients: int,
    seconds: float, rounds: int, feedback_every: int,
) -> dict[str, Any]:  # fmt: skip
    """Plain (one model, no logs) vs experiment (2 variants, bandit, logs, feedback),
    alternating rounds of ``seconds`` each."""
    from kfpkit.serving.client import ServerProcess, percentile

    plain_args = ["--model-dir", str(model), "--name", "employment", "--port", "0"]
    experiment_args = [
        "--variant", f"a={model}", "--variant", f"b={model}", "--routing", "bandit",
        "--name", "employment", "--port", "0", "--log-dir", str(work / "experiment-logs"),
    ]  # fmt: skip
    servers = {
        "plain": ServerProcess.python(sys.executable, plain_args).start(),
        "experiment": ServerProcess.python(sys.executable, experiment_args).start(),
    }
    path = "/v1/models/employment:predict"
    bodies = bodies_for(rows, 1, "v1", kinds)
    latencies: dict[str, list[float]] = {label: [] for label in servers}
    per_round: dict[str, list[float]] = {label: [] for label in servers}  # p99 of each round
    elapsed = dict.fromkeys(servers, 0.0)
    try:
        with mp.get_context("spawn").Pool(clients) as pool:
            for label, server in servers.items():  # warm both connection paths
                every = feedback_every if label == "experiment" else 0
                _experiment_client((server.host, server.port, path, bodies[:5], 0.5, every))
            for _ in range(rounds):
                for label, server in servers.items():
                    every = feedback_every if label == "experiment" else 0
                    job = (server.host, server.port, path, bodies, seconds, every)
                    started = time.perf_counter()
                    per_client = pool.map(_experiment_client, [job] * clients)
                    elapsed[label] += max(time.perf_counter() - started, seconds)
                    latencies[label] += [x for c in per_client for x in c]
                    per_round[label].append(percentile([x for c in per_client for x in c], 99))
        status = servers["experiment"].client().status()
    finally:
        for server in servers.values():
            server.stop()
    out: dict[str, Any] = {"rounds": rounds, "seconds_per_round": seconds, "clients": clients,
                           "feedback_every": feedback_every}  # fmt: skip
    for label, values in latencies.items():
        out[label] = {
            "requests": len(values),
            "requests_per_second": round(len(values) / elapsed[label], 1),
            "p50_ms": round(percentile(values, 50), 3),
            "p99_ms": round(percentile(values, 99), 3),
        }
    out["p99_overhead"] = round(out["experiment"]["p99_ms"] / out["plain"]["p99_ms"] - 1, 4)
    out["p50_overhead"] = round(out["experiment"]["p50_ms"] / out["plain"]["p50_ms"] - 1, 4)
    # other jobs' load drifts during a run: the ratio within each (A, B) pair of rounds too
    ratios = sorted(b / a for a, b in zip(per_round["plain"], per_round["experiment"], strict=True))
    out["p99_overhead_median_of_rounds"] = round(ratios[len(ratios) // 2] - 1, 4)
    out["p99_per_round_ms"] = {k: [round(v, 2) for v in vs] for k, vs in per_round.items()}
    out["throughput_ratio"] = round(
        out["experiment"]["requests_per_second"] / out["plain"]["requests_per_second"], 4
    )
    out["experiment_status"] = {"routing": status["routing"]["arms"],
                                "feedback": status["feedback"]}  # fmt: skip
    return out


def bodies_for(rows: list[dict], batch: int, protocol: str, kinds: dict[str, str]) -> list[bytes]:
    from kfpkit.serving.client import v1_body, v2_body

    out = []
    for start in range(0, len(rows) - batch + 1, batch):
        part = rows[start : start + batch]
        doc = v1_body(part) if protocol == "v1" else v2_body(part, kinds)
        out.append(json.dumps(doc).encode())
    return out[:200]


def load(host: str, port: int, rows: list[dict], kinds: dict[str, str], batch: int,
         protocol: str, clients: int, seconds: float) -> dict[str, float]:  # fmt: skip
    from kfpkit.serving.client import percentile

    path = ("/v1/models/employment:predict" if protocol == "v1"
            else "/v2/models/employment/infer")  # fmt: skip
    bodies = bodies_for(rows, batch, protocol, kinds)
    _client((host, port, path, bodies[:5], 0.5))  # warm the connection path
    with mp.get_context("spawn").Pool(clients) as pool:
        started = time.perf_counter()
        per_client = pool.map(_client, [(host, port, path, bodies, seconds)] * clients)
        elapsed = time.perf_counter() - started
    latencies = [x for c in per_client for x in c]
    return {
        "requests": len(latencies),
        "rows_per_second": round(len(latencies) * batch / max(elapsed, seconds), 1),
        "p50_ms": round(percentile(latencies, 50), 3),
        "p99_ms": round(percentile(latencies, 99), 3),
    }


def in_process(model: Path, rows: list[dict], batch: int, seconds: float) -> dict[str, float]:
    import numpy as np
    import pyarrow as pa

    from kfpkit import tabular
    from kfpkit.serving.client import percentile

    serving = tabular.ServingModel(str(model))
    batches = [
        tabular.feature_arrays(pa.Table.from_pylist(rows[i : i + batch]), serving.feature_specs)
        for i in range(0, len(rows) - batch + 1, batch)
    ][:200]
    serving.predict(batches[0])
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        serving.predict(batches[len(latencies) % len(batches)])
        latencies.append((time.perf_counter() - started) * 1000)
    total = sum(latencies) / 1000
    assert np.isfinite(total)
    return {
        "requests": len(latencies),
        "rows_per_second": round(len(latencies) * batch / total, 1),
        "p50_ms": round(percentile(latencies, 50), 3),
        "p99_ms": round(percentile(latencies, 99), 3),
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def wait_plain(port: int, process: Any, timeout: float = 300) -> float:
    from kfpkit.serving.client import Client

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError("the plain kserve server exited")
        try:
            status, body = Client("127.0.0.1", port, 2).request("GET", "/v1/models/employment")
            if status == 200 and body.get("ready"):
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the plain kserve server was not ready")


def main() -> None:
    import subprocess

    from kfpkit import tabular
    from kfpkit.runtime.model_versions import latest_version_dir
    from kfpkit.serving.client import ServerProcess, server_args

    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--out", default="")
    p.add_argument("--experiment", action="store_true", help="only the experiment overhead")
    p.add_argument("--rounds", type=int, default=6, help="--experiment: rounds per server")
    p.add_argument("--feedback-every", type=int, default=4)
    a = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    model = train_model(work)
    specs = tabular.ServingModel(str(model)).feature_specs
    rows = load_rows(work, specs)
    kinds = {s.name: s.kind for s in specs}
    if a.experiment:
        result = experiment_overhead(model, rows, kinds, work, a.clients, a.seconds, a.rounds,
                                     a.feedback_every)  # fmt: skip
        result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                             "date": time.strftime("%Y-%m-%d", time.gmtime())}  # fmt: skip
        out = Path(a.out or HERE / "results_serve_experiment.json")
        out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        print(json.dumps({k: v for k, v in result.items() if k != "experiment_status"}, indent=2))
        return
    a.out = a.out or str(HERE / "results_serve.json")
    cases = [(b, proto) for b in (1, 64) for proto in ("v1", "v2")]
    machine = {"cpus": os.cpu_count(), "python": platform.python_version()}
    results: dict[str, Any] = {"machine": machine, "seconds": a.seconds, "clients": a.clients,
                               "runs": {}}  # fmt: skip
    runs = results["runs"]
    for batch in (1, 64):
        runs[f"in-process b{batch}"] = in_process(model, rows, batch, a.seconds)
        print(f"in-process b{batch}: {runs[f'in-process b{batch}']}", flush=True)

    port, grpc = free_port(), free_port()
    version = latest_version_dir(str(model))
    plain = subprocess.Popen([sys.executable, "-c", PLAIN_SERVER, version, str(port), str(grpc)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        results["plain_start_seconds"] = round(wait_plain(port, plain), 2)
        for batch, proto in cases:
            key = f"plain {proto} b{batch}"
            runs[key] = load("127.0.0.1", port, rows, kinds, batch, proto, a.clients, a.seconds)
            print(f"{key}: {runs[key]}", flush=True)
        results["plain_rss_mb"] = rss_mb(plain.pid)
    finally:
        plain.terminate()
        plain.wait(30)

    for label, extra in (("kfpkit", {}), ("kfpkit+log", {"log_dir": str(work / "logs")})):
        server = ServerProcess.python(
            sys.executable, server_args(str(model), name="employment", port=0, **extra)
        ).start()
        try:
            results[f"{label}_start_seconds"] = round(server.ready_seconds, 2)
            for batch, proto in cases:
                if label == "kfpkit+log" and proto == "v2":
                    continue
                key = f"{label} {proto} b{batch}"
                runs[key] = load(server.host, server.port, rows, kinds, batch, proto,
                                 a.clients, a.seconds)  # fmt: skip
                print(f"{key}: {runs[key]}", flush=True)
            assert server.process is not None
            results[f"{label}_rss_mb"] = rss_mb(server.process.pid)
        finally:
            server.stop()
    Path(a.out).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print_table(results)


def print_table(results: dict[str, Any]) -> None:
    runs = results["runs"]
    print("\n| run | rows/s | p50 ms | p99 ms |\n|---|---|---|---|")
    for key, r in runs.items():
        print(f"| {key} | {r['rows_per_second']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |")
    for label in ("plain", "kfpkit", "kfpkit+log"):
        print(f"{label}: start {results.get(f'{label}_start_seconds')} s, "
              f"RSS {results.get(f'{label}_rss_mb')} MB")  # fmt: skip
    for proto in ("v1", "v2"):
        ours, plain = runs[f"kfpkit {proto} b1"], runs[f"plain {proto} b1"]
        print(f"{proto} b1 p99: kfpkit {ours['p99_ms']:.2f} ms vs plain {plain['p99_ms']:.2f} ms "
              f"(goal: at most half)")  # fmt: skip
        share = (
            runs[f"kfpkit {proto} b64"]["rows_per_second"]
            / runs["in-process b64"]["rows_per_second"]
        )
        print(f"{proto} b64 throughput: {share:.0%} of in-process (goal >= 50%)")
    for batch in (1, 64):
        cost = (
            1
            - runs[f"kfpkit+log v1 b{batch}"]["rows_per_second"]
            / runs[f"kfpkit v1 b{batch}"]["rows_per_second"]
        )
        print(f"request logging costs {cost:.0%} of v1 b{batch} throughput (goal <= 10%)")


if __name__ == "__main__":
    main()
