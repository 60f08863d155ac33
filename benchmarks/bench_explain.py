"""Feature attributions on the demo: time, completeness and stability for 1,000 rows, the
top features, and the latency of ``:explain`` on the model server.

Model: the online replay's frozen model A (trained on 2015 by the train component's runtime,
``.cache/online_replay/models/A``, made by bench_online_replay.py; ``--model`` for another).
Rows: the 2017 rows of the demo (``.cache/demo/employment.parquet``), 1,000 drawn at random
(seed 0), the baseline their medians and most frequent values, as evaluate does.

1. ``kfpkit.explain`` sampled Shapley (the demo model reads 15 categorical strings: no
   gradient there) with 2, 10 (default) and 50 feature orders per row: seconds, model rows
   run, the largest completeness gap, and how far the global importance (mean
   |attribution|) at 2 and 10 orders is from the one at 50 (largest relative difference over
   the features whose importance is at least 1 % of the top one).
2. Integrated gradients on the only numeric input (AGEP) is not an explanation of this
   model; it is timed on a numeric-only twin question instead: the gradient pass of 1,000
   rows x 50 steps through the same signature (what integrated gradients cost per row).
3. ``POST /v1/models/<name>:explain`` on ``kfpkit.serving.server`` (a child process on
   127.0.0.1) started with ``--explain-baseline`` (the same baseline): one client, one row a
   request, ``--requests`` requests; p50/p99 latency, and of ``:predict`` for comparison.

Run in the train environment: ``.venvs/train/bin/python benchmarks/bench_explain.py``
(about 2 min on 2 cores). Writes benchmarks/results_explain.json, prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kfpkit import tabular
from kfpkit.explain import attributions as attr
from kfpkit.explain import baseline as baselines
from kfpkit.serving.client import ServerProcess, percentile, server_args

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / ".cache/online_replay/models/A"
DATA = ROOT / ".cache/demo/employment.parquet"
RESULTS = ROOT / "benchmarks/results_explain.json"
ROWS = 1000
PATHS = (2, 10, 50)


def sample(model: tabular.ServingModel, rows: int) -> dict[str, np.ndarray]:
    table = pq.read_table(DATA)
    table = table.filter(pc.equal(table["year"], 2017))
    pick = np.sort(np.random.default_rng(0).choice(table.num_rows, rows, replace=False))
    return tabular.feature_arrays(table.take(pick), model.feature_specs)


def relative_gap(found: dict[str, float], reference: dict[str, float]) -> float:
    top = max(reference.values())
    kept = [k for k, v in reference.items() if v >= 0.01 * top]
    return max(abs(found[k] - reference[k]) / reference[k] for k in kept)


def measure_attributions(model: tabular.ServingModel, features: dict, baseline: dict) -> dict:
    out: dict[str, Any] = {"shapley": {}}
    count = len(model.feature_specs)
    for paths in PATHS:
        started = time.perf_counter()
        found = attr.attribute(model, features, baseline, attr.Settings(paths=paths))
        seconds = time.perf_counter() - started
        out["shapley"][paths] = {
            "seconds": round(seconds, 2),
            "model_rows": len(found.predictions) * paths * (count - 1) + len(found.predictions),
            "max_completeness_gap": float(np.abs(found.completeness_gap()).max()),
            "importance": found.importance(),
            "baseline_prediction": found.baseline_prediction,
        }
    reference = out["shapley"][PATHS[-1]]["importance"]
    for paths in PATHS[:-1]:
        gap = relative_gap(out["shapley"][paths]["importance"], reference)
        out["shapley"][paths]["importance_gap_to_50"] = round(gap, 4)
    # integrated gradients' cost: the gradient pass of rows x 50 points through the signature
    rows = len(next(iter(features.values())))
    repeated = {k: np.tile(v, attr.DEFAULT_STEPS) for k, v in features.items()}
    started = time.perf_counter()
    model.gradients(repeated)
    out["gradient_pass_seconds"] = round(time.perf_counter() - started, 2)
    out["gradient_pass_rows"] = rows * attr.DEFAULT_STEPS
    return out


def measure_server(model_dir: Path, baseline: dict, rows: list[dict], requests: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        baseline_file = Path(tmp) / "baseline.json"
        baseline_file.write_text(json.dumps(baseline))
        args = server_args(str(model_dir), name="employment",
                           extra=["--explain-baseline", str(baseline_file)])  # fmt: skip
        server = ServerProcess.python(sys.executable, args, str(Path(tmp) / "server.log")).start()
        try:
            client = server.client()
            out = {}
            for verb in ("predict", "explain"):
                latencies = []
                for i in range(requests + 10):
                    body = json.dumps({"instances": [rows[i % len(rows)]]}).encode()
                    started = time.perf_counter()
                    status, answer = client.request("POST", f"/v1/models/employment:{verb}", body)
                    elapsed = (time.perf_counter() - started) * 1000
                    assert status == 200, answer
                    if i >= 10:  # the first ones warm up
                        latencies.append(elapsed)
                out[verb] = {"requests": requests, "p50_ms": round(percentile(latencies, 50), 2),
                             "p99_ms": round(percentile(latencies, 99), 2)}  # fmt: skip
            return out
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(MODEL))
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    model = tabular.ServingModel(args.model)
    features = sample(model, args.rows)
    baseline = baselines.from_arrays(features, model.feature_specs)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "model": os.path.relpath(model.path, ROOT),
        "rows": args.rows,
        "features": len(model.feature_specs),
        "baseline": baseline,
    }
    results.update(measure_attributions(model, features, baseline))
    json_rows = [
        {s.name: (None if s.kind != tabular.CATEGORICAL and np.isnan(v) else
                  (str(v) if s.kind == tabular.CATEGORICAL else float(v)))
         for s in model.feature_specs for v in [features[s.name][i]]}
        for i in range(50)
    ]  # fmt: skip
    results["server"] = measure_server(Path(args.model), baseline, json_rows, args.requests)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    default = results["shapley"][attr.DEFAULT_PATHS]
    print(f"## Attributions, {args.rows} rows, {results['features']} features "
          f"({results['machine']}, {results['date']})\n")  # fmt: skip
    print("| feature orders | seconds | model rows | max completeness gap | "
          "importance vs 50 orders |\n|---|---|---|---|---|")  # fmt: skip
    for paths, found in results["shapley"].items():
        print(
            f"| {paths} | {found['seconds']} | {found['model_rows']:,} | "
            f"{found['max_completeness_gap']:.1e} | {found.get('importance_gap_to_50', '')} |"
        )
    print(f"\nGradient pass (integrated gradients' cost) of {results['gradient_pass_rows']:,} "
          f"rows: {results['gradient_pass_seconds']} s\n")  # fmt: skip
    print("| feature | mean abs attribution (10 orders) | baseline |\n|---|---|---|")
    for name, value in list(default["importance"].items())[:8]:
        print(f"| {name} | {value:.4f} | {baseline[name]} |")
    server = results["server"]
    print(f"\n:explain (1 row) p50 {server['explain']['p50_ms']} ms, p99 "
          f"{server['explain']['p99_ms']} ms; :predict p50 {server['predict']['p50_ms']} ms, "
          f"p99 {server['predict']['p99_ms']} ms ({args.requests} requests each)")  # fmt: skip


if __name__ == "__main__":
    main()
