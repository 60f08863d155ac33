"""End to end: ``kfpkit run training --local --data PATH --label COLUMN --key COLUMN`` on a
user's own CSV (the demo data, renamed columns), in Docker through kfp.local, with no
BigQuery and no emulator. Needs Docker and the images (`make images`)."""

from __future__ import annotations

import glob
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
