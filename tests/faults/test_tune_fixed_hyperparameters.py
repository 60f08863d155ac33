"""katib_tune with ``max_trial_count=0`` (no tuning) checks ``fixed_hyperparameters`` by the
trainer's rules as tuning does, in the launcher's own process, without importing TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kfpkit.testing.launcher_input import executor_input

OUTPUTS = {"metrics": "system.Metrics", "report": "system.HTML"}
# launches the step the way its container does, then says which heavy modules it imported
PROBE = (
    "import sys\n"
    "from kfpkit.components.katib_tune.launcher import run\n"
    "from kfpkit.runtime.executor import launch\n"
    "code = launch(run, sys.argv[1:])\n"
    "print('IMPORTED', sorted(m for m in ('tensorflow', 'keras', 'optuna') if m in sys.modules))\n"
    "sys.exit(code)\n"
)


def _launch(tmp_path, fixed):  # type: ignore[no-untyped-def]
    doc = executor_input(
        tmp_path,
        {"max_trial_count": 0, "fixed_hyperparameters": fixed, "backend": "local"},
        OUTPUTS,
        {"train_data": ("system.Dataset", str(tmp_path / "train")),
         "validation_data": ("system.Dataset", str(tmp_path / "validation"))},
        ["best_hyperparameters"],
    )  # fmt: skip
    return subprocess.run([sys.executable, "-c", PROBE, "--executor_input", json.dumps(doc)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_bad_fixed_hyperparameters_without_tuning_exit_2_naming_each(tmp_path):
    done = _launch(tmp_path, {"learning_rate": -1, "bogus": 3})
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "fixed_hyperparameters" in out
    assert "unknown key(s) ['bogus']" in out
    assert "hyperparameters['learning_rate'] = -1 is out of range" in out
    assert "IMPORTED []" in out
    assert not (tmp_path / "executor_output.json").exists()


@pytest.mark.parametrize("fixed", [{"epochs": 0}, {"hidden_units": "64,0"}, {"dropout": "x"}])
def test_each_rule_applies_without_tuning(tmp_path, fixed):
    done = _launch(tmp_path, fixed)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"'{next(iter(fixed))}'" in done.stderr


def test_good_fixed_hyperparameters_are_passed_on_without_tensorflow(tmp_path):
    fixed = {"learning_rate": "0.01", "hidden_units": "32,16", "epochs": 2}
    done = _launch(tmp_path, fixed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "IMPORTED []" in done.stdout
    assert json.loads((tmp_path / "best_hyperparameters").read_text()) == fixed
