"""monitor_serving benchmark: one window of 1,000,000 served rows (goal: <= 30 s on 2 cores).

Runs in the tfdv environment (``.venvs/tfdv/bin/python benchmarks/bench_monitor.py``; ``make
bench`` does). The served log is the demo data's rows upsampled to ``--rows`` (seeded; a
bootstrap sample, so every distribution is the demo's), written in the log contract's
layout as 10 request files with a stand-in prediction (the 2015 employment rate of each
education level) and the true label sent back as feedback for ``--labelled`` of the rows.
The training statistics are 2015's rows. Then, with TFDV imported once:

- step: the launcher's ``run`` (read_served with the feedback join, statistics of the
  features and predictions, skew and drift, performance, every output written), median of
  ``--reps``; and its parts: the read, the statistics, the comparisons and the rest;
- cold: the launcher as the container runs it (``python -m ...launcher``, a new process that
  imports TFDV), once.

Prints a markdown summary and writes ``benchmarks/results_monitor.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics as pystats
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from kfpkit import demo_data  # noqa: E402

t0 = time.perf_counter()
import tensorflow_data_validation  # noqa: E402, F401

IMPORT_S = time.perf_counter() - t0

from kfpkit.components.monitor_serving import launcher  # noqa: E402
from kfpkit.components.monitor_serving.monitor import (  # noqa: E402
    Settings,
    answered,
    compare,
    performance,
    window_statistics,
)
from kfpkit.runtime import executor  # noqa: E402
from kfpkit.serving.served_logs import read_served  # noqa: E402
from kfpkit.testing import launcher_input  # noqa: E402
from kfpkit.testing import served_logs as sl  # noqa: E402
from kfpkit.tfdv import artifacts  # noqa: E402
from kfpkit.tfdv.in_process import statistics_of_table  # noqa: E402
from kfpkit.tfdv.validation import Thresholds  # noqa: E402

FEATURES = ["AGEP", *demo_data.CATEGORICALS]
DAY = datetime(2026, 1, 1, tzinfo=UTC)
OUTPUTS = {"statistics": "system.Artifact", "report": "system.HTML",
           "metrics": "system.Metrics", "monitoring": "system.Artifact"}  # fmt: skip
GOAL_S = 30.0


def served_log(rows: int, labelled: float, folder: Path, seed: int = 0) -> dict:
    demo = pq.read_table(demo_data.demo_parquet())
    train = demo.filter(pc.equal(demo["year"], 2015))
    rates = train.group_by("SCHL").aggregate([("employed", "mean")])
    model = dict(zip(rates["SCHL"].to_pylist(), rates["employed_mean"].to_pylist(), strict=True))
    table = demo_data.upsample(demo, rows, seed=seed)
    n = table.num_rows
    rng = np.random.default_rng(seed)
    times = np.datetime64(DAY.replace(tzinfo=None), "us") + np.sort(
        rng.integers(0, 86_400_000_000, n)
    ).astype("timedelta64[us]")
    ids = np.char.add("r", np.arange(n).astype(str))
    scores = [model.get(s, 0.5) for s in table["SCHL"].to_pylist()]
    keep = rng.random(n) < labelled
    requests, feedback = sl.served_rows(table, FEATURES, "employed", scores, times, ids,
                                        latency_ms=rng.lognormal(1.0, 0.3, n), labelled=keep,
                                        feedback_delay_s=60)  # fmt: skip
    sl.write_experiment(folder, requests, feedback, files=10)
    stats_dir = folder.parent / "training"
    stats_dir.mkdir()
    (stats_dir / artifacts.STATISTICS_FILE).write_bytes(
        statistics_of_table(train).SerializeToString()
    )
    size = sum(p.stat().st_size for p in folder.rglob("*.parquet"))
    return {"rows": n, "labelled_rows": int(keep.sum()), "log_mb": round(size / 1e6, 1),
            "training": str(stats_dir)}  # fmt: skip


def executor_input(folder: Path, training: str, out: Path) -> dict:
    params = {"logs": str(folder), "max_decay": 0.02,
              "drift_thresholds": {"id": 0.0, "year": 0.0},
              "skew_thresholds": {"id": 0.0, "year": 0.0}}  # fmt: skip
    return launcher_input.executor_input(out, params, OUTPUTS,
                                         inputs={"training_statistics": ("system.Artifact",
                                                                         training)},
                                         output_params=["alert", "moved_features"])  # fmt: skip


def parts(folder: Path, training_dir: str) -> dict:
    """The step's parts, timed one after the other (one run)."""
    times = {}
    t = time.perf_counter()
    table = read_served(str(folder))
    times["read_s"] = time.perf_counter() - t
    served = answered(table)
    t = time.perf_counter()
    stats = window_statistics(served)
    times["statistics_s"] = time.perf_counter() - t
    training = artifacts.load_statistics(training_dir, "training_statistics")
    limits = Thresholds(0.03, 0.03)
    settings = Settings(drift=limits, skew=limits)
    t = time.perf_counter()
    compare(stats, training, None, settings)
    times["compare_s"] = time.perf_counter() - t
    t = time.perf_counter()
    performance(served, settings, {"auc": 0.9})
    times["performance_s"] = time.perf_counter() - t
    return {k: round(v, 2) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--labelled", type=float, default=0.1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_monitor.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as tmp:
        work = Path(tmp)
        folder = work / "logs" / "employment"
        t = time.perf_counter()
        log = served_log(args.rows, args.labelled, folder)
        build_s = time.perf_counter() - t
        runs, result = [], {}
        for i in range(args.reps):
            out = work / f"out-{i}"
            doc = executor_input(folder, log["training"], out)
            t = time.perf_counter()
            code = executor.launch(launcher.run, ["--executor_input", json.dumps(doc)])
            runs.append(time.perf_counter() - t)
            if code != 0:
                raise SystemExit(f"the launcher failed (exit {code})")
            result = json.loads((out / "monitoring" / "monitoring.json").read_text())
        split = parts(folder, log["training"])
        out = work / "out-cold"
        doc = executor_input(folder, log["training"], out)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kfpkit.components.monitor_serving.launcher",
                        "--executor_input", json.dumps(doc)], check=True,
                       capture_output=True, cwd=ROOT)  # fmt: skip
        cold_s = time.perf_counter() - t
    step_s = pystats.median(runs)
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",  # fmt: skip
        "log": {k: v for k, v in log.items() if k != "training"},
        "build_log_s": round(build_s, 1),
        "import_tfdv_s": round(IMPORT_S, 1),
        "step_s": round(step_s, 2),
        "step_runs_s": [round(r, 2) for r in runs],
        "parts": split,
        "cold_process_s": round(cold_s, 1),
        "goal_s": GOAL_S,
        "within_goal": step_s <= GOAL_S,
        "moved_features": result.get("moved_features"),
        "performance": {
            k: result["performance"].get(k) for k in ("labelled_rows", "auc", "accuracy", "decay")
        },  # fmt: skip
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"## monitor_serving on {log['rows']:,} served rows ({log['labelled_rows']:,} "
          f"labelled; log {log['log_mb']} MB in 10 files)\n")  # fmt: skip
    print("| measure | seconds |\n|---|---|")
    print(f"| step (launcher run, TFDV imported), median of {args.reps} | {step_s:.2f} |")
    for name, value in split.items():
        print(f"| - {name.removesuffix('_s')} | {value:.2f} |")
    print(f"| cold process (imports TFDV, then the step) | {cold_s:.1f} |")
    print(f"| import of TFDV alone | {IMPORT_S:.1f} |")
    print(f"\ngoal <= {GOAL_S:g} s: {'met' if step_s <= GOAL_S else 'NOT met'}; "
          f"moved features {result.get('moved_features')}")  # fmt: skip


if __name__ == "__main__":
    main()
