"""Benchmarks of the bigquery_split component on the local BigQuery emulator (``make bench``).

Measured in one run, every ratio against a baseline taken in the same run:

1. Per data size (the 277,677-row demo table and a 1,000,000-row seeded upsample; 10,000,000
   only with ``--rows-10m``):
   * the floor: one scan of the source that computes the split's bucket expression
     (FARM_FINGERPRINT) for every row and only sums it, so nothing is materialised; the sum is
     checked against pyfarmhash, which proves every row was hashed;
   * the full split (SplitRunner) with ``export_format="parquet"`` and with ``"none"``;
   * wall seconds, rows/s and the ratio split / floor (the split's cost over the hashing the
     emulator cannot avoid).
2. That the split reads the source once: the statements the runner actually sent, with the
   number of references to the source table, the staging table and FARM_FINGERPRINT in each.
3. Compile time of every pipeline (``compile_all``), in fresh interpreters, with the kfp import
   and the import of kfpkit's pipeline definitions reported apart.
4. Docker: size of the core image and of its base (the difference is kfpkit's layers), and the
   cold start of a step (``docker run`` of an import of the runner), median of 3.
5. The embedded engine (Parquet sources) at the same sizes: the whole split in a child
   process (wall, rows/s, peak RSS), and the hashing alone over the same keys: the numpy
   FarmHash, pyfarmhash per key, and the floor (FarmHash's C++ over every key in one call,
   built from the pyfarmhash sdist); and the DuckDB alternative (DuckDB reads, buckets with
   an Arrow UDF or a row UDF, and writes each split). ``--embedded-only`` runs this alone.

Prints a markdown summary and writes ``benchmarks/results.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pyarrow.parquet as pq
from google.cloud import bigquery

from kfpkit import demo_data
from kfpkit.components.bigquery_split import reference, sql
from kfpkit.components.bigquery_split.runner import SplitRequest, SplitResult, SplitRunner
from kfpkit.emulator import Emulator, emulator_venv

ROOT = Path(__file__).resolve().parent.parent
RESULTS_JSON = ROOT / "benchmarks" / "results.json"
PROJECT = "kfpkit-bench"
DATASET = "bench"
SOURCE_ID = f"{PROJECT}.{DATASET}.src"
KEY = "id"
RATIOS = {"train": 0.8, "validation": 0.1, "test": 0.1}
ONE_MILLION = 1_000_000
TEN_MILLION = 10_000_000
CORE_IMAGE = "ghcr.io/kfpkit/core:0.1.0"
BASE_IMAGE = "kfpkit-local/debian-python:bookworm"
COLD_START_CMD = "import kfpkit.components.bigquery_split.runner"
DOCKER_REPS = 3
COMPILE_REPS = 3

T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# -- the floor ------------------------------------------------------------------------------


def bucket_expression(key_expr: str) -> str:
    """The split's per-row bucket (see sql.py); checked to occur verbatim in the assign SQL."""
    b = sql.BUCKETS
    return f"MOD(MOD(FARM_FINGERPRINT({key_expr}), {b}) + {b}, {b})"


def floor_sql(source: sql.TableRef, key_expr: str) -> str:
    """One scan hashing every row once, reduced to one row: nothing is materialised."""
    return f"SELECT SUM({bucket_expression(key_expr)}) AS bucket_sum FROM {source.sql}"


def expected_bucket_sum(parquet: Path) -> int:
    """The floor's answer computed independently with pyfarmhash (C), as a check."""
    total = 0
    for i in pq.read_table(parquet, columns=[KEY]).column(KEY).to_pylist():
        total += reference.bucket(str(i))
    return total


def run_floor(client: bigquery.Client, source: sql.TableRef, key_expr: str) -> tuple[float, int]:
    config = bigquery.QueryJobConfig(use_query_cache=False)
    seconds, rows = timed(lambda: list(client.query(floor_sql(source, key_expr), config).result()))
    return seconds, int(rows[0]["bucket_sum"])


# -- the split ------------------------------------------------------------------------------


