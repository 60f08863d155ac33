"""The core image with and without google-cloud-aiplatform: size, and the cold start of a
Vertex-facing step (register_model / resolve_model with the ``vertex`` backend).

Compares two core images: the current one (the Vertex path over REST, kfpkit.vertex_api) and
a reference built before the change, kept under a tag of its own (default
``kfpkit-bench/core:with-aiplatform``; make it with ``docker tag`` before rebuilding). Each
cold start is ``docker run --rm <image> python3 -c <code>`` from the host, median of
``--reps`` (the two images alternate); the Vertex path's code is the same in both (what
register_model runs before its first request: its launcher, then ``open_registry("vertex",
...)``), so each image measures its own kfpkit. No request leaves the container
(``--network none``).

Usage: .venv/bin/python benchmarks/bench_vertex_path.py [--before REF] [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_split import machine  # noqa: E402

from kfpkit import images  # noqa: E402

RESULTS_JSON = ROOT / "benchmarks" / "results_vertex_path.json"
VERTEX_PATH = (
    "import kfpkit.components.register_model.launcher\n"
    "from kfpkit.registry import open_registry\n"
    "open_registry('vertex', project='kfpkit-bench', location='us-central1',\n"
    "              api_endpoint='http://127.0.0.1:9')\n"
)
CODES = {"container start": "pass", "vertex registry opened": VERTEX_PATH}


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, text=True,
                          capture_output=True).stdout.strip()  # fmt: skip


def size_mb(ref: str) -> float:
    return round(int(docker("image", "inspect", "--format", "{{.Size}}", ref)) / 1e6, 1)


def gzip_mb(ref: str) -> float:
    save = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE)
    packed = subprocess.run(["gzip", "-1"], stdin=save.stdout, capture_output=True, check=True)
    save.wait()
    return round(len(packed.stdout) / 1e6, 1)


def run_once(ref: str, code: str) -> float:
    start = time.perf_counter()
    docker("run", "--rm", "--network", "none", ref, "python3", "-c", code)
    return round(time.perf_counter() - start, 2)


def has_aiplatform(ref: str) -> bool:
    code = "import importlib.util as u; print(u.find_spec('google.cloud.aiplatform') is not None)"
    return docker("run", "--rm", "--network", "none", ref, "python3", "-c", code) == "True"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", default="kfpkit-bench/core:with-aiplatform")
    parser.add_argument("--after", default=images.image("core"))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", type=Path, default=RESULTS_JSON)
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": machine(), "load_average_before": os.getloadavg()}
    refs = {"before": args.before, "after": args.after}
    for label, ref in refs.items():
        row: dict[str, Any] = {"image": ref, "id": docker("image", "inspect", "--format",
                                                          "{{.Id}}", ref)[7:19]}  # fmt: skip
        row["size_mb"], row["gzip_mb"] = size_mb(ref), gzip_mb(ref)
        row["aiplatform"] = has_aiplatform(ref)
        results[label] = row
    # the two images alternate, so a change in the machine's load falls on both alike
    for name, code in CODES.items():
        times: dict[str, list[float]] = {label: [] for label in refs}
        for _ in range(args.reps):
            for label, ref in refs.items():
                times[label].append(run_once(ref, code))
        for label in refs:
            results[label][name] = {"median_s": statistics.median(times[label]),
                                    "runs_s": times[label]}  # fmt: skip
    print(json.dumps({label: results[label] for label in refs}, indent=1))
    results["load_average_after"] = os.getloadavg()
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
