"""Tuning benchmark: katib_tune's local backend with the real trainer on the demo data.

Three measurements, one shared pool of trial workers where possible:

1. Trials needed to reach a target validation AUC, per algorithm, mean over seeds, random
   search as the baseline in the same run (goal: TPE or the Bayesian stand-in needs at most
   half the trials random needs). The model-based samplers model after ``--startup-trials``
   random trials: with their defaults (10) a small budget would be random search. The
   target is algorithm-neutral and set after the fact: a high quantile
   (``--target-quantile``) of every succeeded trial's AUC pooled over all algorithms and
   seeds, unless ``--target`` gives one. A run that never reaches it counts as
   ``max_trials + 1`` (censored; the table says how many were).
2. Wall time of the same study (random, fixed seed) with 1 and with 2 parallel trials.
3. Trial start-up cost: a worker's spawn + imports (TensorFlow) against the mean trial time,
   i.e. what each trial would pay on top if it were a fresh process (a Katib trial is a pod).

Run in the train environment (a few minutes with the defaults on 2 cores):
    .venvs/train/bin/python benchmarks/bench_tune.py [--rows 12000] [--seeds 3] [--max-trials 12]
Writes benchmarks/results_tune.json and prints a Markdown summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from kfpkit.components.katib_tune import local, trial
from kfpkit.components.katib_tune import spec as specs

HERE = Path(__file__).resolve().parent
DEMO = HERE.parent / ".cache" / "demo" / "employment.parquet"
SAMPLE = HERE.parent / "components" / "train" / "tests" / "data" / "employment_6000.parquet"
SPACE = [
    {"name": "learning_rate", "type": "double", "min": 1e-4, "max": 3e-2, "log": True},
    {"name": "hidden_units", "type": "categorical", "values": ["16", "64,32", "128,64"]},
    {"name": "dropout", "type": "double", "min": 0.0, "max": 0.5},
    {"name": "batch_size", "type": "discrete", "values": [128, 256, 512]},
]


def write_splits(source: Path, rows: int, root: Path) -> trial.TrialData:
    table = pq.read_table(source)
    order = np.random.default_rng(0).permutation(table.num_rows)[: min(rows, table.num_rows)]
    table = table.take(order)
    cut = int(table.num_rows * 0.8)
    for name, part in (("train", table.slice(0, cut)), ("validation", table.slice(cut))):
        (root / name).mkdir(parents=True)
        pq.write_table(part, root / name / "data-000000000000.parquet")
    return trial.TrialData(
        str(root / "train"), str(root / "validation"), "employed", exclude_columns=("id",)
    )


# The model-based samplers' random start-up trials: Optuna's TPE default (10) and skopt's
# (10) would make a budget of 10 trials pure random search.
STARTUP_SETTING = {
    "tpe": "n_startup_trials",
    "multivariate-tpe": "n_startup_trials",
    "bayesianoptimization": "n_initial_points",
}


def study(
    pool: local.WorkerPool,
    algorithm: str,
    seed: int,
    trials: int,
    parallel: int,
    epochs: int,
    startup: int = 0,
) -> tuple[list[float], float]:
    use_startup = startup and algorithm in STARTUP_SETTING
    spec = specs.parse_spec(
        SPACE,
        algorithm=algorithm,
        algorithm_settings={STARTUP_SETTING[algorithm]: startup} if use_startup else {},
        max_trial_count=trials,
        parallel_trial_count=parallel,
        max_failed_trial_count=trials,
        fixed_hyperparameters={"epochs": epochs, "seed": seed},
    )
    started = time.perf_counter()
    result = local.tune(spec, pool, seed=seed)
    wall = time.perf_counter() - started
    aucs = [
        t.objective if t.state == "succeeded" and t.objective is not None else float("nan")
        for t in sorted(result.trials, key=lambda t: t.number)
    ]
    return aucs, wall


def trials_to_reach(aucs: list[float], target: float) -> int | None:
    return next((i + 1 for i, auc in enumerate(aucs) if auc >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(DEMO if DEMO.exists() else SAMPLE))
    parser.add_argument("--rows", type=int, default=12_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-trials", type=int, default=12)
    parser.add_argument(
        "--algorithms",
        nargs="+",
        default=["random", "tpe", "multivariate-tpe", "bayesianoptimization"],
    )
    parser.add_argument(
        "--startup-trials",
        type=int,
        default=3,
        help="random trials before a model-based sampler models (0: its own default)",
    )
    parser.add_argument("--target", type=float, default=None)
    parser.add_argument("--target-quantile", type=float, default=0.8)
    parser.add_argument("--parallel-trials", type=int, default=6)
    parser.add_argument("--out", default=str(HERE / "results_tune.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        data = write_splits(Path(args.data), args.rows, Path(scratch))
        runs: dict[str, list[list[float]]] = {}
        with local.WorkerPool(data, size=1) as pool:
            startup = pool.startup_seconds[0]
            trial_seconds: list[float] = []
            for algorithm in args.algorithms:
                for seed in range(args.seeds):
                    started = time.perf_counter()
                    aucs, wall = study(
                        pool, algorithm, seed, args.max_trials, 1, args.epochs, args.startup_trials
                    )
                    trial_seconds.append(wall / len(aucs))
                    runs.setdefault(algorithm, []).append(aucs)
                    print(
                        f"{algorithm} seed {seed}: best {np.nanmax(aucs):.4f} "
                        f"({time.perf_counter() - started:.0f} s)",
                        flush=True,
                    )
            wall_1 = study(pool, "random", 0, args.parallel_trials, 1, args.epochs)[1]
        with local.WorkerPool(data, size=2) as pool2:
            wall_2 = study(pool2, "random", 0, args.parallel_trials, 2, args.epochs)[1]
            startup_2 = list(pool2.startup_seconds)

    pooled = [a for rs in runs.values() for aucs in rs for a in aucs if a == a]
    target = (
        args.target if args.target is not None else float(np.quantile(pooled, args.target_quantile))
    )
    per_algorithm = {}
    for algorithm, rs in runs.items():
        reached = [trials_to_reach(aucs, target) for aucs in rs]
        counted = [r if r is not None else args.max_trials + 1 for r in reached]
        per_algorithm[algorithm] = {
            "mean_trials_to_target": statistics.mean(counted),
            "runs_not_reaching_target": sum(r is None for r in reached),
            "mean_best_auc": statistics.mean(float(np.nanmax(a)) for a in rs),
            "trials_to_target": reached,
        }
    mean_trial = statistics.mean(trial_seconds)
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "target_auc": target,
        "algorithms": per_algorithm,
        "parallel": {
            "trials": args.parallel_trials,
            "wall_seconds_1": wall_1,
            "wall_seconds_2": wall_2,
            "speedup": wall_1 / wall_2,
        },
        "startup": {
            "worker_startup_seconds": startup,
            "workers_startup_seconds_2": startup_2,
            "mean_trial_seconds": mean_trial,
            "startup_share_if_one_process_per_trial": startup / (startup + mean_trial),
        },
    }
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    base = per_algorithm.get("random", {}).get("mean_trials_to_target")
    print(
        f"\nTarget validation AUC {target:.4f} ({args.seeds} seeds, at most "
        f"{args.max_trials} trials, {args.epochs} epochs, {args.rows} rows)\n"
    )
    print(
        "| algorithm | mean trials to target | runs not reaching it | vs random | mean best AUC |"
    )
    print("|---|---|---|---|---|")
    for algorithm, r in per_algorithm.items():
        ratio = f"{r['mean_trials_to_target'] / base:.2f}x" if base else ""
        print(
            f"| {algorithm} | {r['mean_trials_to_target']:.1f} | "
            f"{r['runs_not_reaching_target']} | {ratio} | {r['mean_best_auc']:.4f} |"
        )
    print(
        f"\n{args.parallel_trials} trials: {wall_1:.1f} s with 1 worker, {wall_2:.1f} s with 2 "
        f"({wall_1 / wall_2:.2f}x)"
    )
    print(
        f"Worker start-up (spawn + imports) {startup:.1f} s vs mean trial {mean_trial:.1f} s: "
        f"{results['startup']['startup_share_if_one_process_per_trial']:.0%} of a trial that "
        "starts its own process"
    )


if __name__ == "__main__":
    main()
