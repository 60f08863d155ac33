"""Evaluate with 1,000 bootstrap resamples against evaluate without intervals, same run.

The evaluate component's runtime (``kfpkit.components.evaluate.evaluator.evaluate``) as the
pipelines call it: a candidate against a baseline, sliced by ``SEX`` and ``year`` (as
``make run``), timed whole (read the test split, load both SavedModels, score, metrics,
report) once without intervals (``bootstrap=None``: today's point estimates) and once with
1,000 paired resamples (seed 0), on each test set:

- ``test split``: a seeded 10 % of the 277,677-row demo (the size of the pipeline's split);
- ``277k``: every demo row; ``1M``: the demo upsampled to 1,000,000 rows (seeded).

The two models: 2 epochs on 20,000 rows of 2015 and of 2016 (their quality does not change
the time: same architecture), trained in a child process: as in a pipeline, evaluate runs in
a process that did not train (after a training in the same process, its resampling ran 2x
slower). Writes ``benchmarks/results_evaluate.json``. Run in the train
venv: ``.venvs/train/bin/python benchmarks/bench_evaluate.py [--sizes test 277k 1M]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kfpkit import demo_data
from kfpkit.components.evaluate import evaluator, intervals

ROOT = Path(__file__).resolve().parent.parent
RESULTS_JSON = ROOT / "benchmarks/results_evaluate.json"
CACHE = ROOT / demo_data.DEFAULT_CACHE
LABEL = "employed"
SLICES = ("SEX", "year")
RESAMPLES = 1000


def _write(rows: pa.Table, folder: Path) -> Path:
    folder.mkdir(parents=True)
    pq.write_table(rows, folder / "data-000000000000.parquet")
    return folder


def _train(table: pa.Table, year: int, work: Path) -> str:
    from kfpkit.hyperparameters import parse_hyperparameters
    from kfpkit.training import trainer

    rows = table.filter(pc.equal(table["year"], year))
    pick = np.random.default_rng(year).permutation(rows.num_rows)
    train = _write(rows.take(np.sort(pick[:20_000])), work / f"train_{year}")
    validation = _write(rows.take(np.sort(pick[20_000:25_000])), work / f"validation_{year}")
    trainer.train(
        trainer.TrainRequest(
            train_path=str(train),
            validation_path=str(validation),
            model_dir=str(work / f"model_{year}"),
            label_column=LABEL,
            hyperparameters=parse_hyperparameters({"epochs": 2, "seed": 42}),
            exclude_columns=("id",),
        )
    )
    return str(work / f"model_{year}")


def _test_sets(table: pa.Table, sizes: list[str], work: Path) -> dict[str, Path]:
    sets = {}
    for size in sizes:
        if size == "test":
            pick = np.random.default_rng(0).random(table.num_rows) < 0.1
            rows = table.filter(pa.array(pick))
        elif size == "277k":
            rows = table
        elif size == "1M":
            rows = pq.read_table(demo_data.scaled_parquet(1_000_000, CACHE))
        else:
            raise SystemExit(f"unknown size {size!r}: test, 277k or 1M")
        sets[size] = _write(rows, work / f"test_{size}")
    return sets


def _timed(request: evaluator.EvaluateRequest) -> tuple[float, float]:
    """Wall and CPU seconds (all threads) of one evaluation: on shared cores the CPU time
    is what the evaluation itself cost."""
    wall, cpu = time.perf_counter(), time.process_time()
    evaluator.evaluate(request)
    return time.perf_counter() - wall, time.process_time() - cpu


def _fastest(best: tuple[float, float], new: tuple[float, float]) -> tuple[float, float]:
    return new if best[0] == 0 or new[0] < best[0] else best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", nargs="+", default=["test", "277k", "1M"])
    parser.add_argument("--resamples", type=int, default=RESAMPLES)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--train-into", type=Path, help=argparse.SUPPRESS)  # the child
    args = parser.parse_args()
    table = pq.read_table(demo_data.demo_parquet(CACHE))
    if args.train_into:
        for year in (2016, 2015):
            _train(table, year, args.train_into)
        return
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run([sys.executable, __file__, "--train-into", str(work)], check=True)
        model, baseline = str(work / "model_2016"), str(work / "model_2015")
        sets = _test_sets(table, args.sizes, work)
        warm = next(iter(sets.values()))  # TensorFlow's first call in a process costs more
        evaluator.evaluate(evaluator.EvaluateRequest(model, str(warm), LABEL, baseline))
        for size, test in sets.items():
            request = evaluator.EvaluateRequest(
                model_path=model,
                test_path=str(test),
                baseline_path=baseline,
                label_column=LABEL,
                slice_columns=SLICES,
            )
            settings = intervals.BootstrapSettings(resamples=args.resamples, seed=0)
            plain, with_ci = (0.0, 0.0), (0.0, 0.0)
            for _ in range(args.rounds):  # alternating; the fastest of each (shared cores)
                plain = _fastest(plain, _timed(request))
                with_ci = _fastest(
                    with_ci, _timed(dataclasses.replace(request, bootstrap=settings))
                )
            rows = pq.read_metadata(test / "data-000000000000.parquet").num_rows
            runs.append(
                {
                    "test_set": size,
                    "rows": rows,
                    "wall_seconds_without_intervals": round(plain[0], 1),
                    "wall_seconds_with_intervals": round(with_ci[0], 1),
                    "cpu_seconds_without_intervals": round(plain[1], 1),
                    "cpu_seconds_with_intervals": round(with_ci[1], 1),
                    "wall_ratio": round(with_ci[0] / plain[0], 2),
                    "cpu_ratio": round(with_ci[1] / plain[1], 2),
                }
            )
            print(
                f"{size} ({rows:,} rows): without intervals {plain[0]:.1f} s "
                f"(CPU {plain[1]:.1f} s), with {args.resamples} resamples {with_ci[0]:.1f} s "
                f"(CPU {with_ci[1]:.1f} s): {with_ci[0] / plain[0]:.2f}x wall, "
                f"{with_ci[1] / plain[1]:.2f}x CPU",
                flush=True,
            )
    doc = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average_at_end": os.getloadavg(),
        "resamples": args.resamples,
        "slices": SLICES,
        "runs": runs,
    }
    RESULTS_JSON.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {RESULTS_JSON}")


if __name__ == "__main__":
    main()
