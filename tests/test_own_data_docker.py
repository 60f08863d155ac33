"""End to end: ``kfpkit run training --local --data PATH --label COLUMN --key COLUMN`` on a
user's own CSV (the demo data, renamed columns), in Docker through kfp.local, with no
BigQuery and no emulator. Needs Docker and the images (`make images`)."""

from __future__ import annotations

import glob
import json
import subprocess
import sys

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from kfpkit import demo_data
from kfpkit.components.bigquery_split import reference
from kfpkit.splitting import keys

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_training_runs_on_own_csv_data_without_bigquery(tmp_path):
    table = demo_data.upsample(pq.read_table(demo_data.demo_parquet()), 20_000, seed=3)
    table = table.rename_columns(
        ["person" if c == "id" else "has_job" if c == "employed" else c
         for c in table.column_names]
    )  # fmt: skip
    data = tmp_path / "data" / "my survey.csv"
    data.parent.mkdir()
    pcsv.write_csv(table, data)
    root = tmp_path / "root"
    cmd = [sys.executable, "-m", "kfpkit.cli", "run", "training", "--local", "--data", str(data),
           "--label", "has_job", "--key", "person", "--pipeline-root", str(root),
           "--param", "tuning_trials=0", "--param", "min_auc=0.5"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "step bigquery-split:" in done.stdout and "step train:" in done.stdout

    run_dir = max(root.glob("kfpkit-training-*"), key=lambda p: p.stat().st_mtime)
    seen = 0
    for name in keys.DEFAULT_RATIOS:  # each row where pyfarmhash (independently) puts it
        split = pq.read_table(glob.glob(str(run_dir / "bigquery-split" / name / "*.parquet")))
        people = split.column("person").to_pylist()
        assert {reference.split_of(str(p), keys.DEFAULT_RATIOS) for p in people} == {name}
        seen += len(people)
    assert seen == 20_000
    assert (root / "serving" / "my-survey").is_dir() or "blessed = False" in done.stdout

    # tracked in MLflow beside the registry; compared; the model's lineage leads back to it
    db = str(root / "registry" / "mlflow.db")
    assert f"recorded run {run_dir.name}" in done.stdout
    compare = subprocess.run([sys.executable, "-m", "kfpkit.cli", "runs", "compare",
                              run_dir.name, "--tracking-uri", db],
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert compare.returncode == 0, compare.stderr
    rows = {line.split()[0]: line.split()[1:] for line in compare.stdout.splitlines() if line}
    assert rows["status"] == ["FINISHED"] and rows["label_column"] == ["has_job"]
    assert rows["tuning_trials"] == ["0"] and rows["bigquery-split/rows_total"] == ["20000"]
    assert "evaluate/auc" in rows and "train/validation_auc" in rows
    assert "train/hyperparameters/learning_rate" in rows
    lineage = subprocess.run([sys.executable, "-m", "kfpkit.cli", "models", "lineage",
                              "my-survey", "--registry-uri", db, "--json"],
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert lineage.returncode == 0, lineage.stderr
    doc = json.loads(lineage.stdout)  # blessed: the champion; else the challenger
    assert doc["run"]["name"] == run_dir.name
    assert doc["run"]["tracked"]["status"] == "FINISHED"
    assert doc["data"]["source"].endswith("my survey.csv")
    assert float(doc["data"]["train_rows"]) == float(rows["bigquery-split/rows_train"][0])
    assert doc["statistics"]["statistics_uri"].startswith(str(run_dir))
    assert str(doc["hyperparameters"]["learning_rate"]) == rows[
        "train/hyperparameters/learning_rate"][0]  # fmt: skip
    assert f"{doc['evaluation']['metrics']['auc']:.6g}" == rows["evaluate/auc"][0]
