"""``kfpkit run training --local --data``: the pipeline's arguments for a user's own data, and
bad data refused before Docker starts (exit 2, the bad value named)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from kfpkit import own_data
from kfpkit.cli import main
from kfpkit.testing.gcs import GcsStandIn

ROWS = pa.table({"customer": ["a", "b", "c"], "x": [1.0, 2.0, 3.0], "churned": [0, 1, 0]})
NO_DOCKER = "unix:///nonexistent/docker.sock"


@pytest.fixture(autouse=True)
def no_docker(monkeypatch):
    """No Docker daemon to reach: a check that let a run start fails it at once (exit 1)
    instead of starting the pipeline's containers."""
    monkeypatch.setenv("DOCKER_HOST", NO_DOCKER)


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
        (lambda d: pq.write_table(ROWS.set_column(2, "churned", pa.array([0, None, 1])),
                                  d / "t.parquet") or d / "t.parquet",
         ["--label", "churned", "--key", "customer"],
         r"label column 'churned' of .*t.parquet' is NULL in 1 of 3 rows"),
    ],
    ids=["missing-path", "no-label", "missing-label", "missing-key", "empty-parquet", "empty-csv",
         "null-label"],
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


def run_cli_process(root: Path, *argv: str, env: dict[str, str] | None = None
                    ) -> subprocess.CompletedProcess:  # fmt: skip
    """``kfpkit run training --local`` as a user runs it (no Docker daemon: see no_docker);
    ``env``: variables added to the environment."""
    command = [sys.executable, "-m", "kfpkit.cli", "run", "training", "--local",
               "--pipeline-root", str(root), *argv]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})  # fmt: skip


def two_files(d: Path, labels: tuple[list, list], fmt: str) -> Path:
    """A folder of two files, the label's values split between them."""
    (d / "data").mkdir(parents=True)
    for name, values in zip(("a", "b"), labels, strict=True):
        table = pa.table({"customer": [f"{name}{i}" for i in range(len(values))],
                          "churned": values})  # fmt: skip
        if fmt == "csv":
            pcsv.write_csv(table, d / "data" / f"{name}.csv")
        else:
            pq.write_table(table, d / "data" / f"{name}.parquet")
    return d / "data"


@pytest.mark.parametrize(
    ("labels", "fmt", "message"),
    [
        (([1, 1], [1]), "parquet",
         r"label column 'churned' of '{data}' has one value \(1\) in every row"),
        ((["yes", "no"], ["no", "maybe", "yes"]), "csv",
         r"label column 'churned' of '{data}' has a third value 'maybe' \(after 'yes' and "
         r"'no'\); the label must be binary"),
    ],
    ids=["constant", "third-value-in-the-second-file"],
)  # fmt: skip
def test_a_label_that_is_not_binary_exits_2_before_the_pipeline_starts(tmp_path, labels, fmt,
                                                                       message):  # fmt: skip
    """Read up front from the label column alone (every file), not left to the split step."""
    data = two_files(tmp_path, labels, fmt)
    root = tmp_path / "root"
    proc = run_cli_process(root, "--data", str(data), "--label", "churned", "--key", "customer")
    assert proc.returncode == 2, proc.stderr
    assert re.fullmatch("kfpkit: error: " + message.format(data=re.escape(str(data))) + "\n",
                        proc.stderr), proc.stderr  # fmt: skip
    assert proc.stdout == ""  # not even the run's first line
    assert not root.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_a_gs_source_is_checked_up_front_too(tmp_path):
    """The label column read from Cloud Storage (a stand-in) before the pipeline starts."""
    data = two_files(tmp_path / "gcs" / "bucket", ([0, 1], [1, 0, 2]), "parquet")
    with GcsStandIn(tmp_path / "gcs") as gcs:
        proc = run_cli_process(tmp_path / "root", "--data", "gs://bucket/data", "--label",
                               "churned", "--key", "customer",
                               env=gcs.environment(tmp_path))  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (
        "kfpkit: error: label column 'churned' of 'gs://bucket/data' has a "
        "third value 2 (after 0 and 1); the label must be binary\n"
    )
    assert not (tmp_path / "root").exists() and data.is_dir()
