"""The local backend with the real trainer on real split Parquet data (the checked-in 6,000-row
sample of the demo data set), the Katib trial entry point, and the launcher end to end."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kfpkit.components.katib_tune import launcher, local, trial
from kfpkit.components.katib_tune import spec as specs
from kfpkit.runtime.executor import launch
from kfpkit.testing import executor_input

SAMPLE = Path(__file__).parents[2] / "train" / "tests" / "data" / "employment_6000.parquet"
OUTPUTS = {"metrics": "system.Metrics", "report": "system.HTML"}
FIXED = {"epochs": 3, "batch_size": 256, "early_stopping_patience": 1}
SPACE = [{"name": "learning_rate", "type": "double", "min": 3e-3, "max": 3e-2, "log": True}]


@pytest.fixture(scope="module")
def splits(tmp_path_factory) -> dict[str, Path]:
    root, table = tmp_path_factory.mktemp("splits"), pq.read_table(SAMPLE)
    out = {}
    for name, (start, rows) in {"train": (0, 4000), "validation": (4000, 1000)}.items():
        out[name] = root / name
        out[name].mkdir()
        part = table.slice(start, rows)
        pq.write_table(part.slice(0, rows // 2), out[name] / "data-000000000000.parquet")
        pq.write_table(part.slice(rows // 2), out[name] / "data-000000000001.parquet")
    return out


@pytest.fixture(scope="module")
def pool(splits):
    data = trial.TrialData(
        str(splits["train"]), str(splits["validation"]), "employed", exclude_columns=("id",)
    )
    with local.WorkerPool(data, size=2) as workers:
        yield workers


def never_stop(_step, _metrics) -> bool:
    return False


def test_tuning_the_real_trainer_beats_the_defaults(pool):
    default = pool.run(dict(FIXED), never_stop)["validation-auc"]  # learning_rate 1e-3
    spec = specs.parse_spec(
        SPACE,
        algorithm="random",
        max_trial_count=4,
        parallel_trial_count=2,
        fixed_hyperparameters=FIXED,
    )
    result = local.tune(spec, pool, seed=0)
    assert result.counts()["succeeded"] == 4
    assert result.best.objective > default, (result.best.objective, default)
    assert result.best_hyperparameters["epochs"] == 3
    assert 3e-3 <= result.best_hyperparameters["learning_rate"] <= 3e-2
    assert all(len(t.intermediate) == 3 for t in result.trials)  # one report per epoch


def test_a_stopped_real_trial_ends_at_that_epoch(pool):
    seen = []

    def stop_at_two(step, metrics):
        seen.append((step, sorted(metrics)))
        return step == 2

    metrics = pool.run({**FIXED, "epochs": 6}, stop_at_two)
    assert [s for s, _ in seen] == [1, 2]
    assert seen[0][1] == sorted(
        ["validation-auc", "validation-accuracy", "validation-loss", "train-accuracy", "train-loss"]
    )
    assert 0.5 < metrics["validation-auc"] <= 1


def test_a_trial_error_from_bad_data_is_a_value_error(pool, tmp_path):
    data = trial.TrialData(str(tmp_path), str(tmp_path), "employed")  # no Parquet files there
    with local.WorkerPool(data, size=1) as bad, pytest.raises(ValueError, match="train_data"):
        bad.run(dict(FIXED), never_stop)


def test_katib_trial_reads_splits_from_uris_and_prints_timestamped_metrics(splits, capsys):
    search_space = json.dumps(SPACE)
    code = trial.main(
        [
            "--train-data",
            splits["train"].as_uri(),  # file://: pyarrow's fs
            "--validation-data",
            str(splits["validation"]),  # a plain path (PVC)
            "--label-column",
            "employed",
            "--exclude-columns",
            '["id"]',
            "--search-space",
            search_space,
            "--fixed",
            json.dumps(FIXED),
            "--assign",
            "learning_rate=0.01",
        ]
    )
    assert code == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "=" in line]
    stamped = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ([\w|-]+)=([+-]?\d*\.\d+)$")
    assert lines and all(stamped.match(line) for line in lines), lines[:3]
    aucs = [line for line in lines if " validation-auc=" in line]
    assert len(aucs) == 3 + 1  # one per epoch, then the exported epoch's value last


def test_katib_trial_refuses_a_missing_uri(tmp_path):
    code = trial.main(
        [
            "--train-data",
            (tmp_path / "none").as_uri(),
            "--validation-data",
            "x",
            "--label-column",
            "employed",
            "--search-space",
            json.dumps(SPACE),
            "--assign",
            "learning_rate=0.01",
        ]
    )
    assert code == 2


def step_input(tmp_path: Path, splits, **params) -> dict:
    values = {
        "backend": "local",
        "search_space": SPACE,
        "algorithm": "tpe",
        "max_trial_count": 2,
        "parallel_trial_count": 1,
        "max_failed_trial_count": 1,
        "fixed_hyperparameters": FIXED,
        "early_stopping": "medianstop",
        "label_column": "employed",
        "exclude_columns": ["id"],
        **params,
    }
    inputs = {
        "train_data": ("system.Dataset", str(splits["train"])),
        "validation_data": ("system.Dataset", str(splits["validation"])),
    }
    return executor_input(tmp_path, values, OUTPUTS, inputs, ["best_hyperparameters"])


def render(path: Path) -> str:
    """The DOM headless chromium builds from the page with the network off (KFP's HTML
    artifact is a file without an extension: a copy named .html makes chromium read HTML)."""
    page = path.with_name(path.name + ".html")
    shutil.copyfile(path, page)
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "chromium is needed to test the HTML report (apt-get install chromium)"
    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.replace("&quot;", '"')


def test_launcher_tunes_locally_and_writes_every_output(tmp_path, splits):
    raw = step_input(tmp_path, splits)
    assert launch(launcher.run, ["--executor_input", json.dumps(raw)]) == 0
    best = json.loads((tmp_path / "best_hyperparameters").read_text())
    assert set(best) == {*FIXED, "learning_rate"}
    out = json.loads((tmp_path / "executor_output.json").read_text())
    metrics = out["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert metrics["backend"] == "local" and metrics["trials"] == 2
    assert metrics["best_param_learning_rate"] == best["learning_rate"]
    dom = render(tmp_path / "report")
    trials = re.search(r"<table id=\"trials\">(.*?)</table>", dom, re.S)
    assert trials and trials.group(1).count("<tr>") == 1 + 2
    assert "<svg" in dom and "best so far" in dom
    assert json.dumps(best, sort_keys=True) in dom


def test_zero_trials_passes_the_fixed_hyperparameters_at_once(tmp_path, splits):
    """No trial, and none of the backends' libraries imported: a pipeline without tuning pays
    next to nothing for the step."""
    raw = step_input(tmp_path, splits, max_trial_count=0, search_space=[])
    script = (
        "import json, sys; from kfpkit.runtime.executor import launch; "
        "from kfpkit.components.katib_tune import launcher; "
        "code = launch(launcher.run, ['--executor_input', sys.argv[1]]); "
        "heavy = ['tensorflow', 'optuna', 'kubernetes', 'kubeflow_katib_api']; "
        "print(json.dumps({'code': code, 'imported': [m for m in heavy if m in sys.modules]}))"
    )
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(raw)], capture_output=True, text=True, timeout=120
    )
    seconds = time.perf_counter() - started
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "imported": []}, proc.stderr[-2000:]
    assert json.loads((tmp_path / "best_hyperparameters").read_text()) == FIXED
    out = json.loads((tmp_path / "executor_output.json").read_text())
    assert out["artifacts"]["metrics"]["artifacts"][0]["metadata"]["trials"] == 0
    assert "no tuning" in (tmp_path / "report").read_text()
    assert seconds < 60  # generous on a busy machine; the benchmark measures it


def test_bad_input_leaves_no_outputs(tmp_path, splits):
    raw = step_input(tmp_path, splits, search_space=[{**SPACE[0], "min": 0.5, "max": 0.1}])
    assert launch(launcher.run, ["--executor_input", json.dumps(raw)]) == 2
    assert not (tmp_path / "executor_output.json").exists()
    assert not (tmp_path / "report").exists() and not (tmp_path / "best_hyperparameters").exists()


def test_no_label_column_exits_2_naming_the_parameter(tmp_path, splits, caplog):
    raw = step_input(tmp_path, splits)
    del raw["inputs"]["parameterValues"]["label_column"]  # no default: the pipeline sets it
    assert launch(launcher.run, ["--executor_input", json.dumps(raw)]) == 2
    assert "parameter 'label_column' is missing" in caplog.text
    assert not (tmp_path / "executor_output.json").exists()


def test_sigterm_stops_the_local_trials(tmp_path, splits):
    """A terminated run: the step exits 130, its trial workers are gone, no outputs."""
    raw = step_input(
        tmp_path,
        splits,
        max_trial_count=4,
        early_stopping="",
        fixed_hyperparameters={**FIXED, "epochs": 200, "early_stopping_patience": 200},
    )
    before = set(multiprocessing.active_children())
    scratch_before = set(Path(tempfile.gettempdir()).glob("kfpkit-tune-*/kfpkit-trial-*"))

    def stop_once_a_trial_runs() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if (
                set(Path(tempfile.gettempdir()).glob("kfpkit-tune-*/kfpkit-trial-*"))
                - scratch_before
            ):
                time.sleep(2)  # inside the trial's training
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.2)

    previous = signal.getsignal(signal.SIGTERM)
    threading.Thread(target=stop_once_a_trial_runs, daemon=True).start()
    started = time.monotonic()
    try:
        code = launch(launcher.run, ["--executor_input", json.dumps(raw)])
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert code == 130 and time.monotonic() - started < 200  # 200 epochs x 4 trials never ran
    assert set(multiprocessing.active_children()) - before == set()
    assert not (tmp_path / "executor_output.json").exists()
    assert not (tmp_path / "best_hyperparameters").exists()
