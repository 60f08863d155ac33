"""Continuous training on the demo data's real years: one window a run, and the replay.

``kfpkit run continuous_training --local --emulator --window 2016`` loads the demo rows of
that year into their own table (``kfpkit-demo.demo.employment_2016``: one table per window,
the way new data arrives) and runs the pipeline on it, with the state folder and the serving
directory under ``<pipeline root>/continuous/``. ``kfpkit replay`` runs the windows one
after the other (2015 first: it trains the first model), then scores the model that was
serving when each year arrived, and the model frozen after 2015, on that year's rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from kfpkit import demo_data, images, scoring
from kfpkit.window_state import check_window

PIPELINE = "continuous_training"
WINDOWS = ("2015", "2016", "2017", "2018")
DEMO_PROJECT = "kfpkit-demo"
# Steps of a window's run: always, and only when it retrains (and when blessed).
DECISION_STEPS = ("split", "validate-data", "load-state", "compare-windows",
                  "monitor-serving", "decide", "record-window")  # fmt: skip
RETRAIN_STEPS = (
    "tune",
    "train",
    "evaluate",
    "publish-model",
    "register-model",
    "record-registration",
    "push-model",
    "record-production",
)


def window_table(window: str) -> str:
    return f"{DEMO_PROJECT}.demo.employment_{window}"


def window_parquet(window: str, out_dir: Path, source: Path | None = None) -> Path:
    """The demo rows of one year as their own Parquet file (cached under ``out_dir``)."""
    # the pipeline's own label check first ('02015' refused: a second window of 2015's rows)
    check_window(window)
    if not window.isdigit():
        raise ValueError(f"demo windows are years (2015-2018), got {window!r}")
    out = out_dir / f"employment_{window}.parquet"
    if not out.exists():
        table = pq.read_table(source or demo_data.demo_parquet())
        rows = table.filter(pc.equal(table["year"], int(window)))
        if rows.num_rows == 0:
            raise ValueError(f"the demo data has no rows of year {window} (2015-2018)")
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        pq.write_table(rows, tmp)
        tmp.replace(out)
    return out


def layout(root: Path) -> dict[str, Path]:
    base = root.absolute() / "continuous"
    return {"base": base, "state": base / "state", "serving": base / "serving" / "employment",
            "data": base / "data"}  # fmt: skip


def window_arguments(root: Path, window: str, endpoint: str) -> dict[str, Any]:
    paths = layout(root)
    return {
        "project": DEMO_PROJECT,
        "source_table": window_table(window),
        "window": window,
        "state_uri": str(paths["state"]),
        "destination_dataset": "demo_splits",
        "serving_model_uri": str(paths["serving"]),
        "bigquery_endpoint": endpoint,
        # the embedded registry (MLflow on SQLite) beside the state, seen by the steps
        "registry_uri": str(paths["base"] / "registry" / "mlflow.db"),
    }


@dataclass
class WindowRun:
    window: str
    seconds: float
    ran: list[str]
    from_cache: list[str]
    skipped: list[str]
    decision: dict[str, Any]
    serving_versions_before: list[int]
    serving_versions_after: list[int]
    run_dir: str
    evaluation: dict[str, Any]


def _versions(path: Path) -> list[int]:
    from kfpkit.runtime.model_versions import versions

    return versions(str(path))


def run_window(
    root: Path, window: str, emulator: Any, params: dict[str, Any], cache: bool = False
) -> WindowRun:
    """Loads the window's table into the running emulator and runs the pipeline on it."""
    from kfpkit.local_run import run_local

    paths = layout(root)
    parquet = window_parquet(window, paths["data"])
    rows = demo_data.load_into_bigquery(emulator.client(), parquet, window_table(window))
    print(f"[kfpkit] window {window}: {rows} rows in {window_table(window)}", flush=True)
    before = _versions(paths["serving"])
    run = run_local(PIPELINE, {**window_arguments(root, window, emulator.endpoint), **params},
                    root, enable_caching=cache)  # fmt: skip
    decision_file = paths["state"] / "windows" / window / "decision.json"
    decision = json.loads(decision_file.read_text())
    names = {s.task: s for s in run.steps}
    display = _TASK_DISPLAY
    ran = sorted(display.get(t, t) for t, s in names.items() if not s.from_cache)
    # only tasks kfp.local answered from its cache in this run (a skipped branch is not one)
    cached = sorted(display.get(t, t) for t, s in names.items() if s.from_cache)
    seen = set(ran) | set(cached)
    skipped = [s for s in (*DECISION_STEPS, *RETRAIN_STEPS) if s not in seen]
    evaluation = names["evaluate"].artifacts["metrics"]["metadata"] if "evaluate" in names else {}
    return WindowRun(window, round(run.seconds, 1), ran, cached, skipped, decision, before,
                     _versions(paths["serving"]), str(run.run_dir), dict(evaluation))  # fmt: skip


