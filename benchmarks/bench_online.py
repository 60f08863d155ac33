"""online_experiment benchmark: 1,000,000 logged rows (goal: <= 30 s on 2 cores), and the
outcomes the sequential test needs to catch a worse variant.

Runs in the SDK environment (``.venv/bin/python benchmarks/bench_online.py``; the core
family's runtime tests run there too). The log is synthetic, in the contract's layout
(``kfpkit.testing.served_logs.simulate``): ``--rows`` one-row requests split at random
between a control and a treatment, two numeric features and one categorical, written as 10
request files, with the label and a 0/1 reward sent back for ``--labelled`` of the rows as 10
feedback files. Measured:

- step: ``read_served`` (the feedback join), then ``analyse`` per metric, median of ``--reps``;
- cold: the launcher as the container runs it (``python -m ...launcher``: a new process that
  imports scipy and statsmodels, reads, analyses, writes every output), once;
- outcomes to a decision: seeded experiments with a treatment worse by a known amount of
  accuracy, the outcomes seen when the mSPRT crossed (median and quartiles of ``--trials``).

Prints a markdown summary and writes ``benchmarks/results_online.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics as pystats
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from kfpkit import testing  # noqa: E402
from kfpkit.components.online_experiment import analysis  # noqa: E402
from kfpkit.serving.served_logs import join_feedback, read_served  # noqa: E402
from kfpkit.testing.served_logs import Variant, simulate, write_experiment  # noqa: E402

OUTPUTS = {"decision": "system.Artifact", "report": "system.HTML", "metrics": "system.Metrics"}


CPU_S: dict[str, float] = {}  # CPU seconds (user + system) of the last call, by label


def _median_time(fn, reps: int, label: str = "") -> tuple[float, object]:
    """Median wall time of ``reps`` calls; the CPU time goes to CPU_S (the machine is shared:
    CPU seconds are what the step costs whatever else runs)."""
    times, result = [], None
    for _ in range(reps):
        start, cpu = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - start)
        CPU_S[label] = round(time.process_time() - cpu, 2)
    return pystats.median(times), result


def step(folder: Path, reps: int) -> dict:
    out: dict = {}
    out["read_s"], table = _median_time(lambda: read_served(str(folder)), reps, "read")
    out["read_cpu_s"] = CPU_S["read"]
    out["rows"] = table.num_rows
    out["labelled_rows"] = int(table.column("label").num_chunks and
                               len(table) - table.column("label").null_count)  # fmt: skip
    for metric in ("accuracy", "log_loss", "reward", "auc"):
        settings = analysis.Settings(control="control", treatments=("treatment",),
                                     metric=metric, max_latency_p99_ms=50.0,
                                     max_error_rate=0.01)  # fmt: skip
        seconds, result = _median_time(lambda s=settings: analysis.analyse(table, s), reps, metric)
        crossed = result.comparisons[0].test.crossed
        out[metric] = {
            "analyse_s": round(seconds, 2),
            "read_and_analyse_s": round(out["read_s"] + seconds, 2),
            "analyse_cpu_s": CPU_S[metric],
            "decision": result.decision,
            "outcomes_to_decision": crossed.labelled_rows if crossed else None,
        }
    out["read_s"] = round(out["read_s"], 2)
    return out


def cold(folder: Path, work: Path) -> dict:
    doc = testing.executor_input(work / "out", {"logs": str(folder), "control_variant": "control",
                                                "treatment_variant": "treatment"},
                                 OUTPUTS, output_params=["decision_value"])  # fmt: skip
    module = "kfpkit.components.online_experiment.launcher"
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", module, "--executor_input", json.dumps(doc)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    decision = (work / "out" / "decision_value").read_text()
    return {"launcher_s": round(seconds, 2), "launcher_cpu_s": round(cpu, 2), "decision": decision}


def outcomes_to_decision(trials: int, rows: int) -> list[dict]:
    """Per accuracy gap: outcomes seen when the test rolled the worse treatment back."""
    results = []
    for worse_skill in (1.2, 1.35, 1.45):
        needed, decisions, gaps = [], [], []
        for seed in range(trials):
            requests, feedback = simulate(rows, {"control": Variant(skill=1.5),
                                                 "treatment": Variant(skill=worse_skill)},
                                          seed=10_000 + seed)  # fmt: skip
            table = join_feedback(requests, feedback)
            result = analysis.analyse(table, analysis.Settings(control="control"))
            decisions.append(result.decision)
            crossed = result.comparisons[0].test.crossed
            if crossed is not None:
                needed.append(crossed.labelled_rows)
            by_name = {v.variant: v.accuracy.value for v in result.variants}
            gaps.append(by_name["control"] - by_name["treatment"])
        quartiles = np.percentile(needed, [25, 50, 75]).tolist() if needed else None
        results.append({
            "treatment_skill": worse_skill, "accuracy_gap_mean": round(float(np.mean(gaps)), 4),
            "trials": trials, "rows_per_trial": rows,
            "rolled_back": decisions.count(analysis.ROLLBACK),
            "promoted": decisions.count(analysis.PROMOTE),
            "outcomes_quartiles": quartiles,
        })  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--labelled", type=float, default=0.8)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results_online.json"))
    args = parser.parse_args()
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "logs" / "model"
        t = time.perf_counter()
        requests, feedback = simulate(
            args.rows,
            {"control": Variant(skill=1.5), "treatment": Variant(skill=1.45, latency_ms=6.0)},
            seed=1, labelled=args.labelled, extra_features=2,
        )  # fmt: skip
        write_experiment(folder, requests, feedback, files=10)
        write_s = time.perf_counter() - t
        del requests, feedback
        measured = step(folder, args.reps)
        launched = cold(folder, Path(tmp))
    to_decision = outcomes_to_decision(args.trials, 40_000)
    result = {
        "date": started.isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m_at_end": os.getloadavg()[0],
        },  # fmt: skip
        "rows": args.rows,
        "labelled": args.labelled,
        "write_s": round(write_s, 2),
        "step": measured,
        "cold": launched,
        "outcomes_to_decision": to_decision,
    }
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"## online_experiment, {args.rows:,} rows ({started:%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f})")  # fmt: skip
    print(f"read_served: {measured['read_s']} s ({measured['read_cpu_s']} s CPU); launcher, "
          f"cold: {launched['launcher_s']} s ({launched['launcher_cpu_s']} s CPU, "
          f"{launched['decision']})")  # fmt: skip
    for metric in ("accuracy", "log_loss", "reward", "auc"):
        m = measured[metric]
        print(
            f"- {metric}: analyse {m['analyse_s']} s ({m['analyse_cpu_s']} s CPU), read + analyse "
            f"{m['read_and_analyse_s']} s, {m['decision']} after {m['outcomes_to_decision']}"
        )
    for r in to_decision:
        print(
            f"- treatment skill {r['treatment_skill']} (accuracy gap about "
            f"{r['accuracy_gap_mean']}): rolled back {r['rolled_back']}/{r['trials']}, "
            f"outcomes to the decision (quartiles) {r['outcomes_quartiles']}"
        )


if __name__ == "__main__":
    main()
