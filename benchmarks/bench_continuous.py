"""The continuous-training replay (2015, 2016, 2017, 2018, one run a window), cold and warm.

1. Cold: ``kfpkit replay --cache`` into a fresh pipeline root (empty KFP cache, no state, no
   model): every step of every window runs, or is skipped by the window's decision.
2. Warm: the same replay again with the state and the models reset but KFP's cache kept:
   steps whose image, command and inputs are unchanged (split, data validation, tune, train)
   come from the cache; the state and serving steps (load-state, record-window, evaluate,
   publish, push, record-production) never are, and what reads their outputs runs again.

Per window: wall time, the decision and its reasons, which steps ran, came from the cache
or were skipped; then the scores of the model served when each year arrived and of the
model frozen after 2015 (the replay's own). Prints a Markdown summary and writes
``benchmarks/results_continuous.json``. Uses the pipeline's defaults (3 tuning trials)
unless ``--param`` says otherwise. About 10 min on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from kfpkit.local_run import pin_images_by_content  # noqa: E402

RESULTS_JSON = ROOT / "benchmarks" / "results_continuous.json"


def _summary(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {key: w[key] for key in ("window", "seconds", "ran", "from_cache", "skipped")}
        | {"retrain": w["decision"]["retrain"], "reasons": w["decision"]["reasons"]}
        for w in run["windows"]
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--root", default="", help="pipeline root (default: a temporary one)")
    args = parser.parse_args()
    pin_images_by_content()  # before kfpkit.components is imported: the cache keys on images
    from bench_split import machine  # imports the emulator, which imports the components

    from kfpkit import continuous
    from kfpkit.cli import _parse_params

    params = _parse_params(args.param)
    root = Path(args.root or tempfile.mkdtemp(prefix="kfpkit-bench-continuous-"))
    shutil.rmtree(root / ".kfp_cache", ignore_errors=True)
    cold = continuous.replay(root, params=params, cache=True, fresh=True)
    warm = continuous.replay(root, params=params, cache=True, fresh=True)
    result = {
        "machine": machine(),
        "params": params,
        "cold": {"total_seconds": cold["total_seconds"], "windows": _summary(cold)},
        "warm": {"total_seconds": warm["total_seconds"], "windows": _summary(warm)},
        "replay": cold,  # decisions, distances, evaluation metrics and scores in full
        "scores": cold["scores"],
        "warm_scores": warm["scores"],
    }
    RESULTS_JSON.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(continuous.table(cold))
    print("\n| window | cold s | warm s | warm: from cache | warm: ran |")
    print("|---|---:|---:|---|---|")
    for c, w in zip(result["cold"]["windows"], result["warm"]["windows"], strict=True):
        print(f"| {c['window']} | {c['seconds']} | {w['seconds']} | "
              f"{', '.join(w['from_cache']) or '-'} | {', '.join(w['ran'])} |")  # fmt: skip
    print(f"\ncold {cold['total_seconds']} s, warm {warm['total_seconds']} s; {RESULTS_JSON}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
