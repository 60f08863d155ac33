"""tfdv_validate_splits with real TFDV on demo rows: one step gives what the statistics,
schema and validation components give, for every split, and names faults per split."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2

from kfpkit import testing
from kfpkit.components.tfdv_validate_splits import launcher
from kfpkit.runtime import executor
from kfpkit.testing import tfdv as tfdv_testing
from kfpkit.tfdv import artifacts
from kfpkit.tfdv.schema import infer_schema

OUTPUTS = {
    "train_statistics": "system.Artifact",
    "validation_statistics": "system.Artifact",
    "test_statistics": "system.Artifact",
    "schema": "system.Artifact",
    "summary": "system.Markdown",
    "anomalies": "system.Artifact",
    "report": "system.HTML",
    "metrics": "system.Metrics",
}
DRIFT = {"default_numeric_drift_threshold": 0.1, "default_categorical_drift_threshold": 0.1}


@pytest.fixture(scope="module")
def splits() -> dict[str, pa.Table]:
    """A repeatable 75/12.5/12.5 split of the demo sample by id."""
    table = tfdv_testing.sample()
    bucket = pc.bit_wise_and(table["id"], 7)
    return {
        "train": table.filter(pc.less(bucket, 6)),
        "validation": table.filter(pc.equal(bucket, 6)),
        "test": table.filter(pc.equal(bucket, 7)),
    }


def run(tmp_path, tables: dict[str, pa.Table], params: dict | None = None) -> int:
    inputs = {
        name: ("system.Dataset", str(tfdv_testing.write_parquet(t, tmp_path / "in" / name, 2)))
        for name, t in tables.items()
    }
    doc = testing.executor_input(tmp_path / "out", params or {}, OUTPUTS, inputs, ["valid"])
    return executor.launch(launcher.run, ["--executor_input", json.dumps(doc)])


def output(tmp_path) -> dict:
    return json.loads((tmp_path / "out" / "executor_output.json").read_text())


def meta(out: dict, name: str) -> dict:
    return out["artifacts"][name]["artifacts"][0]["metadata"]


def with_values(table: pa.Table, name: str, values) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def test_one_step_gives_every_split_statistics_schema_and_validation(splits, tmp_path):
    assert run(tmp_path, splits, DRIFT) == 0
    out = output(tmp_path)
    assert out["parameterValues"]["valid"] is True
    for name, table in splits.items():
        stats_meta = meta(out, f"{name}_statistics")
        assert stats_meta["num_examples"] == table.num_rows and stats_meta["split"] == name
        # the same statistics as tfdv_statistics computes for the split on its own
        alone = tfdv_testing.statistics_of(table, tmp_path / f"alone-{name}")
        ours = artifacts.load_statistics(str(tmp_path / "out" / f"{name}_statistics"), name)
        agep = [
            next(f for f in s.datasets[0].features if f.path.step == ["AGEP"]).num_stats.mean
            for s in (alone, ours)
        ]
        assert agep[0] == pytest.approx(agep[1])
    schema = artifacts.load_schema(str(tmp_path / "out" / "schema"), "schema")
    expected = infer_schema(tfdv_testing.statistics_of(splits["train"], tmp_path / "t"))
    assert [f.name for f in schema.feature] == [f.name for f in expected.feature]
    metrics = meta(out, "metrics")
    assert metrics["anomaly_count"] == 0
    assert {"validation_drift_AGEP", "test_drift_AGEP", "test_drift_SEX"} <= set(metrics)
    assert sorted(meta(out, "anomalies")["files"]) == ["test", "validation"]
    page = (tmp_path / "out" / "report").read_text()
    assert "Validation of validation" in page and "Statistics of test" in page


def test_a_fault_in_one_split_is_named_with_its_split(splits, tmp_path):
    sex = splits["test"]["SEX"].to_pylist()
    sex[:5] = ["3"] * 5
    faulty = {**splits, "test": with_values(splits["test"], "SEX", pa.array(sex))}
    assert run(tmp_path, faulty, DRIFT) == 0
    out = output(tmp_path)
    assert out["parameterValues"]["valid"] is False
    found = meta(out, "anomalies")["anomalies"]
    assert found["validation"] == [] and len(found["test"]) == 1 and "SEX" in found["test"][0]
    assert meta(out, "metrics")["test_anomaly_count"] == 1
    text = (tmp_path / "out" / "anomalies" / "test" / artifacts.ANOMALIES_FILE).read_text()
    assert set(text_format.Parse(text, anomalies_pb2.Anomalies()).anomaly_info) == {"SEX"}


def test_drift_of_one_feature_can_be_turned_off_by_name(splits, tmp_path):
    older = pc.add(splits["validation"]["AGEP"], 25.0)
    drifted = {**splits, "validation": with_values(splits["validation"], "AGEP", older)}
    assert run(tmp_path / "on", drifted, DRIFT) == 0
    assert "AGEP" in " ".join(meta(output(tmp_path / "on"), "anomalies")["anomalies"]["validation"])
    assert run(tmp_path / "off", drifted, {**DRIFT, "drift_thresholds": {"AGEP": 0}}) == 0
    assert output(tmp_path / "off")["parameterValues"]["valid"] is True


def test_without_test_split_its_statistics_are_marked_absent(splits, tmp_path):
    two = {k: v for k, v in splits.items() if k != "test"}
    assert run(tmp_path, two) == 0
    out = output(tmp_path)
    assert meta(out, "test_statistics") == {"split": "test", "absent": True}
    assert list(meta(out, "anomalies")["files"]) == ["validation"]


def test_fail_on_anomalies_names_each_split_and_writes_nothing(splits, tmp_path, caplog):
    broken = {**splits, "validation": splits["validation"].drop(["DIS"])}
    assert run(tmp_path, broken, {"fail_on_anomalies": True}) == executor.EXIT_USER_ERROR
    assert "1 data anomalies" in caplog.text and "  - validation: DIS: " in caplog.text
    for name in [*OUTPUTS, "valid", "executor_output.json"]:
        assert not (tmp_path / "out" / name).exists()


def test_unknown_threshold_feature_is_refused_before_any_output(splits, tmp_path, caplog):
    params = {"drift_thresholds": {"NOPE": 0.1}}
    assert run(tmp_path, splits, params) == executor.EXIT_USER_ERROR
    assert "NOPE" in caplog.text
    assert not (tmp_path / "out" / "executor_output.json").exists()