class StatementLog(logging.Handler):
    """Captures the (job id, SQL) pairs SplitRunner logs just before submitting each job."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.statements: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        if str(record.msg).startswith("Running ") and isinstance(args, tuple) and len(args) == 2:
            self.statements.append((str(args[0]), str(args[1])))


@dataclass
class SplitRun:
    seconds: float
    runner: SplitRunner
    results: list[SplitResult]
    statements: list[tuple[str, str]]


def run_split(
    client: bigquery.Client, endpoint: str, export_format: str, out_dir: Path
) -> SplitRun:
    """One SplitRunner run from a clean state (no destination tables, no export folders)."""
    for name in RATIOS:
        client.delete_table(f"{PROJECT}.{DATASET}.src_{name}", not_found_ok=True)
    shutil.rmtree(out_dir, ignore_errors=True)
    request = SplitRequest(
        source_table=SOURCE_ID,
        key_columns=[KEY],
        split_ratios=RATIOS,
        destination_dataset=DATASET,
        project=PROJECT,
        bigquery_endpoint=endpoint,
        export_format=export_format,
        export_uris={n: str(out_dir / n) for n in RATIOS} if export_format == "parquet" else {},
        # A fresh identity per run: the same one would reuse the previous run's finished jobs.
        step_key=f"bench{uuid.uuid4().hex[:12]}",
    )
    handler = StatementLog()
    logger = logging.getLogger("kfpkit")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        start = time.perf_counter()
        runner = SplitRunner(request)
        results = runner.run()
        seconds = time.perf_counter() - start
    finally:
        logger.removeHandler(handler)
    return SplitRun(seconds, runner, results, handler.statements)


def statement_seconds(client: bigquery.Client, run: SplitRun) -> dict[str, float | None]:
    """Server-side duration of each job of a split run, as the emulator reports it."""
    durations: dict[str, float | None] = {}
    prefix = f"kfpkit_split_{run.runner.step}_"
    for job_id, _ in run.statements:
        job = client.get_job(job_id)
        name = job_id.removeprefix(prefix)
        if job.started and job.ended:
            durations[name] = round((job.ended - job.started).total_seconds(), 3)
        else:
            durations[name] = None
    return durations


def check_split(run: SplitRun, rows: int, out_dir: Path | None) -> dict[str, int]:
    """Row counts per split; they must add up, and the exported files must hold them."""
    counts = {r.name: r.row_count for r in run.results}
    if sum(counts.values()) != rows:
        raise RuntimeError(f"split rows {counts} do not add up to {rows}")
    if out_dir is not None:
        for name, count in counts.items():
            files = sorted((out_dir / name).glob("*.parquet"))
            exported = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
            if exported != count:
                raise RuntimeError(f"{name}: exported {exported} rows, table has {count}")
    return counts


def read_once_evidence(run: SplitRun, key_expr: str) -> dict[str, Any]:
    """How often each statement the runner sent names the source, staging and the hash."""
    runner = run.runner
    prefix = f"kfpkit_split_{runner.step}_"
    statements = []
    for job_id, text in run.statements:
        statements.append(
            {
                "name": job_id.removeprefix(prefix),
                "source_refs": text.count(runner.source.sql),
                "staging_refs": text.count(runner.staging.sql),
                "farm_fingerprint": text.upper().count("FARM_FINGERPRINT("),
            }
        )
    assign_text = dict(run.statements)[prefix + "assign"]
    first, rest = statements[0], statements[1:]
    return {
        "assign_sql": assign_text,
        "assign_is_sql_assign_sql": assign_text
        == sql.assign_sql(runner.source, runner.staging, key_expr),
        "floor_expression_in_assign": bucket_expression(key_expr) in assign_text,
        "statements": statements,
        "source_read_once": first["name"] == "assign"
        and first["source_refs"] == 1
        and first["farm_fingerprint"] == 1
        and all(s["source_refs"] == 0 and s["farm_fingerprint"] == 0 for s in rest)
        and all(s["staging_refs"] == 1 for s in rest),
    }


# -- one data size --------------------------------------------------------------------------


def summary(runs: list[float]) -> dict[str, Any]:
    return {"runs_s": [round(s, 3) for s in runs], "best_s": round(min(runs), 3)}


def bench_size(rows: int, reps: int, work: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Floor, split (parquet) and split (none), interleaved ``reps`` times on a fresh emulator."""
    parquet = demo_data.demo_parquet() if rows == demo_data.ROWS else demo_data.scaled_parquet(rows)
    log(f"{rows:,} rows from {parquet}; computing the expected bucket sum with pyfarmhash")
    expected_sum = expected_bucket_sum(parquet)
    source = sql.parse_table_id(SOURCE_ID)
    key_expr = sql.key_expression([KEY], {KEY: "INT64"})
    out_dir = work / f"export-{rows}"
    floor_runs: list[float] = []
    split_runs: dict[str, list[float]] = {"parquet": [], "none": []}
    statement_times: dict[str, dict[str, float | None]] = {}
    evidence: dict[str, Any] = {}
    counts: dict[str, int] = {}
    load_before = os.getloadavg()
    with Emulator(project=PROJECT, log_path=str(work / f"emulator-{rows}.log")) as emu:
        client = emu.client()
        load_s, loaded = timed(lambda: demo_data.load_into_bigquery(client, parquet, SOURCE_ID))
        if loaded != rows:
            raise RuntimeError(f"loaded {loaded} rows, expected {rows}")
        client.query("SELECT FARM_FINGERPRINT('warm-up') AS f").result()
        for rep in range(1, reps + 1):
            seconds, got = run_floor(client, source, key_expr)
            if got != expected_sum:
                raise RuntimeError(f"floor bucket sum {got} != pyfarmhash's {expected_sum}")
            floor_runs.append(seconds)
            log(f"{rows:,} rows, rep {rep}/{reps}: floor {seconds:.1f} s")
            for fmt in ("parquet", "none"):
                run = run_split(client, emu.endpoint, fmt, out_dir)
                counts = check_split(run, rows, out_dir if fmt == "parquet" else None)
                split_runs[fmt].append(run.seconds)
                statement_times.setdefault(fmt, statement_seconds(client, run))
                if not evidence:
                    evidence = read_once_evidence(run, key_expr)
                log(f"{rows:,} rows, rep {rep}/{reps}: split ({fmt}) {run.seconds:.1f} s")
        shutil.rmtree(out_dir, ignore_errors=True)
    floor_best = min(floor_runs)
    result: dict[str, Any] = {
        "rows": rows,
        "data": "demo" if rows == demo_data.ROWS else "demo upsampled (seed 0)",
        "repetitions": reps,
        "load_s": round(load_s, 3),
        "floor": {**summary(floor_runs), "rows_per_s": round(rows / floor_best)},
        "floor_us_per_row": round(floor_best / rows * 1e6, 1),
        "split_row_counts": counts,
        "statement_s_first_run": statement_times,
        "loadavg_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
    }
    for fmt, runs in split_runs.items():
        best = min(runs)
        result[f"split_{fmt}"] = {
            **summary(runs),
            "rows_per_s": round(rows / best),
            "ratio_to_floor": round(best / floor_best, 3),
            "over_floor_s": round(best - floor_best, 3),
        }
    return result, evidence


