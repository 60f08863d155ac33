"""The launcher as KFP runs it: a subprocess given an executor input, against the emulator."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import google.auth.exceptions
import pyarrow.parquet as pq
import pytest
import requests
import urllib3
from google.api_core import exceptions as gexc

from kfpkit import demo_data, testing
from kfpkit.components.bigquery_split.launcher import request_from
from kfpkit.components.bigquery_split.runner import SplitRunner, export_uri_pattern, is_transient
from kfpkit.runtime.executor import Executor
from kfpkit.runtime.identity import executor_identity, step_key

SAMPLE = Path(__file__).parent / "data" / "employment_sample.parquet"
OUTPUTS = {
    "train": "system.Dataset",
    "validation": "system.Dataset",
    "test": "system.Dataset",
    "other_splits": "system.Dataset",
    "split_metrics": "system.Metrics",
}


def executor_input(tmp_path: Path, params: dict) -> dict:
    return testing.executor_input(tmp_path / "out", params, OUTPUTS)


def launcher_command(tmp_path: Path, params: dict) -> list[str]:
    doc = json.dumps(executor_input(tmp_path, params))
    module = "kfpkit.components.bigquery_split.launcher"
    return [sys.executable, "-m", module, "--executor_input", doc]


def emulator_params(emulator, source_table: str) -> dict:
    project, dataset = source_table.split(".")[:2]
    return {
        "source_table": source_table,
        "key_columns": ["id"],
        "project": project,
        "destination_dataset": dataset,
        "bigquery_endpoint": emulator.endpoint,
    }


def launch(tmp_path: Path, params: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        launcher_command(tmp_path, params), capture_output=True, text=True, timeout=300
    )


@pytest.mark.emulator
def split_in_four(tmp_path: Path, params: dict) -> dict:
    """Runs the launcher on the 2,000 sample rows split four ways; its artifacts by output
    name, after checking that every row went to exactly one split."""
    proc = launch(tmp_path, params)
    assert proc.returncode == 0, proc.stderr
    out = json.loads((tmp_path / "out" / "executor_output.json").read_text())
    arts = {k: v["artifacts"][0] for k, v in out["artifacts"].items()}
    metrics = arts["split_metrics"]["metadata"]
    assert metrics["rows_total"] == 2000
    assert sum(metrics[f"rows_{n}"] for n in ("train", "validation", "test", "extra")) == 2000
    return arts


def test_launcher_writes_the_executor_output(emulator, bq, dataset, tmp_path):
    demo_data.load_into_bigquery(bq, SAMPLE, f"{dataset}.employment")
    params = {
        **emulator_params(emulator, f"{dataset}.employment"),
        # a dict parameter arrives as a JSON object; a pipeline may also pass JSON text
        "split_ratios": json.dumps({"train": 0.6, "validation": 0.2, "test": 0.1, "extra": 0.1}),
    }
    arts = split_in_four(tmp_path, params)
    train = arts["train"]["metadata"]
    assert train["table_id"] == f"{dataset}.employment_train"
    assert pq.read_table(str(tmp_path / "out" / "train")).num_rows == train["row_count"]
    extra = arts["other_splits"]["metadata"]["splits"]["extra"]
    assert (
        pq.read_table(str(tmp_path / "out" / "other_splits" / "extra")).num_rows
        == extra["row_count"]
    )


def test_a_data_file_source_gives_the_same_outputs_without_bigquery(tmp_path):
    """A Parquet path: the embedded engine, the same artifacts and metadata as on BigQuery
    (no table id); no project, dataset or endpoint is needed."""
    params = {
        "source_table": str(SAMPLE),
        "key_columns": ["id"],
        "label_column": "employed",
        "split_ratios": {"train": 0.6, "validation": 0.2, "test": 0.1, "extra": 0.1},
    }
    arts = split_in_four(tmp_path, params)
    train = arts["train"]["metadata"]
    assert train["table_id"] == "" and train["source"] == str(SAMPLE)
    assert train["files"] == arts["train"]["uri"] + "/data-*.parquet"
    assert train["format"] == "parquet" and train["key_columns"] == ["id"]
    assert pq.read_table(str(tmp_path / "out" / "train")).num_rows == train["row_count"]
    extra = arts["other_splits"]["metadata"]["splits"]["extra"]
    assert (
        pq.read_table(str(tmp_path / "out" / "other_splits" / "extra")).num_rows
        == extra["row_count"]
    )


@pytest.mark.parametrize(
    "params, message",
    [
        ({"source_table": "/no/such/data.parquet"}, "'/no/such/data.parquet' does not exist"),
        ({"label_column": "label"}, r"label column \['label'\] not in"),
        ({"key_columns": ["customer"]}, r"key column\(s\) \['customer'\] not in"),
        ({"export_format": "none"}, "export_format must be 'parquet'"),
    ],
)
def test_a_bad_data_source_exits_2_naming_the_value(tmp_path, params, message):
    proc = launch(tmp_path, {"source_table": str(SAMPLE), "key_columns": ["id"], **params})
    assert proc.returncode == 2, proc.stderr
    assert re.search(message, proc.stderr), proc.stderr
    assert not (tmp_path / "out" / "executor_output.json").exists()
    assert not list((tmp_path / "out").glob("**/*.parquet"))


def test_launcher_user_error_exits_2_and_names_the_value(tmp_path):
    params = {
        "source_table": "a.b.c`; DROP TABLE x",
        "key_columns": ["id"],
        "project": "proj",
        "destination_dataset": "ds",
        "bigquery_endpoint": "http://127.0.0.1:9",
    }
    proc = launch(tmp_path, params)
    assert proc.returncode == 2
    assert "DROP TABLE x" in proc.stderr and "source_table" in proc.stderr
    assert not (tmp_path / "out" / "executor_output.json").exists()


def test_launcher_rejects_ratios_that_are_not_json(tmp_path):
    params = {
        "source_table": "proj.ds.t",
        "key_columns": ["id"],
        "project": "proj",
        "destination_dataset": "ds",
        "split_ratios": "{train: 1",
    }
    proc = launch(tmp_path, params)
    assert proc.returncode == 2 and "split_ratios is not valid JSON" in proc.stderr


def test_parquet_export_on_bigquery_needs_a_gs_pipeline_root():
    assert (
        export_uri_pattern("gs://b/run/train", emulator=False) == "gs://b/run/train/data-*.parquet"
    )
    assert (
        export_uri_pattern("/gcs/b/run/train", emulator=False) == "gs://b/run/train/data-*.parquet"
    )
    assert (
        export_uri_pattern("/tmp/run/train", emulator=True) == "gs://tmp/run/train/data-*.parquet"
    )
    with pytest.raises(ValueError, match="gs:// pipeline root"):
        export_uri_pattern("/tmp/run/train", emulator=False)


@pytest.mark.parametrize(
    "error, transient",
    [
        (gexc.ServiceUnavailable("down"), True),
        (gexc.TooManyRequests("slow down"), True),
        (gexc.InternalServerError("oops"), True),
        (ConnectionError("reset"), True),
        # what the client really raises for a dropped connection: an OSError, not the built-in
        (
            requests.exceptions.ConnectionError(
                "('Connection aborted.', RemoteDisconnected('Remote end closed connection'))"
            ),
            True,
        ),
        (requests.exceptions.ReadTimeout("read timed out"), True),
        (urllib3.exceptions.ProtocolError("Connection aborted."), True),
        (google.auth.exceptions.TransportError("connection refused"), True),
        (requests.exceptions.SSLError("certificate verify failed"), False),
        (gexc.BadRequest("x", errors=[{"reason": "backendError"}]), True),
        (gexc.BadRequest("syntax"), False),
        (gexc.NotFound("table"), False),
        (gexc.Forbidden("denied"), False),
    ],
)
def test_transient_errors(error, transient):
    assert is_transient(error) is transient


def test_a_restarted_step_keeps_its_job_ids_and_another_task_gets_others(tmp_path):
    """Job ids come from the shared executor identity: the same executor input (KFP starting
    the step again) names the same jobs, so the restart resumes them; another task does not."""
    params = {
        "source_table": "kfpkit-test.d.src",
        "key_columns": ["id"],
        "project": "kfpkit-test",
        "destination_dataset": "d",
        "bigquery_endpoint": "http://127.0.0.1:9",  # never called: only the ids are compared
        "export_format": "none",
    }
    doc = json.dumps(executor_input(tmp_path / "task1", params))
    first = SplitRunner(request_from(Executor.from_json(doc)))
    restarted = SplitRunner(request_from(Executor.from_json(doc)))
    other_task = SplitRunner(request_from(Executor(executor_input(tmp_path / "task2", params))))
    assert first.step == restarted.step != other_task.step
    assert first.step == step_key(executor_identity(json.loads(doc)))
    assert first.staging == restarted.staging != other_task.staging


@pytest.mark.emulator
def test_sigterm_cancels_the_running_bigquery_job(emulator, bq, dataset, tmp_path):
    """A stopped pod cancels its BigQuery job and leaves no outputs."""
    import signal
    import time

    big = tmp_path / "big.parquet"
    pq.write_table(demo_data.upsample(pq.read_table(SAMPLE), 60_000), big)
    demo_data.load_into_bigquery(bq, big, f"{dataset}.big")  # hashing takes ~10 s on the emulator
    proc = subprocess.Popen(
        launcher_command(tmp_path, emulator_params(emulator, f"{dataset}.big")),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "_assign" in line and "Running" in line:
            break
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=120)[1]
    log = "".join(lines) + rest
    assert proc.returncode == 130, log
    # The cancel request names the running job. (The emulator answers jobs.insert only when
    # the query is done, so it cannot stop the query; BigQuery can.)
    assert "Cancelling BigQuery job kfpkit_split_" in log and "_assign" in log
    assert not (tmp_path / "out" / "executor_output.json").exists()
    assert not list((tmp_path / "out").glob("*/*.parquet"))
    tables = {t.table_id for t in bq.list_tables(dataset)}
    assert not any(t.startswith("big_") for t in tables), tables  # no split table written
