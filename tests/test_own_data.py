"""``kfpkit run training --local --data``: the pipeline's arguments for a user's own data, and
bad data refused before Docker starts (exit 2, the bad value named)."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kfpkit import own_data
from kfpkit.cli import main

ROWS = pa.table({"customer": ["a", "b", "c"], "x": [1.0, 2.0, 3.0], "churned": [0, 1, 0]})


def test_arguments_point_the_training_pipeline_at_the_data(tmp_path):
    data = tmp_path / "My Churn.parquet"
    pq.write_table(ROWS, data)
    args = own_data.arguments(str(data), "churned", ["customer"], tmp_path / "root", {})
    assert args["source_table"] == str(data)
    assert args["label_column"] == "churned"
    assert args["key_columns"] == args["exclude_columns"] == ["customer"]
    assert args["slice_columns"] == []
    assert args["serving_model_name"] == "my-churn"
    assert args["serving_model_uri"] == str((tmp_path / "root").absolute() / "serving/my-churn")
    # --param wins
    args = own_data.arguments(str(data), "churned", ["customer"], tmp_path, {"min_auc": 0.6})
    assert args["min_auc"] == 0.6
    mounts = own_data.docker_args(str(data))["mounts"]
    assert mounts[0]["Source"] == mounts[0]["Target"] == str(data) and mounts[0]["ReadOnly"]
    assert own_data.docker_args("gs://bucket/data") == {}


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(["run", "training", "--local", "--pipeline-root", "/nonexistent-root", *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("make", "argv", "message"),
    [
        (lambda d: d / "nope.parquet", ["--label", "churned"], "nope.parquet' does not exist"),
        (lambda d: pq.write_table(ROWS, d / "t.parquet") or d / "t.parquet", [],
         "--data needs --label COLUMN"),
        (lambda d: pq.write_table(ROWS, d / "t.parquet") or d / "t.parquet",
         ["--label", "employed", "--key", "customer"],
         r"label column \['employed'\] not in .*its columns are \['customer', 'x', 'churned'\]"),
        (lambda d: pq.write_table(ROWS, d / "t.parquet") or d / "t.parquet",
         ["--label", "churned"], r"key column\(s\) \['id'\] not in .*pass --key COLUMN"),
        (lambda d: pq.write_table(ROWS.slice(0, 0), d / "t.parquet") or d / "t.parquet",
         ["--label", "churned", "--key", "customer"], "has no rows"),
        (lambda d: (d / "e.csv").write_text("") or d / "e.csv",
         ["--label", "churned", "--key", "customer"], "e.csv"),
    ],
    ids=["missing-path", "no-label", "missing-label", "missing-key", "empty-parquet", "empty-csv"],
)  # fmt: skip
def test_bad_data_exits_2_naming_it_before_any_step_runs(tmp_path, capsys, make, argv, message):
    path: Path = make(tmp_path)
    code, err = run_cli(capsys, "--data", str(path), *argv)
    assert code == 2, err
    assert re.search(message, err), err
    assert not Path("/nonexistent-root").exists()  # nothing ran


def test_data_is_for_the_training_pipeline_without_the_emulator(tmp_path, capsys):
    pq.write_table(ROWS, tmp_path / "t.parquet")
    code, err = run_cli(capsys, "--data", str(tmp_path / "t.parquet"), "--label", "churned",
                        "--emulator")  # fmt: skip
    assert code == 2 and "without --emulator" in err


def test_data_with_the_cache_is_refused(tmp_path, capsys):
    """KFP's cache keys the split on its inputs: the path, not the file's content."""
    pq.write_table(ROWS, tmp_path / "t.parquet")
    code, err = run_cli(capsys, "--data", str(tmp_path / "t.parquet"), "--label", "churned",
                        "--key", "customer", "--cache")  # fmt: skip
    assert code == 2 and "--cache is not supported" in err