# -- the embedded engine (Parquet/CSV sources) ----------------------------------------------

# The C floor: FarmHash's own Fingerprint64 (farmhash.cc, from the pyfarmhash sdist the tfdv
# image builds) over every key in one call, no Python per key.
_FLOOR_CC = r"""
#include <cstdint>
#include "farmhash.h"
extern "C" void fingerprint64_all(const char* data, const int64_t* offsets, int64_t n,
                                  uint64_t* out) {
  for (int64_t i = 0; i < n; ++i)
    out[i] = util::Fingerprint64(data + offsets[i], offsets[i + 1] - offsets[i]);
}
"""
FARMHASH_SDIST = "pyfarmhash==0.3.2"
HASH_REPS = 5


def c_floor_library(work: Path) -> Any:
    """ctypes handle of the C floor, built with g++ -O3; None (and why) when it cannot be."""
    import ctypes
    import tarfile

    sdists = sorted(ROOT.glob("build/wheelhouse/*/sdists/pyfarmhash-*.tar.gz"))
    if not sdists:
        cache = ROOT / ".cache" / "bench"
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--no-binary", ":all:", FARMHASH_SDIST, "-d", str(cache)],
                       check=False, capture_output=True)  # fmt: skip
        sdists = sorted(cache.glob("pyfarmhash-*.tar.gz"))
    if not sdists or shutil.which("g++") is None:
        return None, "no pyfarmhash sdist or no g++"
    src = work / "farmhash-floor"
    src.mkdir(exist_ok=True)
    with tarfile.open(sdists[-1]) as tar:
        for member in tar.getmembers():
            if member.name.endswith(("src/farmhash.cc", "src/farmhash.h")):
                (src / Path(member.name).name).write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
    (src / "floor.cc").write_text(_FLOOR_CC)
    lib = src / "libfloor.so"
    subprocess.run(["g++", "-O3", "-shared", "-fPIC", "-o", str(lib), str(src / "floor.cc"),
                    str(src / "farmhash.cc")], check=True, cwd=src)  # fmt: skip
    return ctypes.CDLL(str(lib)), sdists[-1].name


