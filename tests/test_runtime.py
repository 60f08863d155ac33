"""The kfp-free executor contract every launcher uses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kfpkit.runtime import executor as ex
from kfpkit.runtime.retry import retry


def executor_input(tmp_path, params=None, outputs=("data",)) -> dict:
    return {
        "inputs": {"parameterValues": params or {}},
        "outputs": {
            "artifacts": {
                name: {
                    "artifacts": [
                        {
                            "name": name,
                            "type": {"schemaTitle": "system.Dataset"},
                            "uri": str(tmp_path / name),
                            "metadata": {},
                        }
                    ]
                }
                for name in outputs
            },
            "parameters": {"count": {"outputFile": str(tmp_path / "params" / "count")}},
            "outputFile": str(tmp_path / "executor_output.json"),
        },
    }


@pytest.mark.parametrize(
    "uri, path",
    [
        ("gs://bucket/a/b", "/gcs/bucket/a/b"),
        ("s3://bucket/a", "/s3/bucket/a"),
        ("minio://bucket/a", "/minio/bucket/a"),
        ("/local/x", "/local/x"),
    ],
)
def test_uri_to_path_follows_kfp_mounts(uri, path):
    assert ex.uri_to_path(uri) == path
    assert ex.path_to_uri(path) == uri


def test_unsupported_scheme_is_a_user_error():
    with pytest.raises(ValueError, match="hdfs://x"):
        ex.uri_to_path("hdfs://x")


def test_success_writes_parameters_artifacts_and_metadata(tmp_path):
    def run(e: ex.Executor) -> None:
        art = e.output("data")
        os.makedirs(art.path)
        Path(art.path, "part-0").write_text("x")
        art.metadata["row_count"] = 3
        e.set_output_param("count", 3)

    doc = executor_input(tmp_path, {"n": 3})
    assert ex.launch(run, ["--executor_input", json.dumps(doc)]) == 0
    out = json.loads((tmp_path / "executor_output.json").read_text())
    assert out["parameterValues"] == {"count": 3}
    art = out["artifacts"]["data"]["artifacts"][0]
    assert art["uri"] == str(tmp_path / "data") and art["metadata"] == {"row_count": 3}
    assert (tmp_path / "params" / "count").read_text() == "3"


@pytest.mark.parametrize(
    "error, code", [(ValueError("bad value 'x'"), 2), (RuntimeError("backend down"), 1)]
)
def test_failure_leaves_no_outputs(tmp_path, error, code):
    def run(e: ex.Executor) -> None:
        os.makedirs(e.output("data").path)
        Path(e.output("data").path, "half-written").write_text("x")
        raise error

    assert ex.launch(run, ["--executor_input", json.dumps(executor_input(tmp_path))]) == code
    assert not (tmp_path / "executor_output.json").exists()
    assert not (tmp_path / "data").exists()


def test_malformed_executor_input_is_a_user_error(tmp_path):
    assert ex.launch(lambda e: None, ["--executor_input", "{not json"]) == 2


def test_sigterm_cancels_and_cleans_up(tmp_path):
    """A stopped pod: the runner sees Cancelled (to cancel its remote job), no outputs remain."""
    script = textwrap.dedent(
        f"""
        import json, os, sys, time
        from kfpkit.runtime import executor as ex
        def run(e):
            os.makedirs(e.output("data").path)
            try:
                print("ready", flush=True)
                time.sleep(30)
            except ex.Cancelled:
                open({str(tmp_path / "cancelled")!r}, "w").write("yes")
                raise
        doc = {json.dumps(json.dumps(executor_input(tmp_path)))}
        sys.exit(ex.launch(run, ["--executor_input", doc]))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == ex.EXIT_CANCELLED
    assert (tmp_path / "cancelled").read_text() == "yes"
    assert not (tmp_path / "data").exists()
    assert not (tmp_path / "executor_output.json").exists()


def test_retry_retries_transient_only():
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("reset")
        return "ok"

    assert retry(flaky, lambda e: isinstance(e, ConnectionError), sleep=lambda s: None) == "ok"
    assert len(calls) == 3

    def broken() -> None:
        calls.append(1)
        raise KeyError("not transient")

    calls.clear()
    with pytest.raises(KeyError):
        retry(broken, lambda e: isinstance(e, ConnectionError), sleep=lambda s: None)
    assert len(calls) == 1


def test_retry_gives_up_after_attempts():
    calls = []

    def down() -> None:
        calls.append(1)
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        retry(down, lambda e: True, attempts=4, sleep=lambda s: None)
    assert len(calls) == 4


def test_outputs_described_by_metadata_alone_still_get_a_path(tmp_path):
    """kfp.local's cache treats a missing output path as a deleted result: every output
    artifact exists after a successful step (Metrics as its JSON, others as a folder)."""
    doc = executor_input(tmp_path, outputs=("data", "metrics"))
    doc["outputs"]["artifacts"]["metrics"]["artifacts"][0]["type"]["schemaTitle"] = "system.Metrics"

    def run(e: ex.Executor) -> None:
        e.output("metrics").metadata["auc"] = 0.9

    assert ex.launch(run, ["--executor_input", json.dumps(doc)]) == 0
    assert json.loads((tmp_path / "metrics").read_text()) == {"auc": 0.9}
    assert (tmp_path / "data").is_dir() and not any((tmp_path / "data").iterdir())
