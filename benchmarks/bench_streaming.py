"""Peak memory of the train, evaluate and statistics steps at 277k, 1M and 10M rows, and the
stopping rule's time to a target AUC.

Each step runs in its own process, in its image family's environment (train and evaluate in
``.venvs/train``, statistics in ``.venvs/tfdv``), on the splits the split step writes for the
demo data upsampled to the size (``kfpkit.demo_data.scaled_parquet``, split by the embedded
engine as ``kfpkit run training --local --data`` splits it); its peak resident memory is the
kernel's ``ru_maxrss`` of that process (``os.wait4``). The runtime functions are called
directly (``trainer.train``, ``evaluator.evaluate``, ``statistics.compute_split_statistics``),
not through the launchers: the same work without the executor-input parsing.

- train: the default hyperparameters (early stopping on validation AUC) up to 1M rows; above
  ``--full-epochs-up-to`` rows at most ``--large-epochs`` epochs (default 1: memory does not
  depend on the epoch count, only time does; 2 cores cannot spend an hour per size);
- evaluate: the component's defaults (slices SEX and year, 1,000 bootstrap resamples,
  attributions of 1,000 rows) up to 1M rows, ``--large-resamples`` resamples above (default
  100: the resample count changes time, not memory: one resample's weights at a time);
- statistics: the three splits' TFDV statistics (the in-process Parquet path the
  validate-splits step runs).

Stopping (``--curve-rows``, default 1M): the trainer once with the default rule and once
for all 10 epochs (patience 10); the validation AUC and cumulative training time after
every epoch, the time to reach each target AUC, and both models' test AUC.

Run (``make bench`` runs it with the defaults; about 25 minutes on 2 cores):
    .venv/bin/python benchmarks/bench_streaming.py [--sizes 277677 1000000 10000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench_streaming"
TRAIN_PY = ROOT / ".venvs" / "train" / "bin" / "python"
TFDV_PY = ROOT / ".venvs" / "tfdv" / "bin" / "python"
LABEL = "employed"
SLICES = ("SEX", "year")
SPLITS = ("train", "validation", "test")
TARGETS = (0.905, 0.906, 0.907, 0.908, 0.909)


# ---- children: one step each, run in the family's environment -------------------------


def child_train(args: dict[str, Any]) -> dict[str, Any]:
    import keras

    from kfpkit.hyperparameters import parse_hyperparameters
    from kfpkit.training import trainer

    class Clock(keras.callbacks.Callback):  # cumulative training time, validation excluded
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self.total = 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.start = time.perf_counter()

        def on_test_begin(self, logs: Any = None) -> None:
            self.total += time.perf_counter() - self.start
            self.seconds.append(round(self.total, 2))

    clock = Clock()
    root = Path(args["splits"])
    request = trainer.TrainRequest(
        train_path=str(root / "train"),
        validation_path=str(root / "validation"),
        model_dir=args["model_dir"],
        label_column=LABEL,
        exclude_columns=("id",),
        hyperparameters=parse_hyperparameters(args["hyperparameters"]),
    )
    result = trainer.train(request, callbacks=[clock])
    return {
        "metrics": result.metrics,
        "val_auc_by_epoch": [round(v, 5) for v in result.history["val_auc"]],
        "train_seconds_by_epoch": clock.seconds,
    }


def child_evaluate(args: dict[str, Any]) -> dict[str, Any]:
    from kfpkit.components.evaluate import evaluator, intervals

    request = evaluator.EvaluateRequest(
        model_path=args["model_dir"],
        test_path=str(Path(args["splits"]) / "test"),
        label_column=LABEL,
        slice_columns=SLICES if args["resamples"] else (),
        bootstrap=intervals.BootstrapSettings(resamples=args["resamples"])
        if args["resamples"]
        else None,
        explain_rows=args["explain_rows"],
    )
    result = evaluator.evaluate(request)
    return {"test_auc": result.candidate["auc"], "test_accuracy": result.candidate["accuracy"]}


def child_statistics(args: dict[str, Any]) -> dict[str, Any]:
    from kfpkit.tfdv.data_files import find_data_files
    from kfpkit.tfdv.statistics import compute_split_statistics

    root, out = Path(args["splits"]), Path(args["out"])
    out.mkdir(parents=True, exist_ok=True)
    splits = {s: (find_data_files(str(root / s), s), str(out / f"{s}.pb")) for s in SPLITS}
    stats = compute_split_statistics(splits)
    return {s: stats[s].datasets[0].num_examples for s in SPLITS}


CHILDREN = {"train": child_train, "evaluate": child_evaluate, "statistics": child_statistics}


# ---- parent: splits, processes, peak memory --------------------------------------------


def splits_for(rows: int) -> Path:
    """The train/validation/test Parquet splits of ``rows`` demo rows (cached)."""
    sys.path.insert(0, str(ROOT / "src"))
    from kfpkit import demo_data
    from kfpkit.components.bigquery_split import embedded
    from kfpkit.components.bigquery_split.sql import DEFAULT_RATIOS

    root = CACHE / str(rows)
    if not (root / "complete").exists():
        source = (
            demo_data.demo_parquet() if rows == demo_data.ROWS else demo_data.scaled_parquet(rows)
        )
        embedded.split_files(str(source.resolve()), ["id"], dict(DEFAULT_RATIOS),
                             {s: str(root / s) for s in SPLITS}, LABEL)  # fmt: skip
        (root / "complete").touch()
    return root


def run_step(python: Path, step: str, args: dict[str, Any]) -> dict[str, Any]:
    """Runs one step in a fresh process: its result, wall seconds and peak RSS (MiB)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(python), __file__, "--child", step, json.dumps(args)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{step} {args} exited {proc.returncode}: {out[-2000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    return {"wall_s": round(wall, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024), **result}


def machine() -> dict[str, Any]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    meminfo = Path("/proc/meminfo").read_text().split()
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "mem_gib": round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1),
        "load_average_at_start": os.getloadavg(),
    }