def c_floor(lib: Any, keys: Any) -> Any:
    """Unsigned fingerprints of a large_string array, by the C floor."""
    import ctypes

    import numpy as np

    _, offsets, data = keys.buffers()
    out = np.empty(len(keys), np.uint64)
    lib.fingerprint64_all(
        ctypes.c_void_p(data.address), ctypes.c_void_p(offsets.address + keys.offset * 8),
        ctypes.c_int64(len(keys)), out.ctypes.data_as(ctypes.c_void_p),
    )  # fmt: skip
    return out


# Peak memory of a whole split: a child process's VmHWM (reset by exec; ru_maxrss is not, and
# would report the parent's size at the fork).
_ENGINE_PROBE = """
import json, sys, time
from kfpkit.components.bigquery_split.embedded import split_files
source, out = sys.argv[1], sys.argv[2]
ratios = {"train": 0.8, "validation": 0.1, "test": 0.1}
# warm-up on 1,000 rows: the first use of pyarrow.compute builds its functions (seconds without
# byte-compiled modules); a step in the image pays this at its start, not per row
import pyarrow.parquet as pq
pq.write_table(pq.ParquetFile(source).read_row_group(0).slice(0, 1000), f"{out}-warm.parquet")
split_files(f"{out}-warm.parquet", ["id"], ratios, {n: f"{out}-warm/{n}" for n in ratios})
t = time.perf_counter()
results = split_files(source, ["id"], ratios, {n: f"{out}/{n}" for n in ratios})
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "rows": {r.name: r.row_count for r in results},
                  "peak_rss_mib": next(int(line.split()[1]) for line in open("/proc/self/status")
                                       if line.startswith("VmHWM:")) / 1024}))
"""

# The DuckDB alternative, in the emulator's environment (which has DuckDB): DuckDB reads the
# Parquet, computes the bucket with a vectorised Arrow UDF (the same numpy FarmHash) or a
# row-at-a-time Python UDF (pyfarmhash, the emulator's way), and writes each split with COPY.
_DUCKDB_PROBE = """
import json, sys, time
import duckdb, pyarrow as pa, numpy as np
sys.path[:0] = sys.argv[4].split(":")
from kfpkit.splitting.farmhash import fingerprint64
import farmhash
source, out, udf = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect()
def arrow_bucket(keys):
    return pa.array(np.mod(fingerprint64(keys), 1000000))
def row_bucket(key):
    fp = farmhash.fingerprint64(key)
    return (fp - (1 << 64) if fp >= (1 << 63) else fp) % 1000000
if udf == "arrow":
    con.create_function("bucket", arrow_bucket, ["VARCHAR"], "BIGINT", type="arrow")
else:
    con.create_function("bucket", row_bucket, ["VARCHAR"], "BIGINT")
def split(source, out):
    con.execute(f"CREATE OR REPLACE TEMP TABLE b AS SELECT *, bucket(CAST(id AS VARCHAR)) "
                f"AS kfpkit_bucket FROM read_parquet('{source}')")
    for name, lo, hi in (("train", 0, 800000), ("validation", 800000, 900000),
                         ("test", 900000, 1000000)):
        con.execute(f"COPY (SELECT * EXCLUDE (kfpkit_bucket) FROM b WHERE kfpkit_bucket >= "
                    f"{lo} AND kfpkit_bucket < {hi}) TO '{out}-{name}.parquet' (FORMAT PARQUET)")
con.execute(f"COPY (SELECT * FROM read_parquet('{source}') LIMIT 1000) TO '{out}-warm.parquet'")
split(f"{out}-warm.parquet", f"{out}-warm")  # warm-up, as the engine's probe
t = time.perf_counter()
split(source, out)
print(json.dumps({"seconds": time.perf_counter() - t, "duckdb": duckdb.__version__}))
"""


