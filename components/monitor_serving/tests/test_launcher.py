"""monitor_serving's launcher: the executor input KFP gives it, real log files, real TFDV,
every output; bad input exits 2 and leaves no outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from kfpkit import testing
from kfpkit.components.monitor_serving import launcher
from kfpkit.runtime import executor
from kfpkit.testing import served_logs as sl
from kfpkit.tfdv import artifacts
from kfpkit.tfdv.in_process import statistics_of_table

OUTPUTS = {"statistics": "system.Artifact", "report": "system.HTML",
           "metrics": "system.Metrics", "monitoring": "system.Artifact"}  # fmt: skip
THRESHOLDS = {"drift_thresholds": {"id": 0.0, "year": 0.0}, "skew_thresholds": {"id": 0.0}}


def write_statistics(folder: Path, table: pa.Table) -> Path:
    folder.mkdir(parents=True)
    (folder / artifacts.STATISTICS_FILE).write_bytes(statistics_of_table(table).SerializeToString())
    return folder


def run(out: Path, params: dict, inputs: dict | None = None, input_metadata=None) -> int:
    doc = testing.executor_input(out, params, OUTPUTS, inputs=inputs,
                                 output_params=["alert", "moved_features"],
                                 input_metadata=input_metadata)  # fmt: skip
    return executor.launch(launcher.run, ["--executor_input", json.dumps(doc)])


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    """One hour of traffic (city shifted towards "a") with labels for every answered row."""
    folder = tmp_path_factory.mktemp("logs") / "model"
    requests, feedback = sl.simulate(3000, {"1": sl.Variant(skill=0.5)}, seed=4)
    rng = np.random.default_rng(4)
    city = pa.array(rng.choice(["a", "b", "c"], size=3000, p=[0.6, 0.2, 0.2]), pa.string())
    requests = requests.set_column(requests.schema.get_field_index("city"), "city", city)
    sl.write_experiment(folder, requests, feedback, files=3)
    return folder


@pytest.fixture(scope="module")
def training(tmp_path_factory) -> Path:
    rng = np.random.default_rng(9)
    n = 10000
    table = pa.table({"f0": rng.normal(0, 1, n), "city": rng.choice(["a", "b", "c"], size=n),
                      "id": np.arange(n)})  # fmt: skip
    return write_statistics(tmp_path_factory.mktemp("training") / "stats", table)


def test_a_window_with_skew_and_decay_alerts_with_every_output(tmp_path, logs, training):
    (tmp_path / "reference").mkdir()
    params = {"logs": str(logs), "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00",
              "max_decay": 0.05, **THRESHOLDS}  # fmt: skip
    code = run(tmp_path / "out", params, inputs={
        "training_statistics": ("system.Artifact", str(training)),
        "reference_metrics": ("system.Metrics", str(tmp_path / "reference")),
    }, input_metadata={"reference_metrics": {"auc": 0.95, "accuracy": 0.9}})  # fmt: skip
    assert code == 0
    out = tmp_path / "out"
    doc = json.loads((out / "monitoring" / "monitoring.json").read_text())
    assert doc["alert"] is True and doc["moved_features"] == ["city"]
    assert doc["rows"] == 3000 and doc["window"]["model_versions"] == ["1"]
    assert doc["performance"]["reference"] == 0.95 and doc["performance"]["over"] is True
    assert [r.split(":")[0] for r in doc["reasons"]] == ["skew from the training data",
                                                        "performance decay"]  # fmt: skip
    outputs = json.loads((out / "executor_output.json").read_text())
    assert outputs["parameterValues"] == {"alert": True, "moved_features": ["city"]}
    assert json.loads((out / "moved_features").read_text()) == ["city"]
    metrics = outputs["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert metrics["alert"] == 1.0 and metrics["skew_city"] > 0.2 and metrics["rows"] == 3000
    assert 0.7 < metrics["auc"] < 0.82 and metrics["decay"] == pytest.approx(0.95 - metrics["auc"])
    stats = artifacts.load_statistics(str(out / "statistics"), "statistics")
    assert stats.datasets[0].num_examples == 3000
    html = (out / "report").read_text()
    assert "id='verdict'>ALERT<" in html and "performance decay" in html
    assert "<script" not in html


def test_the_window_statistics_are_the_next_windows_drift_baseline(tmp_path, logs, training):
    assert (
        run(
            tmp_path / "w1",
            {"logs": str(logs), "end": "2026-01-01T00:30:00"},
            inputs={"training_statistics": ("system.Artifact", str(training))},
        )
        == 0
    )
    code = run(tmp_path / "w2", {"logs": str(logs), "start": "2026-01-01T00:30:00"}, inputs={
        "training_statistics": ("system.Artifact", str(training)),
        "previous_statistics": ("system.Artifact", str(tmp_path / "w1" / "statistics")),
    })  # fmt: skip
    assert code == 0
    first = json.loads((tmp_path / "w1" / "monitoring" / "monitoring.json").read_text())
    second = json.loads((tmp_path / "w2" / "monitoring" / "monitoring.json").read_text())
    assert first["rows"] + second["rows"] == 3000 and first["drift"] == []
    assert {m["feature"] for m in second["drift"]} == {"f0", "city"}
    assert all(m["value"] < 0.03 for m in second["drift"])  # the same traffic, split in two
    assert second["prediction"]["drift"]["feature"] == "prediction"
    assert second["prediction"]["previous_mean"] == pytest.approx(first["prediction"]["mean"])


def test_window_hours_moves_with_end_and_takes_the_window_before_as_baseline(tmp_path, logs):
    params = {"logs": str(logs), "end": "2026-01-01T01:00:00Z", "window_hours": 0.5}
    assert run(tmp_path / "out", params) == 0
    doc = json.loads((tmp_path / "out" / "monitoring" / "monitoring.json").read_text())
    window = doc["window"]
    assert (window["start"], window["end"]) == ("2026-01-01T00:30:00+00:00",
                                                "2026-01-01T01:00:00+00:00")  # fmt: skip
    assert window["previous"]["start"] == "2026-01-01T00:00:00+00:00"
    assert window["previous"]["rows"] + doc["rows"] == 3000
    assert {m["feature"] for m in doc["drift"]} == {"f0", "city"}  # against the half before
    assert doc["prediction"]["drift"]["value"] < 0.03


def test_a_fallback_baseline_from_load_window_state_counts_as_absent(tmp_path, logs, training):
    code = run(tmp_path / "out", {"logs": str(logs)}, inputs={
        "previous_statistics": ("system.Artifact", str(training)),
    }, input_metadata={"previous_statistics": {"fallback": True}})  # fmt: skip
    assert code == 0
    doc = json.loads((tmp_path / "out" / "monitoring" / "monitoring.json").read_text())
    assert doc["drift"] == [] and doc["skew"] == [] and doc["alert"] is False


def test_no_logs_source_is_no_traffic(tmp_path, training):
    assert (
        run(
            tmp_path / "out",
            {"logs": ""},
            inputs={"training_statistics": ("system.Artifact", str(training))},
        )
        == 0
    )
    out = tmp_path / "out"
    doc = json.loads((out / "monitoring" / "monitoring.json").read_text())
    assert doc["alert"] is False and doc["rows"] == 0
    assert doc["reasons"] == ["no traffic (no served-traffic source: logs is empty)"]
    meta = json.loads((out / "executor_output.json").read_text())["artifacts"]
    assert meta["statistics"]["artifacts"][0]["metadata"]["empty"] is True
    assert "no alert" in (out / "report").read_text()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"logs": "/no/such/folder"}, "log folder '/no/such/folder' does not exist"),
        ({"logs": "s3://bucket/x"}, "unsupported log source 's3://bucket/x'"),
        ({"start": "yesterday"}, "start is not an ISO-8601 time: 'yesterday'"),
        ({"start": "2026-01-02", "end": "2026-01-01"}, "is not before end"),
        ({"metric": "f1"}, "metric must be one of"),
        ({"start": "2026-01-01", "window_hours": 2}, "give start or window_hours, not both"),
        ({"window_hours": -1}, "window_hours must be a number >= 0"),
        ({"default_numeric_skew_threshold": "high"}, "default_numeric_skew_threshold must be a"),
        ({"skew_thresholds": ["city"]}, "skew_thresholds must be a dict"),
    ],
)
def test_bad_input_exits_2_naming_it_and_writes_no_outputs(tmp_path, logs, training, params,
                                                           message, caplog):  # fmt: skip
    given = {"logs": str(logs), **params}
    code = run(tmp_path / "out", given,
               inputs={"training_statistics": ("system.Artifact", str(training))})  # fmt: skip
    assert code == 2
    assert message in caplog.text
    assert not (tmp_path / "out" / "monitoring").exists()
    assert not (tmp_path / "out" / "executor_output.json").exists()


def test_a_baseline_that_is_not_statistics_is_named(tmp_path, logs, caplog):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / artifacts.STATISTICS_FILE).write_bytes(b"not a proto at all \xff")
    code = run(
        tmp_path / "out",
        {"logs": str(logs)},
        inputs={"training_statistics": ("system.Artifact", str(tmp_path / "junk"))},
    )
    assert code == 2 and "training_statistics:" in caplog.text
