"""The local training pipeline, step by step, and what each step pays before it works.

Measured in one run (``make bench``; about 10 min on 2 cores):

1. Images: the size of every family as shipped (byte-compiled) and of its source-only variant
   (``KFPKIT_BYTE_COMPILE=0``, built here once and cached by content hash like the others).
2. Cold start per step: ``docker run --rm <image> python3 -c "import <launcher>; ..."`` for
   every component (its launcher and the stack it imports before it works: the
   ``RUNTIME_IMPORTS`` below), median of ``--reps`` runs, in both variants, next to
   ``python3 -c pass`` in the same image (the container start alone). Compressed size of each
   shipped image (``docker save | gzip``: about what a registry stores and a node pulls).
3. The pipeline: ``kfpkit run training --local --emulator --param tuning_trials=0`` (tuning
   is ``bench_tune.py``'s subject) in a fresh process, wall time of
   the whole command and of each step (from kfp.local's log), then a warm re-run with
   ``--cache`` after a cold one: which steps ran and how long it took.

Prints a markdown summary and writes ``benchmarks/results_pipeline.json``. The comparison
with TFX on the same work is ``bench_vs_tfx.py`` (its own environment, not part of CI).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_split import machine  # noqa: E402

from kfpkit import images  # noqa: E402

RESULTS_JSON = ROOT / "benchmarks" / "results_pipeline.json"
SOURCE_REGISTRY, SOURCE_TAG = "kfpkit-bench", "source"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STEP = re.compile(r"^(\d\d:\d\d:\d\d\.\d+) - INFO - (?:Executing task '([^']+)'|Task '([^']+)' "
                   r"(finished with status|cache hit))")  # fmt: skip


# What a step imports after its launcher, before it works (launchers that import their
# heavy stack lazily): the cold start counts both. katib_tune's figure is its own process
# (no trial; each local trial process imports the trainer, as train does).
RUNTIME_IMPORTS = {
    "evaluate": ("tensorflow",),
    "kserve_push": ("kserve", "tensorflow"),
    "train": ("kfpkit.training.trainer",),
}


def step_imports() -> dict[str, tuple[str, str]]:
    """component -> (family, the import statement its step runs before its work)."""
    return {
        name: (family, "; ".join(f"import {m}" for m in (
            f"kfpkit.components.{name}.launcher", *RUNTIME_IMPORTS.get(name, ()))))
        for name, family in sorted(images.COMPONENT_FAMILIES.items())
    }  # fmt: skip


def docker(*args: str, capture: bool = True) -> str:
    done = subprocess.run(["docker", *args], check=True, text=True, capture_output=capture)
    return done.stdout.strip() if capture else ""


def build_source_variants(families: list[str]) -> dict[str, str]:
    env = {**os.environ, "KFPKIT_BYTE_COMPILE": "0", "KFPKIT_IMAGE_REGISTRY": SOURCE_REGISTRY,
           "KFPKIT_IMAGE_TAG": SOURCE_TAG}  # fmt: skip
    subprocess.run([sys.executable, str(ROOT / "images" / "build.py"), *families], check=True,
                   env=env, stdout=subprocess.DEVNULL)  # fmt: skip
    return {f: f"{SOURCE_REGISTRY}/{f}:{SOURCE_TAG}" for f in families}


def size_mb(ref: str) -> float:
    return round(int(docker("image", "inspect", "--format", "{{.Size}}", ref)) / 1e6, 1)


def gzip_mb(ref: str) -> float:
    save = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE)
    packed = subprocess.run(["gzip", "-1"], stdin=save.stdout, capture_output=True, check=True)
    save.wait()
    return round(len(packed.stdout) / 1e6, 1)


def median_run(ref: str, code: str, reps: int) -> tuple[float, list[float]]:
    runs = []
    for _ in range(reps):
        start = time.perf_counter()
        docker("run", "--rm", "--network", "host", ref, "python3", "-c", code)
        runs.append(round(time.perf_counter() - start, 2))
    return statistics.median(runs), runs


def bench_cold_starts(reps: int) -> dict[str, Any]:
    families = sorted(set(images.COMPONENT_FAMILIES.values()))
    # Both variants from this tree (a no-op where an image is current).
    subprocess.run([sys.executable, str(ROOT / "images" / "build.py"), *families], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    shipped = {f: images.image(f) for f in families}
    source = build_source_variants(families)
    out: dict[str, Any] = {"images": {}, "steps": {}}
    for f in families:
        out["images"][f] = {
            "shipped_mb": size_mb(shipped[f]),
            "shipped_gzip_mb": gzip_mb(shipped[f]),
            "source_only_mb": size_mb(source[f]),
            "container_start_s": median_run(shipped[f], "pass", reps)[0],
        }
    for name, (family, code) in step_imports().items():
        row = {"family": family, "code": code}
        for variant, ref in (("shipped", shipped[family]), ("source_only", source[family])):
            row[f"{variant}_s"], row[f"{variant}_runs_s"] = median_run(ref, code, reps)
        out["steps"][name] = row
        print(json.dumps({name: row}), flush=True)
    return out


def step_seconds(log: str) -> dict[str, dict[str, Any]]:
    """Per task: seconds from 'Executing task' to 'finished', or a cache hit."""
    started: dict[str, float] = {}
    steps: dict[str, dict[str, Any]] = {}
    for line in _ANSI.sub("", log).splitlines():
        m = _STEP.match(line)
        if not m:
            continue
        h, mi, s = m.group(1).split(":")
        t = int(h) * 3600 + int(mi) * 60 + float(s)
        if m.group(2):
            started[m.group(2)] = t
        elif m.group(4) == "cache hit":
            steps[m.group(3)] = {"seconds": 0.0, "from_cache": True}
        elif m.group(3) in started:
            steps[m.group(3)] = {"seconds": round(t - started[m.group(3)], 1), "from_cache": False}
    return steps


def run_pipeline(root: Path, *extra: str) -> dict[str, Any]:
    cmd = [str(ROOT / ".venv" / "bin" / "kfpkit"), "run", "training", "--local", "--emulator",
           "--pipeline-root", str(root), *extra]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = round(time.perf_counter() - start, 1)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    text = done.stdout + done.stderr
    cached = sorted(
        line.split()[1].rstrip(":")
        for line in done.stdout.splitlines()
        if line.startswith("  step ") and "from KFP's cache" in line
    )
    evaluation = re.search(r" accuracy=([0-9.]+), auc=([0-9.]+)", done.stdout)
    return {
        "command": " ".join(cmd[1:]),
        "wall_s": wall,
        "steps": step_seconds(text),
        "from_cache": cached,
        "test_accuracy": float(evaluation.group(1)) if evaluation else None,
        "test_auc": float(evaluation.group(2)) if evaluation else None,
    }


def bench_pipeline(rows: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="kfpkit-bench-pipeline-"))
    try:
        # Tuning off (its trials are the tuning benchmark's subject): the same work as the
        # comparison with TFX, which has no tuner.
        sized = [*(["--rows", str(rows)] if rows else []), "--param", "tuning_trials=0"]
        out = {"cold": run_pipeline(work / "plain", *sized)}
        out["cached_first"] = run_pipeline(work / "cached", "--cache", *sized)
        out["cached_warm"] = run_pipeline(work / "cached", "--cache", *sized)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def markdown(results: dict[str, Any]) -> str:
    lines = ["## Images and cold start per step", ""]
    lines += ["| family | shipped (byte-compiled) | gzip | source only | size change | "
              "container start |", "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for f, r in results["cold_start"]["images"].items():
        change = r["shipped_mb"] - r["source_only_mb"]
        lines.append(f"| {f} | {r['shipped_mb']:.0f} MB | {r['shipped_gzip_mb']:.0f} MB | "
                     f"{r['source_only_mb']:.0f} MB | {change:+.0f} MB | "
                     f"{r['container_start_s']:.2f} s |")  # fmt: skip
    lines += ["", "| step | image | imports, byte-compiled | imports, source only | ratio |",
              "|---|---|---:|---:|---:|"]  # fmt: skip
    for name, r in results["cold_start"]["steps"].items():
        ratio = r["source_only_s"] / max(r["shipped_s"], 1e-9)
        lines.append(f"| {name} | {r['family']} | {r['shipped_s']:.2f} s | "
                     f"{r['source_only_s']:.2f} s | {ratio:.1f}x |")  # fmt: skip
    for label, key in (("cold", "cold"), ("--cache, first", "cached_first"),
                       ("--cache, warm re-run", "cached_warm")):  # fmt: skip
        if "pipeline" not in results:
            break
        run = results["pipeline"][key]
        steps = ", ".join(
            f"{t} {'cache' if s['from_cache'] else str(s['seconds']) + ' s'}"
            for t, s in sorted(run["steps"].items())
        )
        lines += ["", f"**{label}** ({run['command']}): {run['wall_s']} s wall; {steps}; "
                      f"test accuracy {run['test_accuracy']}, AUC {run['test_auc']}"]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3, help="cold-start runs per measurement")
    parser.add_argument("--rows", type=int, default=0, help="pipeline rows (0: the demo's)")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--json", type=Path, default=RESULTS_JSON)
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": machine()}
    load_before = os.getloadavg()
    results["cold_start"] = bench_cold_starts(args.reps)
    if not args.skip_pipeline:
        results["pipeline"] = bench_pipeline(args.rows)
    results["load_average_before_after"] = [load_before, os.getloadavg()]
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