def bench_embedded(rows: int, work: Path, floor_lib: Any, duckdb: bool) -> dict[str, Any]:
    """The embedded engine at one size: the whole split (child process: wall, peak RSS), and
    the hashing alone (numpy FarmHash, pyfarmhash per key, the C floor) over the same keys."""
    import farmhash
    import numpy as np

    from kfpkit.splitting import keys as split_keys
    from kfpkit.splitting.farmhash import fingerprint64

    parquet = demo_data.demo_parquet() if rows == demo_data.ROWS else demo_data.scaled_parquet(rows)
    out = work / f"embedded-{rows}"
    load_before = os.getloadavg()[0]
    probe = subprocess.run([sys.executable, "-c", _ENGINE_PROBE, str(parquet.absolute()),
                            str(out)], check=True, capture_output=True, text=True)  # fmt: skip
    engine = json.loads(probe.stdout.strip().splitlines()[-1])
    if sum(engine["rows"].values()) != rows:
        raise RuntimeError(f"embedded split rows {engine['rows']} do not add up to {rows}")
    for path in work.glob(f"embedded-{rows}*"):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
    table = pq.read_table(parquet, columns=[KEY])
    key_text = split_keys.key_text(table, [KEY]).cast("large_string")
    fingerprint64(key_text.slice(0, 1000))  # warm-up

    def best(fn: Callable[[], T], reps: int = HASH_REPS) -> tuple[float, T]:
        runs = [timed(fn) for _ in range(reps)]  # the fastest of a few: the machine is shared
        return min(r[0] for r in runs), runs[-1][1]

    numpy_s, fps = best(lambda: fingerprint64(key_text))
    pylist_s, texts = best(key_text.to_pylist, 2)
    loop_s, loop = best(lambda: np.array([farmhash.fingerprint64(k) for k in texts], np.uint64), 2)
    if not (loop.view(np.int64) == fps).all():
        raise RuntimeError("numpy FarmHash differs from pyfarmhash")
    result: dict[str, Any] = {
        "rows": rows,
        "split_s": round(engine["seconds"], 3),
        "split_rows_per_s": round(rows / engine["seconds"]),
        "split_peak_rss_mib": round(engine["peak_rss_mib"], 1),
        "split_row_counts": engine["rows"],
        "hash_numpy_s": round(numpy_s, 3),
        "hash_pyfarmhash_per_key_s": round(pylist_s + loop_s, 3),
        "loadavg_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    if floor_lib is not None:
        floor_s, floor = best(lambda: c_floor(floor_lib, key_text))
        if not (floor.view(np.int64) == fps).all():
            raise RuntimeError("the C floor differs from the numpy FarmHash")
        result["hash_c_floor_s"] = round(floor_s, 3)
        result["hash_numpy_over_c_floor"] = round(numpy_s / floor_s, 2)
        result["split_over_c_floor"] = round(engine["seconds"] / floor_s, 1)
    if duckdb:
        farmhash_dir = str(Path(farmhash.__file__).parent)
        for udf in ("arrow", "row"):
            probe = subprocess.run(
                [str(emulator_venv() / "bin" / "python"), "-c", _DUCKDB_PROBE,
                 str(parquet.absolute()), str(work / f"duckdb-{rows}"), udf,
                 f"{ROOT / 'src'}:{farmhash_dir}"],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            doc = json.loads(probe.stdout.strip().splitlines()[-1])
            result[f"duckdb_{udf}_udf_split_s"] = round(doc["seconds"], 3)
            result["duckdb"] = doc["duckdb"]
            for f in work.glob(f"duckdb-{rows}*.parquet"):
                f.unlink()
    return result


def embedded_markdown(sizes: list[dict[str, Any]]) -> str:
    lines = [
        "| rows | split (s) | rows/s | peak RSS (MiB) | hash: numpy (s) | pyfarmhash per key (s) "
        "| C floor (s) | DuckDB + Arrow UDF (s) | DuckDB + row UDF (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in sizes:
        lines.append(
            f"| {e['rows']:,} | {e['split_s']:.2f} | {e['split_rows_per_s']:,} | "
            f"{e['split_peak_rss_mib']:.0f} | {e['hash_numpy_s']:.3f} | "
            f"{e['hash_pyfarmhash_per_key_s']:.3f} | {e.get('hash_c_floor_s', '-')} | "
            f"{e.get('duckdb_arrow_udf_split_s', '-')} | {e.get('duckdb_row_udf_split_s', '-')} |"
        )
    return "\n".join(lines)


# -- compile and docker ---------------------------------------------------------------------

_COMPILE_PROBE = """
import json, sys, tempfile, time
from pathlib import Path
t0 = time.perf_counter()
import kfp, kfp.compiler
t1 = time.perf_counter()
import kfpkit.compile
t2 = time.perf_counter()
with tempfile.TemporaryDirectory() as d:
    files = kfpkit.compile.compile_all(Path(d))
t3 = time.perf_counter()
with tempfile.TemporaryDirectory() as d:
    kfpkit.compile.compile_all(Path(d))
t4 = time.perf_counter()
print(json.dumps({"kfp_import_s": t1 - t0, "kfpkit_import_s": t2 - t1,
                  "compile_all_s": t3 - t2, "compile_all_again_s": t4 - t3,
                  "files": len(files), "kfp": kfp.__version__}))
"""


def bench_compile() -> dict[str, Any]:
    """compile_all in fresh interpreters; medians of COMPILE_REPS runs."""
    runs = []
    for _ in range(COMPILE_REPS):
        out = subprocess.run(
            [sys.executable, "-c", _COMPILE_PROBE], check=True, capture_output=True, text=True
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    result: dict[str, Any] = {"repetitions": COMPILE_REPS, "kfp": runs[0]["kfp"]}
    result["files"] = runs[0]["files"]
    for k in ("kfp_import_s", "kfpkit_import_s", "compile_all_s", "compile_all_again_s"):
        result[k] = round(statistics.median(r[k] for r in runs), 3)
    return result


def docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def median_run_s(cmd: list[str]) -> tuple[float, list[float]]:
    runs = []
    for _ in range(DOCKER_REPS):
        seconds, _ = timed(lambda: subprocess.run(cmd, check=True, capture_output=True))
        runs.append(round(seconds, 3))
    return statistics.median(runs), runs


def bench_docker() -> dict[str, Any]:
    """Image sizes and the cold start of a step; skipped (with the reason) without Docker."""
    if shutil.which("docker") is None:
        return {"skipped": "docker not installed"}
    try:
        docker("version", "--format", "{{.Server.Version}}")
    except subprocess.CalledProcessError as e:
        return {"skipped": f"docker engine not reachable: {e.stderr.strip()}"}
    images: dict[str, dict[str, Any]] = {}
    for ref in (CORE_IMAGE, BASE_IMAGE):
        try:
            info = json.loads(docker("image", "inspect", ref))[0]
        except subprocess.CalledProcessError:
            return {"skipped": f"image {ref} not found (run `make images`)"}
        images[ref] = {
            "id": info["Id"],
            "created": info["Created"],
            "size_bytes": int(info["Size"]),
            "layers": info["RootFS"]["Layers"],
        }
    core, base = images[CORE_IMAGE], images[BASE_IMAGE]
    run = ["docker", "run", "--rm", "--network", "host", CORE_IMAGE, "python3", "-c"]
    cold, cold_runs = median_run_s([*run, COLD_START_CMD])
    bare, bare_runs = median_run_s([*run, "pass"])
    return {
        "core_image": CORE_IMAGE,
        "core_id": core["id"],
        "core_created": core["created"],
        "core_size_bytes": core["size_bytes"],
        "base_image": BASE_IMAGE,
        "base_size_bytes": base["size_bytes"],
        "kfpkit_layers_bytes": core["size_bytes"] - base["size_bytes"],
        "core_built_on_base": core["layers"][: len(base["layers"])] == base["layers"],
        "cold_start_cmd": COLD_START_CMD,
        "cold_start_median_s": cold,
        "cold_start_runs_s": cold_runs,
        "container_python_pass_median_s": bare,
        "container_python_pass_runs_s": bare_runs,
    }


# -- machine and report ---------------------------------------------------------------------


# Versions of the emulator's stack, and the cost of its FARM_FINGERPRINT function called
# directly from Python (no SQL engine in between), for comparison with the floor's cost per row.
_EMULATOR_PROBE = """
import importlib.metadata as m, time
from bqemulator.sql.builtin_udfs import bqemu_farm_fingerprint as fp
n = 200_000
t = time.perf_counter()
for i in range(n):
    fp(str(i))
us = (time.perf_counter() - t) / n * 1e6
print(m.version("bqemulator"), m.version("duckdb"), round(us, 2))
"""


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().split()
    mem_kib = int(meminfo[meminfo.index("MemTotal:") + 1])
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    emu_python = emulator_venv() / "bin" / "python"
    versions = subprocess.run(
        [str(emu_python), "-c", _EMULATOR_PROBE], check=True, capture_output=True, text=True
    ).stdout.split()
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "mem_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "bqemulator": versions[0],
        "duckdb": versions[1],
        "emulator_hash_fn_us_per_row_called_directly": float(versions[2]),
    }


def extrapolate_10m(split: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Linear in the per-row UDF cost, from the largest size measured."""
    if not split:
        return None
    largest = max(split, key=lambda s: s["rows"])
    scale = TEN_MILLION / largest["rows"]
    return {
        "from_rows": largest["rows"],
        "floor_s": round(largest["floor"]["best_s"] * scale),
        "split_parquet_s": round(largest["split_parquet"]["best_s"] * scale),
        "split_none_s": round(largest["split_none"]["best_s"] * scale),
    }


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| rows | measurement | runs (s) | best (s) | rows/s | split / floor |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for s in results["split"]:
        for key, label in (
            ("floor", "floor (hash scan)"),
            ("split_parquet", "split, parquet"),
            ("split_none", "split, none"),
        ):
            m = s[key]
            ratio = f"{m['ratio_to_floor']:.3f}" if "ratio_to_floor" in m else "1"
            runs = ", ".join(f"{r:.1f}" for r in m["runs_s"])
            lines.append(
                f"| {s['rows']:,} | {label} | {runs} | {m['best_s']:.1f} | "
                f"{m['rows_per_s']:,} | {ratio} |"
            )
    ev = results["read_once"]
    lines += [
        "",
        "| statement | source refs | staging refs | FARM_FINGERPRINT |",
        "|---|--:|--:|--:|",
    ]
    lines += [
        f"| {st['name']} | {st['source_refs']} | {st['staging_refs']} | {st['farm_fingerprint']} |"
        for st in ev["statements"]
    ]
    lines.append(f"\nsource read once: {ev['source_read_once']}")
    c = results["compile"]
    lines.append(
        f"compile_all ({c['files']} files, kfp {c['kfp']}): {c['compile_all_s']:.2f} s "
        f"(again in-process {c['compile_all_again_s']:.2f} s); "
        f"kfp import {c['kfp_import_s']:.2f} s, kfpkit.compile import {c['kfpkit_import_s']:.2f} s"
    )
    d = results["docker"]
    if "skipped" in d:
        lines.append(f"docker: skipped ({d['skipped']})")
    else:
        mb = 1e6
        lines.append(
            f"images: core {d['core_size_bytes'] / mb:.1f} MB, "
            f"base {d['base_size_bytes'] / mb:.1f} MB, "
            f"kfpkit layers {d['kfpkit_layers_bytes'] / mb:.1f} MB; cold start "
            f"{d['cold_start_median_s']:.2f} s (python3 -c pass: "
            f"{d['container_python_pass_median_s']:.2f} s)"
        )
    ext = results["extrapolation_10m"]
    if ext and not any(s["rows"] == TEN_MILLION for s in results["split"]):
        lines.append(
            f"10M rows not run; extrapolated from {ext['from_rows']:,}: floor ~{ext['floor_s']} s, "
            f"split (parquet) ~{ext['split_parquet_s']} s"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-10m", action="store_true", help="also run 10,000,000 rows (~1 h)")
    parser.add_argument("--demo-reps", type=int, default=2, help="repetitions at 277,677 rows")
    parser.add_argument("--reps", type=int, default=1, help="repetitions at larger sizes")
    parser.add_argument(
        "--sizes", type=int, nargs="+", help="row counts to run instead of the default sizes"
    )
    parser.add_argument("--json", type=Path, default=RESULTS_JSON, help="where to write results")
    parser.add_argument(
        "--embedded-only",
        action="store_true",
        help="only the embedded engine (no emulator), results in results_split_embedded.json",
    )
    parser.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB alternative")
    args = parser.parse_args()

    os.chdir(ROOT)  # demo data cache and emulator venv are relative to the repository
    sizes = args.sizes or [demo_data.ROWS, ONE_MILLION]
    if args.rows_10m:
        sizes.append(TEN_MILLION)
    if args.embedded_only:
        embedded_only(sizes, not args.no_duckdb)
        return
    results: dict[str, Any] = {"machine": machine(), "split": []}
    log(f"machine: {results['machine']}")
    evidence: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kfpkit-bench-") as tmp:
        for rows in sizes:
            reps = args.demo_reps if rows == demo_data.ROWS else args.reps
            size_result, size_evidence = bench_size(rows, reps, Path(tmp))
            results["split"].append(size_result)
            evidence = evidence or size_evidence
        floor_lib, floor_source = c_floor_library(Path(tmp))
        results["embedded"] = [bench_embedded(rows, Path(tmp), floor_lib, duckdb=True)
                               for rows in sizes]  # fmt: skip
        results["embedded_c_floor_source"] = floor_source
    results["read_once"] = evidence
    results["extrapolation_10m"] = extrapolate_10m(results["split"])
    log("compile_all")
    results["compile"] = bench_compile()
    log("docker")
    results["docker"] = bench_docker()
    results["finished_utc"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    print(embedded_markdown(results["embedded"]))
    print(f"\nwrote {args.json}")


def embedded_only(sizes: list[int], duckdb: bool) -> None:
    """The embedded engine's side alone (``--embedded-only``): minutes, not the emulator's
    hour; the emulator's figures stay in results.json."""
    out = ROOT / "benchmarks" / "results_split_embedded.json"
    results: dict[str, Any] = {"machine": machine(), "embedded": []}
    with tempfile.TemporaryDirectory(prefix="kfpkit-bench-") as tmp:
        floor_lib, floor_source = c_floor_library(Path(tmp))
        results["c_floor_source"] = floor_source
        for rows in sizes:
            log(f"embedded engine, {rows:,} rows")
            results["embedded"].append(bench_embedded(rows, Path(tmp), floor_lib, duckdb))
            log(json.dumps(results["embedded"][-1]))
    results["finished_utc"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if out.exists():  # sizes measured in an earlier round stay, each with its machine and date
        earlier = json.loads(out.read_text())
        rounds = earlier.get("earlier_rounds", [])
        kept = [e for e in earlier["embedded"] if e["rows"] not in sizes]
        if kept:
            rounds.append({k: earlier[k] for k in ("machine", "finished_utc")} | {"embedded": kept})
        results["earlier_rounds"] = rounds
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(embedded_markdown(results["embedded"]))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
