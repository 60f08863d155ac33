"""The launcher as KFP runs it: a subprocess given an executor input, on real Parquet logs."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pyarrow as pa

from kfpkit import testing
from kfpkit.testing.served_logs import T0, Variant, simulate, write_experiment, write_requests

OUTPUTS = {"decision": "system.Artifact", "report": "system.HTML", "metrics": "system.Metrics"}
MODULE = "kfpkit.components.online_experiment.launcher"


def launch(tmp_path: Path, params: dict) -> subprocess.CompletedProcess:
    doc = testing.executor_input(
        tmp_path / "out", params, OUTPUTS, output_params=["decision_value"]
    )
    return subprocess.run([sys.executable, "-m", MODULE, "--executor_input", json.dumps(doc)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def outputs(tmp_path: Path) -> dict:
    doc = json.loads((tmp_path / "out" / "executor_output.json").read_text())
    return {k: v["artifacts"][0] for k, v in doc["artifacts"].items()} | {
        "params": doc["parameterValues"]
    }


def test_a_worse_canary_is_rolled_back_end_to_end(tmp_path):
    logs = tmp_path / "logs" / "employment"
    requests, feedback = simulate(
        12_000, {"v1": Variant(skill=1.5), "v2": Variant(skill=0.7)}, seed=5, labelled=0.9
    )
    write_experiment(logs, requests, feedback, files=4)
    params = {
        "logs": str(logs),
        "control_variant": "v1",
        "treatment_variant": "v2",
        "end": (T0 + timedelta(days=1)).isoformat(),
        "max_latency_p99_ms": 100.0,
        "max_error_rate": "0.05",  # a pipeline parameter may arrive as text
    }
    proc = launch(tmp_path, params)
    assert proc.returncode == 0, proc.stderr
    out = outputs(tmp_path)
    assert out["params"]["decision_value"] == "rollback"
    assert (tmp_path / "out" / "decision_value").read_text() == "rollback"
    decision = json.loads((tmp_path / "out" / "decision" / "decision.json").read_text())
    assert decision["decision"] == "rollback" and decision["decided_variant"] == "v2"
    assert decision["source"] == str(logs)
    comparison = decision["comparisons"][0]
    assert comparison["test"]["crossed"]["high"] < 0
    assert [g["name"] for g in comparison["guardrails"]] == ["latency_p99_ms", "error_rate"]
    assert out["decision"]["metadata"]["decision"] == "rollback"
    metrics = out["metrics"]["metadata"]
    assert metrics["rows"] == 12_000 and metrics["v2/accuracy"] < metrics["v1/accuracy"]
    assert 0 < metrics["v2/outcomes_to_decision"] < 12_000
    html = (tmp_path / "out" / "report").read_text()
    assert "Decision: <span class='bad'>rollback</span>" in html and "<script" not in html
    assert "default-src 'none'" in html and "<svg" in html


def test_an_empty_window_is_continue_not_an_error(tmp_path):
    logs = tmp_path / "logs"
    requests, feedback = simulate(200, {"v1": Variant(), "v2": Variant()})
    write_experiment(logs, requests, feedback, files=1)
    params = {"logs": str(logs), "control_variant": "v1", "start": "2030-01-01T00:00:00Z"}
    proc = launch(tmp_path, params)
    assert proc.returncode == 0, proc.stderr
    out = outputs(tmp_path)
    assert out["params"]["decision_value"] == "continue"
    assert out["decision"]["metadata"]["reasons"] == ["no served rows in the window"]


def test_an_unknown_variant_exits_2_listing_those_present(tmp_path):
    logs = tmp_path / "logs"
    requests, feedback = simulate(200, {"v1": Variant(), "v2": Variant()})
    write_experiment(logs, requests, feedback, files=1)
    proc = launch(tmp_path, {"logs": str(logs), "control_variant": "prod"})
    assert proc.returncode == 2
    assert "control_variant 'prod'" in proc.stderr and "['v1', 'v2']" in proc.stderr
    assert not (tmp_path / "out" / "executor_output.json").exists()
    assert not (tmp_path / "out" / "decision").exists()


def test_log_files_of_two_schemas_exit_2_naming_both(tmp_path):
    logs = tmp_path / "logs"
    requests, _ = simulate(100, {"v1": Variant()}, seed=1)
    first = write_requests(logs, requests)
    changed = requests.set_column(0, "f0", pa.array([str(v) for v in requests.column("f0")]))
    second = write_requests(logs, changed)
    proc = launch(tmp_path, {"logs": str(logs), "control_variant": "v1"})
    assert proc.returncode == 2
    assert "two incompatible schemas" in proc.stderr
    assert first.name in proc.stderr and second.name in proc.stderr
    assert not (tmp_path / "out" / "executor_output.json").exists()


def test_missing_logs_and_a_bad_metric_exit_2(tmp_path):
    proc = launch(tmp_path, {"logs": str(tmp_path / "nowhere"), "control_variant": "v1"})
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    proc = launch(tmp_path, {"logs": str(tmp_path), "control_variant": "v1", "metric": "f1"})
    assert proc.returncode == 2 and "'f1'" in proc.stderr
