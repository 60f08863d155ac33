"""kfpkit's local training pipeline beside TFX 1.16's LocalDagRunner on the same rows.

    .venv/bin/python benchmarks/bench_vs_tfx.py [--rounds 2] [--sizes 277677 1000000]
        [--hyperparameters same|defaults|both] [--kfpkit-data own|emulator]
    make bench-tfx            # the same, after make's set-up and images

Each round runs both sides as separate processes, one after the other (the order alternates
from round to round), and times each process from spawn to exit:

- TFX: ``benchmarks/tfx/pipeline.py`` in its own environment, ``.venvs/tfx-bench``, made here
  from ``benchmarks/tfx/requirements.txt`` when missing or older than it (TFX 1.16 pins
  TF 2.16 and protobuf 4: it cannot share kfpkit's environments; not part of the project's
  dependencies, CI or ``make test``). CsvExampleGen reads a CSV of exactly the rows kfpkit
  loads into the emulator, written before any timing. Step times come from ML Metadata.
- kfpkit, on its own data (``--kfpkit-data own``, the default): ``kfpkit run training --local
  --data <the Parquet> --label employed --key id``, the split in the step's embedded engine;
  or (``--kfpkit-data emulator``) ``kfpkit run training --local --emulator`` (``--rows N`` for
  an upsampled size). Docker steps under kfp.local. Step times come from kfp.local's
  timestamped ``Executing task`` / ``Task ... finished`` log lines; test accuracy/AUC from the
  evaluate step's metrics. After each run the driver reads the key column of kfpkit's split
  outputs and checks that every split holds exactly the rows of TFX's CSV for it.

The model on the TFX side is kfpkit's (``src/kfpkit/training/trainer.py``'s build_model shape,
``kfpkit.hyperparameters`` defaults merged with the pipeline's default ``hyperparameters``),
stopped as the TFX trainer module stops it (Keras ``EarlyStopping`` on the validation loss,
``min_delta`` 0; TFX's pipeline has no Tuner); features, label, split ratios, slice columns,
excluded columns and blessing thresholds come from the pipeline's defaults. Two ways to run
kfpkit (``--hyperparameters``):

- ``same``: kfpkit with the TFX side's hyperparameters (``early_stopping_min_delta`` 0, as
  Keras' EarlyStopping) and every pipeline parameter whose name contains ``trial`` or
  ``budget`` (a tuning budget) set to 0: the same model, the same hyperparameters;
- ``defaults``: kfpkit as a user runs it, with the pipeline's defaults (its tuning trials, its
  stopping rule); the TFX side is unchanged (it has no other default).

Step names are not hard-coded on the kfpkit side: whatever steps ran are reported, grouped by
name (``GROUP_PATTERNS``). The hyperparameters and features the train step recorded are
compared with the TFX side's: any difference is flagged (expected in ``defaults``: tuning).
Keras' per-epoch lines in both logs give each final training's validation AUC per epoch and
epoch times: the report gives the training seconds each side took to reach the TFX run's best
validation AUC.

Prints a markdown table per size and mode and writes ``benchmarks/results_vs_tfx.json``
(``--json``). Work files
go under ``build/bench-vs-tfx/``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TFX_DIR = REPO / "benchmarks" / "tfx"
TFX_VENV = REPO / ".venvs" / "tfx-bench"
TFX_REQUIREMENTS = TFX_DIR / "requirements.txt"
# No CPython 3.11 wheels: built from their hash-checked sdists.
TFX_BUILD_FROM_SOURCE = ("pyfarmhash", "google-apitools", "rouge-score")
WORK = REPO / "build" / "bench-vs-tfx"
DEFAULT_JSON = REPO / "benchmarks" / "results_vs_tfx.json"
PIPELINE = "training"
GROUPS = ("split", "validation", "training", "evaluation", "infra_validation", "bookkeeping")
GROUP_TITLES = {
    "split": "split / CsvExampleGen",
    "validation": "statistics, schema, validation",
    "training": "training",
    "evaluation": "evaluation + push",
    "infra_validation": "infra validation (KServe's server; no step in TFX's pipeline)",
    "bookkeeping": "model registry, run outcome (no step in TFX's pipeline)",
}
# Work one side does that the other's pipeline has no step for: left out of the "same work"
# figures (kfpkit's push-model proves the model on KServe's model server; TFX's pipeline has
# no InfraValidator, which would need TF Serving; kfpkit registers the model in MLflow and
# records the run's outcome, which TFX's pipeline leaves to ML Metadata).
EXTRA_WORK = ("infra_validation", "bookkeeping")
TFX_GROUPS = {
    "CsvExampleGen": "split",
    "StatisticsGen": "validation",
    "SchemaGen": "validation",
    "ExampleValidator": "validation",
    "Trainer": "training",
    "latest_blessed_model_resolver": "evaluation",
    "Evaluator": "evaluation",
    "Pusher": "evaluation",
}
# kfpkit task names -> group, first match wins ("other" when none does): validation first,
# since a data-validation step may name the splits it checks (tfdv-validate-splits).
GROUP_PATTERNS = (
    ("validation", re.compile(r"tfdv|statistic|schema|validat|anomal|drift")),
    ("bookkeeping", re.compile(r"regist|outcome")),
    ("split", re.compile(r"split")),
    ("infra_validation", re.compile(r"push|deploy|serv")),
    ("evaluation", re.compile(r"evaluat|publish")),
    ("training", re.compile(r"train|tun|katib|trial")),
)
TFX_SPLIT_NAMES = {"train": "train", "validation": "eval", "test": "test"}
MODES = ("same", "defaults")
MODE_TITLES = {
    "same": "same model and hyperparameters on both sides, no tuning",
    "defaults": "each side at its defaults (kfpkit: its tuning trials and stopping rule)",
}
KFPKIT_COMMANDS = {
    "own": "kfpkit run training --local --data … --label … --key …",
    "emulator": "kfpkit run training --local --emulator",
}
BEFORE_FIRST_STEP = {
    "own": "CLI start, data check",
    "emulator": "CLI start, emulator start, data load",
}

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_KFP_LINE = re.compile(
    r"^(?P<time>\d\d:\d\d:\d\d\.\d{3}) - \w+ - "
    r"(?:Executing task '(?P<start>[^']+)'"
    r"|Task '(?P<end>[^']+)' finished with status (?P<status>\w+)"
    r"|Skipping (?:conditional )?task '?(?P<skip>[\w.-]+)'?)"
)
_RUN_DIR = re.compile(r"Pipeline '.*' succeeded in [\d.]+s; outputs under (?P<dir>\S+)")
# Keras' verbose=2 lines: "Epoch 3/10", then "782/782 - 12s - 15ms/step - ... - val_auc: 0.9"
_EPOCH_START = re.compile(r"\bEpoch (?P<n>\d+)/(?P<of>\d+)\s*$")
_EPOCH_END = re.compile(r"\d+/\w+ - (?P<sec>\d+)s - .*\bval_auc: (?P<auc>[\d.]+)")


# ----------------------------------------------------------------------------- set-up


def ensure_tfx_env() -> Path:
    """The TFX environment, (re)made when missing or older than the requirements file."""
    python = TFX_VENV / "bin" / "python"
    stamp = TFX_VENV / ".synced"
    if (
        python.exists()
        and stamp.exists()
        and stamp.stat().st_mtime >= TFX_REQUIREMENTS.stat().st_mtime
    ):
        return python
    uv = shutil.which("uv")
    if uv is None:
        raise SystemExit("uv is needed to make the TFX environment (https://docs.astral.sh/uv/)")
    print(f"[bench] making {TFX_VENV} from {TFX_REQUIREMENTS.relative_to(REPO)}", flush=True)
    start = time.monotonic()
    subprocess.run([uv, "venv", "-q", "--allow-existing", "-p", "3.11", str(TFX_VENV)], check=True)
    no_binary = [arg for name in TFX_BUILD_FROM_SOURCE for arg in ("--no-binary", name)]
    subprocess.run(
        [
            uv,
            "pip",
            "sync",
            "-q",
            "--require-hashes",
            "--only-binary",
            ":all:",
            *no_binary,
            str(TFX_REQUIREMENTS),
        ],
        check=True,
        env={**os.environ, "VIRTUAL_ENV": str(TFX_VENV)},
    )
    stamp.touch()
    print(f"[bench] TFX environment ready in {time.monotonic() - start:.0f} s", flush=True)
    return python


def kfpkit_trainer_defaults() -> dict[str, Any]:
    """The trainer's Hyperparameters defaults (kfpkit.hyperparameters: pure, no TensorFlow)."""
    from kfpkit.hyperparameters import Hyperparameters, hyperparameters_dict

    hp: dict[str, Any] = hyperparameters_dict(Hyperparameters())
    if not hp:
        raise SystemExit("kfpkit.hyperparameters: no Hyperparameters defaults")
    return hp


