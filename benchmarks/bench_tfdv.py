"""TFDV benchmark: statistics throughput of tfdv_statistics against a naive use of TFDV.

Runs in the tfdv environment (``.venvs/tfdv/bin/python benchmarks/bench_tfdv.py``; ``make
bench`` does). In one run, on the same 1,000,000 demo rows (a seeded upsample, written as 8
Parquet shards the way bigquery_split exports them, and once as CSV for the baseline):

- ours: ``compute_statistics`` (Parquet -> Arrow batches -> GenerateStatistics), DirectRunner
  defaults, best of ``--reps``;
- naive: ``tfdv.generate_statistics_from_csv`` with defaults on the same rows as one CSV;
- workers: ours on ``--worker-rows`` rows (default 4M, 8 shards) in-process, then with
  ``--direct_num_workers=N`` in ``multi_processing`` and ``multi_threading`` modes;
- image: size of the tfdv image, and the cold start of a container importing TFDV;
- drift: drift of the demo's later years (2016-2018) against 2015, per feature.

Prints a markdown summary and writes ``benchmarks/results_tfdv.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics as pystats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from kfpkit import demo_data, images  # noqa: E402

t0 = time.perf_counter()
import tensorflow_data_validation as tfdv  # noqa: E402

IMPORT_S = time.perf_counter() - t0

from kfpkit.testing import tfdv as tfdv_testing  # noqa: E402
from kfpkit.tfdv.data_files import find_data_files  # noqa: E402
from kfpkit.tfdv.schema import infer_schema  # noqa: E402
from kfpkit.tfdv.statistics import compute_statistics  # noqa: E402
from kfpkit.tfdv.validation import (  # noqa: E402
    Thresholds,
    measurements,
    validate,
)

SHARDS = 8


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True)


def image_figures() -> dict:
    ref = images.image("tfdv")
    size = docker("image", "inspect", "--format", "{{.Size}}", ref)
    if size.returncode != 0:
        return {"skipped": f"{ref} not built (make images)"}
    runs = []
    for _ in range(3):
        runs.append(timed(lambda: docker("run", "--rm", ref, "python3", "-c",
                                         "import tensorflow_data_validation")))  # fmt: skip
    return {"image": ref, "size_mb": round(int(size.stdout) / 1e6),
            "cold_import_tfdv_s": round(pystats.median(runs), 1)}  # fmt: skip


def real_drift(work: Path) -> list[tuple[str, float, str]]:
    table = pq.read_table(demo_data.demo_parquet())
    base = tfdv_testing.statistics_of(table.filter(pc.equal(table["year"], 2015)), work / "y15")
    later = tfdv_testing.statistics_of(table.filter(pc.greater(table["year"], 2015)), work / "y16")
    anomalies = validate(later, infer_schema(base), baseline=base,
                         drift=Thresholds(categorical=0.1, numeric=0.1))  # fmt: skip
    found = [(m.feature, round(m.value, 4), m.measure) for m in measurements(anomalies)]
    return sorted(found, key=lambda kv: -kv[1])


def workers(rows: int, counts: list[int], work: Path) -> dict:
    table = pq.read_table(demo_data.scaled_parquet(rows))
    files = find_data_files(str(tfdv_testing.write_parquet(table, work / "big", parts=SHARDS)))
    del table
    variants = [("in_memory", 1, [])] + [
        (mode, n, [f"--direct_num_workers={n}", f"--direct_running_mode={mode}"])
        for mode in ("multi_processing", "multi_threading")
        for n in counts
    ]
    found = {}
    for mode, n, beam_args in variants:
        t = timed(lambda: compute_statistics(files, str(work / "w.pb"), beam_args=beam_args))  # noqa: B023
        found[f"{mode}-{n}"] = {"workers": n, "s": round(t, 1), "rows_per_s": round(rows / t)}
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--worker-rows", type=int, default=4_000_000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kfpkit-bench-tfdv-"))
    table = pq.read_table(demo_data.scaled_parquet(args.rows))
    shards = tfdv_testing.write_parquet(table, work / "parquet", parts=SHARDS)
    csv_path = work / "data.csv"
    pacsv.write_csv(table, csv_path)
    files = find_data_files(str(shards))
    results: dict = {
        "rows": args.rows,
        "cores": os.cpu_count(),
        "import_tfdv_s": round(IMPORT_S, 1),
    }

    ours = [
        timed(lambda: compute_statistics(files, str(work / "ours.pb"))) for _ in range(args.reps)
    ]
    naive = timed(lambda: tfdv.generate_statistics_from_csv(str(csv_path)))
    results["ours_s"] = [round(t, 1) for t in ours]
    results["naive_csv_s"] = round(naive, 1)
    results["ours_rows_per_s"] = round(args.rows / min(ours))
    results["naive_rows_per_s"] = round(args.rows / naive)
    results["speedup_vs_naive"] = round(naive / min(ours), 2)
    results["workers"] = workers(args.worker_rows, args.workers, work)
    results["image"] = image_figures()
    results["drift_2016_2018_vs_2015"] = real_drift(work)

    (ROOT / "benchmarks" / "results_tfdv.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"## TFDV statistics, {args.rows:,} rows, {os.cpu_count()} cores\n")
    print("| variant | seconds | rows/s |\n|---|---|---|")
    best = f"{min(ours):.1f} | {results['ours_rows_per_s']:,}"
    print(f"| ours (Parquet -> Arrow), best of {args.reps} | {best} |")
    print(f"| naive generate_statistics_from_csv | {naive:.1f} | {results['naive_rows_per_s']:,} |")
    print(f"\n### Beam workers, {args.worker_rows:,} rows\n")
    print("| mode | workers | seconds | rows/s |\n|---|---|---|---|")
    for key, r in results["workers"].items():
        print(f"| {key} | {r['workers']} | {r['s']} | {r['rows_per_s']:,} |")
    print(f"\nspeed-up vs naive: {results['speedup_vs_naive']}x; image: {results['image']}")
    print("\ndrift 2016-2018 vs 2015 (top 8):", results["drift_2016_2018_vs_2015"][:8])


if __name__ == "__main__":
    main()
