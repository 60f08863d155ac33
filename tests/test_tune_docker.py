"""katib_tune inside the built train image, as KFP and Katib run it: the launcher tuning
locally with two worker processes, and the Katib trial entry point reading its splits.

Needs a running Docker engine and the train image (`python images/build.py train`).
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kfpkit import images

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "components" / "train" / "tests" / "data" / "employment_6000.parquet"
SPACE = [{"name": "learning_rate", "type": "double", "min": 1e-3, "max": 3e-2, "log": True}]
FIXED = {"epochs": 2, "batch_size": 256}


def in_image(*args: str, mount: Path) -> subprocess.CompletedProcess:
    command = [
        "docker",
        "run",
        "--rm",
        "-v",
        f"{mount}:{mount}",
        "-u",
        f"{os.getuid()}:{os.getgid()}",
        images.image("train"),
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def splits(tmp_path_factory) -> Path:
    ref = images.image("train")
    probe = subprocess.run(["docker", "image", "inspect", ref], capture_output=True)
    assert probe.returncode == 0, f"{ref} not built: run `python images/build.py train`"
    root, table = tmp_path_factory.mktemp("tune"), pq.read_table(SAMPLE)
    for name, (start, rows) in {"train": (0, 4000), "validation": (4000, 1000)}.items():
        (root / name).mkdir()
        pq.write_table(table.slice(start, rows), root / name / "data-000000000000.parquet")
    return root


def artifact(name: str, kind: str, uri: Path) -> dict:
    return {
        "artifacts": [
            {"name": name, "type": {"schemaTitle": kind}, "uri": str(uri), "metadata": {}}
        ]
    }


def test_local_tuning_in_the_image(splits):
    out = splits / "tune_out"
    doc = {
        "inputs": {
            "parameterValues": {
                "search_space": SPACE,
                "max_trial_count": 2,
                "parallel_trial_count": 2,
                "max_failed_trial_count": 1,
                "fixed_hyperparameters": FIXED,
                "backend": "local",
                "label_column": "employed",
                "exclude_columns": ["id"],
            },
            "artifacts": {
                "train_data": artifact("train_data", "system.Dataset", splits / "train"),
                "validation_data": artifact(
                    "validation_data", "system.Dataset", splits / "validation"
                ),
            },
        },
        "outputs": {
            "artifacts": {
                "metrics": artifact("metrics", "system.Metrics", out / "metrics"),
                "report": artifact("report", "system.HTML", out / "report"),
            },
            "parameters": {"best_hyperparameters": {"outputFile": str(out / "best")}},
            "outputFile": str(out / "executor_output.json"),
        },
    }
    proc = in_image(
        "python3",
        "-m",
        "kfpkit.components.katib_tune.launcher",
        "--executor_input",
        json.dumps(doc),
        mount=splits,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    best = json.loads((out / "best").read_text())
    assert set(best) == {"epochs", "batch_size", "learning_rate"}
    metrics = json.loads((out / "executor_output.json").read_text())["artifacts"]["metrics"]
    assert metrics["artifacts"][0]["metadata"]["trials_succeeded"] == 2
    assert "<svg" in (out / "report").read_text()


def test_katib_trial_in_the_image(splits):
    proc = in_image(
        "python3",
        "-m",
        "kfpkit.components.katib_tune.trial",
        "--train-data",
        (splits / "train").as_uri(),
        "--validation-data",
        str(splits / "validation"),
        "--label-column",
        "employed",
        "--search-space",
        json.dumps(SPACE),
        "--fixed",
        json.dumps(FIXED),
        "--assign",
        "learning_rate=0.01",
        mount=splits,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = re.findall(r"^\S+Z validation-auc=([0-9.]+)$", proc.stdout, re.M)
    assert len(lines) == FIXED["epochs"] + 1 and 0.5 < float(lines[-1]) <= 1