def pipeline_defaults() -> dict[str, Any]:
    """The training pipeline's inputs and their defaults (None: required)."""
    from kfpkit.compile import load_pipeline

    pipeline = load_pipeline(PIPELINE)
    return {name: spec.default for name, spec in pipeline.component_spec.inputs.items()}


def trial_parameters(inputs: dict[str, Any]) -> list[str]:
    """Pipeline parameters that look like a tuning trial budget (set to 0: no tuning); not
    how many trials run at once (tuning_parallel_trials must stay >= 1)."""
    return sorted(
        name
        for name in inputs
        if re.search(r"trial|budget", name, re.IGNORECASE)
        and not re.search(r"parallel", name, re.IGNORECASE)
    )


def code_state() -> dict[str, Any]:
    """The commit, uncommitted changes under the code the pipeline runs, and kfpkit's images."""

    def out(*cmd: str) -> str:
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else f"unavailable: {done.stderr[:200]}"

    dirty = out("git", "status", "--porcelain", "--", "pipelines", "components", "src", "images")
    images = out(
        "docker", "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", "ghcr.io/kfpkit/*"
    )
    return {
        "commit": out("git", "rev-parse", "HEAD"),
        "uncommitted_under_pipelines_components_src_images": dirty.splitlines(),
        # the tags kfpkit runs by default (images.py), with the image ids they name now
        "images": sorted(line for line in images.splitlines() if ":0.1.0 " in line),
    }