def time_to(targets: tuple[float, ...], aucs: list[float], seconds: list[float]) -> dict:
    out = {}
    for target in targets:
        epoch = next((i for i, auc in enumerate(aucs) if auc >= target), None)
        out[f"{target:.3f}"] = None if epoch is None else {"epoch": epoch + 1, "s": seconds[epoch]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[277_677, 1_000_000, 10_000_000])
    parser.add_argument("--full-epochs-up-to", type=int, default=1_000_000)
    parser.add_argument("--large-epochs", type=int, default=1)
    parser.add_argument("--large-resamples", type=int, default=100)
    parser.add_argument("--curve-rows", type=int, default=1_000_000, help="0: no curve")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results_streaming.json"))
    args = parser.parse_args()

    work = CACHE / "work"
    results: dict[str, Any] = {"machine": machine(), "sizes": {}}
    for rows in args.sizes:
        splits = splits_for(rows)
        large = rows > args.full_epochs_up_to
        hp = {"epochs": args.large_epochs} if large else {}
        model_dir = str(work / f"model-{rows}-{time.time_ns()}")
        steps = {
            "statistics": run_step(TFDV_PY, "statistics",
                                   {"splits": str(splits), "out": str(work / f"stats-{rows}")}),
            "train": run_step(TRAIN_PY, "train", {"splits": str(splits), "model_dir": model_dir,
                                                  "hyperparameters": hp}),
            "evaluate": run_step(TRAIN_PY, "evaluate", {
                "splits": str(splits), "model_dir": model_dir, "explain_rows": 1000,
                "resamples": args.large_resamples if large else 1000}),
        }  # fmt: skip
        results["sizes"][str(rows)] = {"hyperparameters": hp, **steps}
        print(json.dumps({"rows": rows, **{k: {"wall_s": v["wall_s"], "peak_rss_mib":
              v["peak_rss_mib"]} for k, v in steps.items()}}), flush=True)  # fmt: skip
    if args.curve_rows:
        splits = splits_for(args.curve_rows)
        curve = {}
        for rule, hp in (("default", {}), ("all 10 epochs", {"early_stopping_patience": 10})):
            model_dir = str(work / f"curve-{time.time_ns()}")
            trained = run_step(TRAIN_PY, "train", {"splits": str(splits), "model_dir": model_dir,
                                                   "hyperparameters": hp})  # fmt: skip
            plain = {"explain_rows": 0, "resamples": 0}  # test AUC only
            tested = run_step(
                TRAIN_PY, "evaluate", {"splits": str(splits), "model_dir": model_dir, **plain}
            )
            curve[rule] = {
                "wall_s": trained["wall_s"],
                "epochs_run": trained["metrics"]["epochs_run"],
                "best_epoch": trained["metrics"]["best_epoch"],
                "validation_auc": trained["metrics"]["validation_auc"],
                "test_auc": tested["test_auc"],
                "test_accuracy": tested["test_accuracy"],
                "val_auc_by_epoch": trained["val_auc_by_epoch"],
                "train_seconds_by_epoch": trained["train_seconds_by_epoch"],
                "time_to_validation_auc": time_to(TARGETS, trained["val_auc_by_epoch"],
                                                  trained["train_seconds_by_epoch"]),
            }  # fmt: skip
            print(json.dumps({"curve": rule, **curve[rule]}), flush=True)
        results["curve"] = {"rows": args.curve_rows, **curve}
    results["machine"]["load_average_at_end"] = os.getloadavg()
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(CHILDREN[sys.argv[2]](json.loads(sys.argv[3]))), flush=True)
    else:
        main()
