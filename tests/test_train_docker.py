"""train and evaluate launchers inside the built train image, as KFP runs them.

Needs a running Docker engine and the train image (`python images/build.py train`).
"""

import json
import os
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kfpkit import images

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "components" / "train" / "tests" / "data" / "employment_6000.parquet"


def artifact(name: str, kind: str, uri: Path) -> dict:
    entry = {"name": name, "type": {"schemaTitle": kind}, "uri": str(uri), "metadata": {}}
    return {"artifacts": [entry]}


def run_in_image(module: str, doc: dict, mount: Path) -> subprocess.CompletedProcess:
    command = [
        "docker", "run", "--rm", "-v", f"{mount}:{mount}", "-u", f"{os.getuid()}:{os.getgid()}",
        images.image("train"), "python3", "-m", module, "--executor_input", json.dumps(doc),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def image():
    ref = images.image("train")
    probe = subprocess.run(["docker", "image", "inspect", ref], capture_output=True)
    assert probe.returncode == 0, f"{ref} not built: run `python images/build.py train`"
    return ref


def test_train_then_evaluate_in_the_image(image, tmp_path):
    table = pq.read_table(SAMPLE)
    for name, (start, rows) in {"train": (0, 4000), "validation": (4000, 1000),
                                "test": (5000, 1000)}.items():  # fmt: skip
        (tmp_path / name).mkdir()
        pq.write_table(table.slice(start, rows), tmp_path / name / "data-000000000000.parquet")
    out = tmp_path / "train_out"
    train_doc = {
        "inputs": {
            "parameterValues": {
                "hyperparameters": {"epochs": 3, "batch_size": 128},
                "label_column": "employed",
                "exclude_columns": ["id"],
            },
            "artifacts": {
                "train_data": artifact("train_data", "system.Dataset", tmp_path / "train"),
                "validation_data": artifact(
                    "validation_data", "system.Dataset", tmp_path / "validation"
                ),
            },
        },
        "outputs": {
            "artifacts": {
                "model": artifact("model", "system.Model", out / "model"),
                "metrics": artifact("metrics", "system.Metrics", out / "metrics"),
                "training_curve": artifact("training_curve", "system.HTML", out / "curve"),
            },
            "outputFile": str(out / "executor_output.json"),
        },
    }
    proc = run_in_image("kfpkit.components.train.launcher", train_doc, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "model" / "1" / "saved_model.pb").is_file()
    assert "validation-accuracy=" in proc.stdout
    doc = json.loads((out / "executor_output.json").read_text())
    metrics = doc["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert metrics["validation_accuracy"] > 0.7

    judged = tmp_path / "evaluate_out"
    evaluate_doc = {
        "inputs": {
            "parameterValues": {"slice_columns": ["SEX"], "label_column": "employed"},
            "artifacts": {
                "model": artifact("model", "system.Model", out / "model"),
                "test_data": artifact("test_data", "system.Dataset", tmp_path / "test"),
            },
        },
        "outputs": {
            "artifacts": {
                "metrics": artifact("metrics", "system.Metrics", judged / "metrics"),
                "classification_metrics": artifact(
                    "classification_metrics", "system.ClassificationMetrics", judged / "cm"
                ),
                "report": artifact("report", "system.Markdown", judged / "report"),
            },
            "parameters": {"blessed": {"outputFile": str(judged / "blessed")}},
            "outputFile": str(judged / "executor_output.json"),
        },
    }
    proc = run_in_image("kfpkit.components.evaluate.launcher", evaluate_doc, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (judged / "blessed").read_text() == "true"
    assert "No baseline model" in (judged / "report").read_text()