def tfx_hash_buckets(split_ratios: dict[str, float]) -> dict[str, int]:
    """kfpkit's split ratios as TFX hash buckets (train/eval/test 8:1:1 for 0.8/0.1/0.1)."""
    missing = set(TFX_SPLIT_NAMES) - set(split_ratios)
    if missing:
        raise SystemExit(f"the pipeline's split_ratios {split_ratios} lack {sorted(missing)}")
    hundredths = {TFX_SPLIT_NAMES[k]: round(split_ratios[k] * 100) for k in TFX_SPLIT_NAMES}
    divisor = math.gcd(*hundredths.values())
    return {k: v // divisor for k, v in hundredths.items()}


def source_parquet(rows: int) -> Path:
    """The Parquet file kfpkit's CLI loads into the emulator for this size."""
    from kfpkit import demo_data

    return (
        REPO
        / (demo_data.demo_parquet() if rows == demo_data.ROWS else demo_data.scaled_parquet(rows))
    ).resolve()


def write_csv(parquet: Path, rows: int, split_ratios: dict[str, float], key: str) -> Path:
    """CsvExampleGen's input for one size, written once before any timing: one folder per
    split (``train``, ``eval``, ``test``) holding exactly the rows kfpkit's split puts there
    (its reference bucket: FarmHash Fingerprint64 of the key, as BigQuery's FARM_FINGERPRINT),
    so both sides train and are tested on the same rows and their accuracies compare."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from kfpkit.components.bigquery_split.reference import split_of

    folder = WORK / "data" / f"{rows}-presplit"
    done = folder / ".complete"
    if done.exists() and done.stat().st_mtime >= parquet.stat().st_mtime:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    table = pq.read_table(parquet)
    if table.num_rows != rows:
        raise SystemExit(f"{parquet} has {table.num_rows} rows, expected {rows}")
    names = pa.array([split_of(str(k), split_ratios) for k in table[key].to_pylist()])
    for split, tfx_name in TFX_SPLIT_NAMES.items():
        part = table.filter(pc.equal(names, split))
        (folder / tfx_name).mkdir(parents=True)
        # TFX's CSV reader takes the header line literally: no quotes (no value needs them).
        with open(folder / tfx_name / "data.csv", "wb") as f:
            f.write((",".join(part.column_names) + "\n").encode())
            pacsv.write_csv(part, f, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    done.touch()
    return folder


def categorical_columns(parquet: Path) -> list[str]:
    """String columns: what kfpkit's schema (TFDV BYTES) makes categorical."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(parquet)
    return [
        f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]


def machine() -> dict[str, Any]:
    """Date, CPUs, memory, kernel and the emulator's versions: bench_split's record."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_split import machine as split_bench_machine

    return split_bench_machine()


# ----------------------------------------------------------------------------- the two sides


def _run_logged(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Runs a command with its output in ``log``; spawn/exit epoch times and the exit code."""
    log.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    with open(log, "wb") as out:
        spawn = time.time()
        start = time.monotonic()
        code = subprocess.run(
            cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env
        ).returncode
        wall = time.monotonic() - start
    return {
        "spawn": spawn,
        "exit": spawn + wall,
        "wall_s": round(wall, 2),
        "returncode": code,
        "log": str(log.relative_to(REPO)),
        "loadavg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
    }


def _tail(log: Path, lines: int = 25, width: int = 300) -> str:
    return "\n".join(line[:width] for line in log.read_text(errors="replace").splitlines()[-lines:])


def run_tfx(python: Path, config: dict[str, Any], name: str) -> dict[str, Any]:
    root = WORK / "tfx" / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    config = {**config, "root": str(root)}
    (root / "config.json").write_text(json.dumps(config, indent=1))
    times_file, result_file = root / "times.json", root / "result.json"
    base = [str(python), str(TFX_DIR / "pipeline.py"), "--config", str(root / "config.json")]
    proc = _run_logged([*base, "--out", str(times_file)], root / "log.txt")
    if proc["returncode"] != 0 or not times_file.exists():
        return {
            **proc,
            "error": f"TFX run failed (exit {proc['returncode']}); log tail:\n"
            + _tail(root / "log.txt"),
        }
    collected = subprocess.run(
        [*base, "--out", str(result_file), "--collect"], capture_output=True, text=True
    )
    if collected.returncode != 0:
        return {**proc, "error": "reading the TFX results failed:\n" + collected.stderr[-3000:]}
    res = {**json.loads(times_file.read_text()), **json.loads(result_file.read_text())}
    steps = [
        {
            "name": s["node"],
            "group": TFX_GROUPS.get(s["node"], "other"),
            "state": s["state"],
            "start": s["start"],
            "end": s["end"],
            "seconds": round(s["end"] - s["start"], 2),
        }
        for s in res["steps"]
    ]
    overall = res.get("metrics", {}).get("overall", {})
    training = res.get("training", {})
    curves = epoch_curves((root / "log.txt").read_text(errors="replace"))
    return {
        **proc,
        "steps": steps,
        "imports_s": round(res["imports_done"] - proc["spawn"], 2),
        "test_accuracy": overall.get("binary_accuracy"),
        "test_auc": overall.get("auc"),
        "test_rows": int(overall["example_count"]) if "example_count" in overall else None,
        "split_rows": res.get("split_rows"),
        "epochs_run": training.get("epochs_run"),
        "best_epoch": training.get("best_epoch"),
        "model_parameters": training.get("parameters"),
        "training": training,
        "blessed": res.get("blessed"),
        "pushed": res.get("pushed"),
        "slices": res.get("metrics", {}).get("slices"),
        "versions": res.get("versions"),
        "epoch_curve": curves[-1] if curves else None,
        "trainings_in_log": len(curves),
    }


def _epoch_of(clock: str, spawn: float) -> float:
    """kfp.local's local-time HH:MM:SS.mmm as epoch seconds (the day of the spawn, or later)."""
    day = datetime.fromtimestamp(spawn).date()
    t = datetime.combine(day, datetime.strptime(clock, "%H:%M:%S.%f").time()).timestamp()
    while t < spawn - 5:  # past midnight
        t = (datetime.fromtimestamp(t) + timedelta(days=1)).timestamp()
    return t


def parse_kfp_log(text: str, spawn: float) -> tuple[list[dict[str, Any]], list[str], Path | None]:
    """(steps in start order, skipped tasks, run folder) from a ``kfpkit run`` log."""
    started: dict[str, float] = {}
    steps: list[dict[str, Any]] = []
    skipped: list[str] = []
    run_dir = None
    for raw in text.splitlines():
        line = _ANSI.sub("", raw).rstrip()
        m = _KFP_LINE.match(line)
        if m:
            t = _epoch_of(m["time"], spawn)
            if m["start"]:
                started[m["start"]] = t
            elif m["end"] and m["end"] in started:
                begin = started.pop(m["end"])
                steps.append(
                    {
                        "name": m["end"],
                        "state": m["status"],
                        "start": begin,
                        "end": t,
                        "seconds": round(t - begin, 2),
                    }
                )
            elif m["skip"]:
                skipped.append(m["skip"])
            continue
        d = _RUN_DIR.search(line)
        if d:
            run_dir = Path(d["dir"])
    return sorted(steps, key=lambda s: s["start"]), skipped, run_dir


def kfpkit_group(task: str) -> str:
    for group, pattern in GROUP_PATTERNS:
        if pattern.search(task):
            return group
    return "other"


def _step_metrics(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Task folder -> metadata of its Metrics artifacts (from executor_output.json)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(run_dir.glob("*/executor_output.json")):
        doc = json.loads(path.read_text())
        merged: dict[str, Any] = {}
        for entry in doc.get("artifacts", {}).values():
            for art in entry.get("artifacts", []):
                merged.update(art.get("metadata", {}))
        merged.update({f"param:{k}": v for k, v in doc.get("parameterValues", {}).items()})
        out[path.parent.name] = merged
    return out


def epoch_curves(text: str) -> list[list[dict[str, Any]]]:
    """Every Keras training in a log (verbose=2 lines), in order: per epoch its seconds (whole
    seconds, as Keras prints them) and validation AUC. A training starts at "Epoch 1/"."""
    curves: list[list[dict[str, Any]]] = []
    epoch = None
    for raw in text.splitlines():
        line = _ANSI.sub("", raw).rstrip()
        start = _EPOCH_START.search(line)
        if start:
            epoch = int(start["n"])
            if epoch == 1 or not curves:
                curves.append([])
            continue
        end = _EPOCH_END.search(line)
        if end and epoch is not None and curves:
            curves[-1].append(
                {"epoch": epoch, "seconds": int(end["sec"]), "val_auc": float(end["auc"])}
            )
            epoch = None
    return [c for c in curves if c]


def time_to_auc(curve: list[dict[str, Any]], target: float | None) -> dict[str, Any] | None:
    """Epochs and training seconds (summed epoch times) until validation AUC >= target."""
    if not curve or target is None:
        return None
    spent = 0
    for point in curve:
        spent += point["seconds"]
        if point["val_auc"] >= target:
            return {"target": target, "epoch": point["epoch"], "seconds": spent}
    return {"target": target, "epoch": None, "seconds": None, "best": max(
        p["val_auc"] for p in curve)}  # fmt: skip


def split_outputs(run_dir: Path) -> dict[str, Path]:
    """kfp.local's output folders of the split step (train, validation, test)."""
    out = {}
    for split in TFX_SPLIT_NAMES:
        found = sorted(p for p in run_dir.glob(f"*/{split}") if "split" in p.parent.name)
        if len(found) != 1:
            raise RuntimeError(f"{run_dir}: expected one split step output {split!r}, got {found}")
        out[split] = found[0]
    return out


def same_rows(run_dir: Path, data_dir: Path, key: str) -> dict[str, Any]:
    """Whether kfpkit's split put exactly the rows of TFX's CSVs in each split (by key)."""
    import pyarrow.csv as pacsv
    import pyarrow.dataset as ds

    result: dict[str, Any] = {"identical": True, "splits": {}}
    for split, folder in split_outputs(run_dir).items():
        mine = ds.dataset(folder, format="parquet").to_table(columns=[key])[key].to_pylist()
        csv = data_dir / TFX_SPLIT_NAMES[split] / "data.csv"
        options = pacsv.ConvertOptions(include_columns=[key])
        theirs = pacsv.read_csv(csv, convert_options=options)[key].to_pylist()
        mine_set, theirs_set = set(mine), set(theirs)
        same = len(mine) == len(mine_set) == len(theirs) and mine_set == theirs_set
        result["splits"][split] = {
            "kfpkit_rows": len(mine),
            "tfx_rows": len(theirs),
            "only_kfpkit": len(mine_set - theirs_set),
            "only_tfx": len(theirs_set - mine_set),
        }
        result["identical"] = result["identical"] and same
    return result


def kfpkit_command(
    rows: int, root: Path, params: dict[str, Any], demo_rows: int, source: str, data: Path,
    label: str, key: str,
) -> list[str]:  # fmt: skip
    """The kfpkit CLI line of one run: on the Parquet as own data, or through the emulator."""
    cmd = [str(REPO / ".venv" / "bin" / "kfpkit"), "run", PIPELINE, "--local"]
    if source == "own":
        cmd += ["--data", str(data), "--label", label, "--key", key]
    else:
        cmd += ["--emulator"] + (["--rows", str(rows)] if rows != demo_rows else [])
    cmd += ["--pipeline-root", str(root)]
    for name, value in params.items():
        cmd += ["--param", f"{name}={json.dumps(value)}"]
    return cmd


def run_kfpkit(
    rows: int, name: str, cmd: list[str], root: Path, data_dir: Path, key: str
) -> dict[str, Any]:
    shutil.rmtree(root, ignore_errors=True)
    log = WORK / "kfpkit" / f"{name}.log"  # beside the root: the run must make the root
    code = code_state()  # images may be rebuilt between runs: record what this run used
    proc = _run_logged(cmd, log, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    proc["code"] = code
    proc["command"] = " ".join(["kfpkit", *cmd[1:]])
    text = log.read_text(errors="replace")
    steps, skipped, run_dir = parse_kfp_log(text, proc["spawn"])
    for s in steps:
        s["group"] = kfpkit_group(s["name"])
    if proc["returncode"] != 0 or run_dir is None:
        return {
            **proc,
            "steps": steps,
            "error": f"kfpkit run failed (exit {proc['returncode']}); log tail:\n{_tail(log)}",
        }
    if not steps:
        return {
            **proc,
            "steps": [],
            "error": "no step timings in the log: kfp.local's "
            "'Executing task' / 'Task ... finished' lines changed? (see _KFP_LINE)",
        }
    metrics = _step_metrics(run_dir)
    try:
        rows_check = same_rows(run_dir, data_dir, key)
    except (RuntimeError, OSError, ValueError) as e:
        rows_check = {"identical": None, "error": str(e)}
    curves = epoch_curves(text)
    evaluation = next(
        (m for name, m in metrics.items() if name.startswith("evaluat") and "auc" in m),
        next((m for m in metrics.values() if "auc" in m and "accuracy" in m), {}),
    )
    trained = next(
        (m for name, m in metrics.items() if name.startswith("train") and "epochs_run" in m),
        next((m for m in metrics.values() if "epochs_run" in m), {}),
    )
    split = next((m for m in metrics.values() if "rows_train" in m), {})
    return {
        **proc,
        "steps": steps,
        "skipped": skipped,
        "run_dir": str(run_dir),
        "test_accuracy": evaluation.get("accuracy"),
        "test_auc": evaluation.get("auc"),
        "test_rows": evaluation.get("count"),
        "blessed": evaluation.get("param:blessed"),
        "split_rows": {
            k.removeprefix("rows_"): v for k, v in split.items() if k.startswith("rows_")
        },
        "epochs_run": trained.get("epochs_run"),
        "best_epoch": trained.get("best_epoch"),
        "validation_accuracy": trained.get("validation_accuracy"),
        "validation_auc": trained.get("validation_auc"),
        # what the train step actually used (its model artifact's metadata)
        "hyperparameters": trained.get("hyperparameters"),
        "features": trained.get("features"),
        "same_rows_as_tfx": rows_check,
        # the last training in the log is the train step's (tuning trials come before it)
        "epoch_curve": curves[-1] if curves else None,
        "trainings_in_log": len(curves),
    }


def model_differences(setup: dict[str, Any], tfx: dict[str, Any], kfp: dict[str, Any]) -> list[str]:
    """Where the two sides' models differ (hyperparameters, features); empty when the same."""
    out = []
    used = kfp.get("hyperparameters")
    if used is not None:
        for key in sorted(set(used) | set(setup["hyperparameters"])):
            if used.get(key) != setup["hyperparameters"].get(key):
                out.append(
                    f"{key}: kfpkit {used.get(key)!r}, TFX {setup['hyperparameters'].get(key)!r}"
                )
    kfp_features = kfp.get("features")
    tfx_features = (tfx.get("training") or {}).get("features")
    if kfp_features is not None and tfx_features is not None:
        mine = {name: kind for name, kind, _ in tfx_features}
        if mine != kfp_features:
            out.append(f"features: kfpkit {kfp_features}, TFX {mine}")
    return out


# ----------------------------------------------------------------------------- figures


def phases(run: dict[str, Any]) -> dict[str, Any]:
    """Seconds per group and phase of one run (None where the run failed)."""
    steps = run.get("steps") or []
    if "error" in run or not steps:
        return {}
    out: dict[str, Any] = {"whole": run["wall_s"]}
    for group in (*GROUPS, "other"):
        members = [s for s in steps if s["group"] == group]
        out[group] = round(sum(s["seconds"] for s in members), 2) if members else None
    first, last = min(s["start"] for s in steps), max(s["end"] for s in steps)
    splits = [s for s in steps if s["group"] == "split"]
    out["before_first_step"] = round(first - run["spawn"], 2)
    out["after_last_step"] = round(run["exit"] - last, 2)
    out["after_split"] = round(last - max(s["end"] for s in splits), 2) if splits else None
    out["between_steps"] = round((last - first) - sum(s["seconds"] for s in steps), 2)
    extra = [s for s in steps if s["group"] in EXTRA_WORK]
    same = [s for s in steps if s["group"] not in EXTRA_WORK]
    extra_s = sum(s["seconds"] for s in extra)
    out["same_work_whole"] = round(run["wall_s"] - extra_s, 2)
    if splits and same:
        out["same_work_after_split"] = round(
            max(s["end"] for s in same) - max(s["end"] for s in splits), 2
        )
    return out


def _fmt(values: list[Any], unit: str = " s", digits: int = 1) -> str:
    shown = ["n/a" if v is None else f"{v:.{digits}f}{unit}" for v in values]
    return ", ".join(shown) if shown else "n/a"


def _ratio(k: dict[str, Any], t: dict[str, Any], key: str) -> float | None:
    if k.get(key) is None or not t.get(key):
        return None
    return round(k[key] / t[key], 3)


def markdown(rows: int, mode: str, source: str, rounds: list[dict[str, Any]]) -> str:
    tfx = [phases(r["tfx"]) for r in rounds]
    kfp = [phases(r["kfpkit"]) for r in rounds]

    def cells(ph: list[dict[str, Any]], key: str) -> str:
        return _fmt([p.get(key) for p in ph])

    def names(side: str, group: str) -> str:
        seen = []
        for r in rounds:
            for s in r[side].get("steps") or []:
                if s["group"] == group and s["name"] not in seen:
                    seen.append(s["name"])
        return ", ".join(seen) or "none"

    def epochs(side: str) -> str:
        runs = [r[side].get("epochs_run") for r in rounds]
        if all(n is None for n in runs):
            return ""
        return " (" + ", ".join("?" if n is None else str(n) for n in runs) + " epochs)"

    def quality(side: str) -> str:
        out = []
        for r in rounds:
            acc, auc = r[side].get("test_accuracy"), r[side].get("test_auc")
            out.append("n/a" if acc is None or auc is None else f"{acc:.4f} / {auc:.4f}")
        return ", ".join(out)

    def reach(side: str) -> str:
        out = []
        for r in rounds:
            hit = (r.get("time_to_tfx_best_validation_auc") or {}).get(side)
            if hit is None:
                out.append("n/a")
            elif hit["seconds"] is None:
                out.append(f"not reached (best {hit['best']:.4f})")
            else:
                out.append(f"{hit['seconds']} s (epoch {hit['epoch']})")
        return ", ".join(out)

    targets = ", ".join(
        "n/a"
        if (r.get("time_to_tfx_best_validation_auc") or {}).get("target") is None
        else f"{r['time_to_tfx_best_validation_auc']['target']:.4f}"
        for r in rounds
    )
    lines = [
        f"#### {rows:,} rows, hyperparameters `{mode}` ({MODE_TITLES[mode]}), "
        f"{len(rounds)} round(s)",
        "",
        f"| | TFX 1.16 LocalDagRunner | `{KFPKIT_COMMANDS[source]}` |",
        "|---|---|---|",
        f"| whole process, wall | {cells(tfx, 'whole')} | {cells(kfp, 'whole')} |",
    ]
    for group in GROUPS:
        label = GROUP_TITLES[group]
        extra_t = extra_k = ""
        if group == "training":
            extra_t, extra_k = epochs("tfx"), epochs("kfpkit")
        lines.append(f"| {label} | {cells(tfx, group)}{extra_t} | {cells(kfp, group)}{extra_k} |")
    if any(p.get("other") is not None for p in kfp + tfx):
        lines.append(f"| other steps | {cells(tfx, 'other')} | {cells(kfp, 'other')} |")
    imports = _fmt([r["tfx"].get("imports_s") for r in rounds])
    lines += [
        f"| before the first step | {cells(tfx, 'before_first_step')} (imports {imports}) "
        f"| {cells(kfp, 'before_first_step')} ({BEFORE_FIRST_STEP[source]}) |",
    ]
    for key, title in (
        ("between_steps", "between steps (orchestration)"),
        ("after_last_step", "after the last step"),
        ("after_split", "after the split, wall"),
        ("same_work_whole", "whole, same work (without the extra steps)"),
        ("same_work_after_split", "after the split, same work"),
    ):
        lines.append(f"| {title} | {cells(tfx, key)} | {cells(kfp, key)} |")
    lines.append(f"| test accuracy / AUC | {quality('tfx')} | {quality('kfpkit')} |")
    lines.append(
        f"| training to TFX's best validation AUC ({targets}), epoch seconds summed "
        f"| {reach('tfx')} | {reach('kfpkit')} |"
    )
    ratio_whole = [_ratio(k, t, "whole") for k, t in zip(kfp, tfx, strict=True)]
    ratio_after = [_ratio(k, t, "after_split") for k, t in zip(kfp, tfx, strict=True)]
    same_whole = [_ratio(k, t, "same_work_whole") for k, t in zip(kfp, tfx, strict=True)]
    same_after = [_ratio(k, t, "same_work_after_split") for k, t in zip(kfp, tfx, strict=True)]
    lines += [
        f"| **ratio kfpkit / TFX**, whole | | {_fmt(ratio_whole, '', 2)} |",
        f"| **ratio kfpkit / TFX**, after the split | | {_fmt(ratio_after, '', 2)} |",
        f"| **ratio kfpkit / TFX**, same work, whole | | {_fmt(same_whole, '', 2)} |",
        f"| **ratio kfpkit / TFX**, same work, after the split | | {_fmt(same_after, '', 2)} |",
        "",
        "Groups (step times summed; each kfpkit step includes its container's start):",
    ]
    for group in (*GROUPS, "other"):
        t, k = names("tfx", group), names("kfpkit", group)
        if group == "other" and t == k == "none":
            continue
        lines.append(f"- {GROUP_TITLES.get(group, group)}: TFX {t}; kfpkit {k}")
    loads = {
        side: ", ".join(
            "/".join(f"{v:.1f}" for v in r[side].get("loadavg_1m_before_after") or []) or "n/a"
            for r in rounds
        )
        for side in ("tfx", "kfpkit")
    }
    lines.append(
        f"- load average (1 min) before/after each run: TFX {loads['tfx']}; "
        f"kfpkit {loads['kfpkit']}"
    )
    for r in rounds:
        check = r["kfpkit"].get("same_rows_as_tfx")
        if check is None:
            continue
        counts = "; ".join(
            f"{split} {c['kfpkit_rows']:,}/{c['tfx_rows']:,}"
            for split, c in (check.get("splits") or {}).items()
        )
        verdict = {True: "identical", False: "DIFFERENT", None: "NOT CHECKED"}[check["identical"]]
        lines.append(
            f"- round {r['round']}: rows per split, kfpkit/TFX: {verdict} ({counts})"
            + (f": {check['error']}" if "error" in check else "")
        )
    skipped = sorted({s for r in rounds for s in r["kfpkit"].get("skipped") or []})
    if skipped:
        lines.append(f"- kfpkit steps skipped: {', '.join(skipped)}")
    for r in rounds:
        why = " (expected: kfpkit at its defaults)" if mode == "defaults" else ""
        for difference in r.get("model_differences") or []:
            lines.append(f"- round {r['round']}: MODELS DIFFER{why}: {difference}")
        for side in ("tfx", "kfpkit"):
            if "error" in r[side]:
                lines.append(
                    f"- round {r['round']} {side} FAILED: {r[side]['error'].splitlines()[0]}"
                    f" (log: {r[side]['log']})"
                )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def mode_parameters(
    mode: str, trials: list[str], hyperparameters: dict[str, Any]
) -> dict[str, Any]:
    """kfpkit's pipeline parameters in one mode: the TFX side's hyperparameters and no tuning
    (``same``), or nothing: the pipeline's defaults (``defaults``)."""
    if mode == "defaults":
        return {}
    return {**{name: 0 for name in trials}, "hyperparameters": hyperparameters}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds per size (default 2)")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=None,
        help="rows per run (default: the 277,677 demo rows; add 1000000 for the seeded upsample)",
    )
    parser.add_argument(
        "--only",
        choices=("both", "tfx", "kfpkit"),
        default="both",
        help="run one side only (to check it)",
    )
    parser.add_argument(
        "--hyperparameters",
        choices=(*MODES, "both"),
        default="both",
        help="same: both sides the same model and hyperparameters, no tuning; defaults: "
        "kfpkit at its pipeline's defaults (tuning, its stopping rule); both (default)",
    )
    parser.add_argument(
        "--kfpkit-data",
        choices=tuple(KFPKIT_COMMANDS),
        default="own",
        help="own: kfpkit run --data on the Parquet (default); emulator: --emulator",
    )
    parser.add_argument(
        "--tfx-beam-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra Beam pipeline argument for TFX, e.g. "
        "--direct_running_mode=multi_processing (default: none)",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    modes = MODES if args.hyperparameters == "both" else (args.hyperparameters,)

    os.chdir(REPO)  # kfpkit's demo data cache and CLI paths are relative to the repository
    from kfpkit import demo_data

    sizes = args.sizes or [demo_data.ROWS]
    if any(n <= 0 for n in sizes):
        parser.error("--sizes must be positive")
    python = ensure_tfx_env() if args.only != "kfpkit" else None

    inputs = pipeline_defaults()
    # The TFX trainer module stops on the validation loss with Keras' EarlyStopping, whose
    # min_delta is 0: the same number on kfpkit's side in `same` (kfpkit stops on AUC).
    hp = {
        **kfpkit_trainer_defaults(),
        **(inputs.get("hyperparameters") or {}),
        "early_stopping_min_delta": 0.0,
    }
    trials = trial_parameters(inputs)
    key_columns = inputs.get("key_columns") or ["id"]
    if len(key_columns) != 1:
        raise SystemExit(f"TFX hash-splits on one feature; the pipeline splits on {key_columns}")
    setup: dict[str, Any] = {
        "label": inputs.get("label_column") or "employed",
        "key_column": key_columns[0],
        "splits": tfx_hash_buckets(inputs.get("split_ratios") or {}),
        "exclude_columns": inputs.get("exclude_columns") or key_columns,
        "hyperparameters": hp,
        "slice_columns": inputs.get("slice_columns") or [],
        "min_auc": inputs.get("min_auc", 0.8),
        "max_auc_regression": inputs.get("max_auc_regression", 0.005),
        "beam_pipeline_args": args.tfx_beam_arg,
        # what kfpkit's tfdv_validate_splits does: statistics of every split, train's schema,
        # validation and test checked against it
        "statistics_exclude_splits": [],
        "validation_exclude_splits": ["train"],
    }
    # With --data the pipeline's demo slices are not set (a user's data lacks them): the
    # same slices as the TFX side, as `make run` passes them.
    data_parameters = {"slice_columns": setup["slice_columns"]} if args.kfpkit_data == "own" else {}
    parameters = {mode: {**data_parameters, **mode_parameters(mode, trials, hp)} for mode in modes}
    print(f"[bench] TFX model: {json.dumps(hp)}; kfpkit parameters: {parameters}", flush=True)

    report: dict[str, Any] = {
        "machine": machine(),
        "command": "benchmarks/bench_vs_tfx.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "setup": {
            **setup,
            "kfpkit_data": args.kfpkit_data,
            "kfpkit_parameters": parameters,
            "modes": {mode: MODE_TITLES[mode] for mode in modes},
            "trial_parameters_found": trials,
            "tfx_groups": TFX_GROUPS,
            "kfpkit_group_patterns": [[g, p.pattern] for g, p in GROUP_PATTERNS],
            "notes": [
                "whole = process spawn to exit, measured by this driver",
                "TFX step = ML Metadata execution create -> last update; kfpkit step = kfp.local "
                "'Executing task' -> 'finished' log timestamps (includes container start)",
                "after the split = end of the split step to the end of the last step (wall)",
                "data: the Parquet kfpkit reads (--data) or loads into the emulator; TFX reads it "
                "as CSV written before timing, one file per split holding the rows kfpkit's "
                "split assigns (checked after each kfpkit run: same_rows_as_tfx)",
                "time to TFX's best validation AUC: Keras' per-epoch seconds (whole seconds) "
                "summed up to the first epoch at or above the TFX run's best validation AUC, "
                "both on the same validation rows (Keras' AUC, 200 thresholds, on both sides)",
            ],
        },
        "sizes": {},
    }
    failed = False
    turn = 0  # the side that goes first alternates from run pair to run pair
    for rows in sizes:
        parquet = source_parquet(rows)
        data_dir = write_csv(parquet, rows, inputs.get("split_ratios") or {}, setup["key_column"])
        config = {
            **setup,
            "data_dir": str(data_dir),
            "categorical_features": categorical_columns(parquet),
        }
        report["sizes"][str(rows)] = {"parquet": str(parquet.relative_to(REPO)), "modes": {}}
        for mode in modes:
            rounds = []
            for rnd in range(1, args.rounds + 1):
                turn += 1
                order = ("tfx", "kfpkit") if turn % 2 else ("kfpkit", "tfx")
                entry: dict[str, Any] = {"round": rnd, "order": list(order)}
                name = f"{rows}-{mode}-r{rnd}"
                for side in order:
                    if args.only not in ("both", side):
                        entry[side] = {"error": "not run (--only)", "log": "-", "steps": []}
                        continue
                    print(f"[bench] {rows} rows, {mode}, round {rnd}: {side} ...", flush=True)
                    if side == "tfx":
                        assert python is not None
                        entry[side] = run_tfx(python, config, name)
                    else:
                        root = WORK / "kfpkit" / name
                        cmd = kfpkit_command(
                            rows, root, parameters[mode], demo_data.ROWS, args.kfpkit_data,
                            parquet, setup["label"], setup["key_column"],
                        )  # fmt: skip
                        entry[side] = run_kfpkit(
                            rows, name, cmd, root, data_dir, setup["key_column"]
                        )
                    run = entry[side]
                    if "error" in run:
                        failed = True
                        print(f"[bench]   {run['error']}", flush=True)
                    else:
                        steps = ", ".join(f"{s['name']} {s['seconds']:.1f}" for s in run["steps"])
                        print(
                            f"[bench]   {run['wall_s']:.1f} s; accuracy {run['test_accuracy']}, "
                            f"AUC {run['test_auc']}; steps: {steps}",
                            flush=True,
                        )
                for side in ("tfx", "kfpkit"):
                    entry.setdefault(side, {"error": "not run", "log": "-", "steps": []})
                    entry[f"{side}_phases"] = phases(entry[side])
                check = entry["kfpkit"].get("same_rows_as_tfx") or {}
                if check.get("identical") is not True and "error" not in entry["kfpkit"]:
                    failed = True
                    print(f"[bench]   ROWS NOT SHOWN IDENTICAL: {check}", flush=True)
                tfx_curve = entry["tfx"].get("epoch_curve") or []
                target = max((p["val_auc"] for p in tfx_curve), default=None)
                entry["time_to_tfx_best_validation_auc"] = {
                    "target": target,
                    **{
                        side: time_to_auc(entry[side].get("epoch_curve") or [], target)
                        for side in ("tfx", "kfpkit")
                    },
                }
                entry["model_differences"] = model_differences(setup, entry["tfx"], entry["kfpkit"])
                for line in entry["model_differences"]:
                    print(f"[bench]   MODELS DIFFER ({mode}): {line}", flush=True)
                rounds.append(entry)
            table = markdown(rows, mode, args.kfpkit_data, rounds)
            report["sizes"][str(rows)]["modes"][mode] = {"rounds": rounds, "table": table}
            print("\n" + table + "\n", flush=True)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=1) + "\n")  # after every mode
    m = report["machine"]
    print(
        f"{m['date_utc']}, {m['cpus']} CPUs ({m['cpu_model']}), {m['mem_gib']} GiB, kernel "
        f"{m['kernel']}; wrote {args.json}",
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