# kfp.local names a task's folder after its task name; the pipeline's display names are
# what people read (split, decide, ...).
_TASK_DISPLAY = {
    "bigquery-split": "split", "tfdv-validate-splits": "validate-data",
    "load-window-state": "load-state", "tfdv-validate": "compare-windows",
    "monitor-serving": "monitor-serving",
    "retrain-decision": "decide", "save-window-state": "record-window",
    "katib-tune": "tune", "train": "train", "evaluate": "evaluate",
    "publish-model": "publish-model", "kserve-push": "push-model",
    "register-model": "register-model", "register-model-2": "register-challenger",
    # the registered version, blessed (-2) or the challenger (-4): the window's re-run guard
    "save-window-state-2": "record-registration", "save-window-state-3": "record-production",
    "save-window-state-4": "record-registration", "record-outcome": "record-outcome",
}  # fmt: skip


def label_column(params: dict[str, Any]) -> str:
    """The label the windows were trained on: the run's ``label_column`` parameter, else the
    pipeline's own default (set once, in pipelines/training.py)."""
    if params.get("label_column"):
        return str(params["label_column"])
    from kfpkit import catalog

    return str(catalog.load_pipeline(PIPELINE).component_spec.inputs["label_column"].default)


def score(
    jobs: list[tuple[str, Path, Path]], mount: Path, label: str
) -> dict[str, dict[str, float]]:
    """Scores (key, serving version folder, Parquet) jobs in the train image, as a server
    calls the model (its ``serving_default`` signature on raw features), against ``label``."""
    if not jobs:
        return {}
    with tempfile.TemporaryDirectory(dir=mount) as tmp:
        args = []
        for key, version_dir, data in jobs:
            single = Path(tmp) / key  # a serving folder holding just this version
            single.mkdir()
            os.symlink(version_dir, single / "1")
            args.append([key, str(single), str(data)])
        cmd = ["docker", "run", "--rm", "--network", "none", "--user",
               f"{os.getuid()}:{os.getgid()}", "-v", f"{mount}:{mount}", "-e", "HOME=/tmp",
               images.image("train"), "python3", "-m", "kfpkit.scoring", json.dumps(args),
               label]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"scoring failed ({done.returncode}): {done.stderr[-2000:]}")
    line = [x for x in done.stdout.splitlines() if x.startswith(scoring.PREFIX)][-1]
    return json.loads(line.split(" ", 1)[1])  # type: ignore[no-any-return]


def replay(
    root: Path,
    windows: tuple[str, ...] = WINDOWS,
    params: dict[str, Any] | None = None,
    cache: bool = False,
    fresh: bool = True,
) -> dict[str, Any]:
    """Runs the windows in order on one emulator, then scores served and frozen models."""
    import shutil

    from kfpkit.emulator import Emulator

    paths = layout(root)
    if fresh:  # a replay starts with no state, no model, no registry (the data stays)
        for folder in (paths["state"], paths["serving"].parent, paths["base"] / "registry"):
            shutil.rmtree(folder, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    port = 9050 if cache else 0  # the endpoint is a split input: fixed, for the cache
    runs: list[WindowRun] = []
    started = time.monotonic()
    log = str(root.absolute() / "bqemulator.log")
    with Emulator(project=DEMO_PROJECT, log_path=log, rest_port=port) as emu:
        for window in windows:
            runs.append(run_window(root, window, emu, params or {}, cache))
            r = runs[-1]
            print(f"[kfpkit] window {window}: {'retrained' if r.decision['retrain'] else 'kept'}"
                  f" in {r.seconds:.1f}s: {'; '.join(r.decision['reasons'])}",
                  flush=True)  # fmt: skip
    total = time.monotonic() - started
    jobs = []
    for r in runs[1:]:
        data = paths["data"] / f"employment_{r.window}.parquet"
        if r.serving_versions_before:
            served = paths["serving"] / str(r.serving_versions_before[-1])
            jobs.append((f"served_{r.window}", served, data))
            jobs.append((f"frozen_{r.window}", paths["serving"] / "1", data))
    scores = score(jobs, paths["base"], label_column(params or {}))
    result = {
        "windows": [r.__dict__ for r in runs],
        "scores": scores,
        "total_seconds": round(total, 1),
        "params": params or {},
        "cache": cache,
    }
    (paths["base"] / "replay.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


def table(result: dict[str, Any]) -> str:
    """The replay as a Markdown table: decision, reasons, served vs frozen accuracy/AUC."""
    lines = [
        "| window | retrained | why | served model (trained on) | served acc / AUC "
        "| frozen 2015 acc / AUC | s |",
        "|---|---|---|---|---|---|---:|",
    ]  # fmt: skip
    for w in result["windows"]:
        key = w["window"]
        served, frozen = (
            result["scores"].get(f"served_{key}"),
            result["scores"].get(f"frozen_{key}"),
        )
        fmt = lambda s: f"{s['accuracy']:.4f} / {s['auc']:.4f}" if s else "-"  # noqa: E731
        decision = w["decision"]
        lines.append(
            f"| {key} | {'yes' if decision['retrain'] else 'no'} "
            f"| {'; '.join(decision['reasons'])} | {decision['production_window'] or '-'} "
            f"| {fmt(served)} | {fmt(frozen)} | {w['seconds']} |"
        )  # fmt: skip
    return "\n".join(lines)
