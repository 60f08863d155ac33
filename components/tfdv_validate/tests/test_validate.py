"""tfdv_validate with real TFDV on demo rows: clean data passes, each injected fault is named."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2

from kfpkit import testing
from kfpkit.components.tfdv_validate import launcher
from kfpkit.runtime import executor
from kfpkit.testing import tfdv as tfdv_testing
from kfpkit.tfdv import artifacts
from kfpkit.tfdv.schema import infer_schema
from kfpkit.tfdv.validation import (
    Thresholds,
    anomaly_lines,
    measurements,
    validate,
)

DRIFT = Thresholds(categorical=0.1, numeric=0.1)
OUTPUTS = {"anomalies": "system.Artifact", "report": "system.HTML", "metrics": "system.Metrics"}


def split(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """A repeatable 75/25 split by id, like bigquery_split's."""
    in_train = pc.less(pc.bit_wise_and(table["id"], 3), 3)
    return table.filter(in_train), table.filter(pc.invert(in_train))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    train, validation = split(tfdv_testing.sample())
    tmp = tmp_path_factory.mktemp("train")
    train_stats = tfdv_testing.statistics_of(train, tmp)
    return {"train": train, "validation": validation, "train_stats": train_stats,
            "schema": infer_schema(train_stats), "tmp": tmp_path_factory}  # fmt: skip


def stats(data, table):
    return tfdv_testing.statistics_of(table, data["tmp"].mktemp("s"))


def reasons(anomalies: anomalies_pb2.Anomalies) -> dict[str, set[str]]:
    return {
        name: {anomalies_pb2.AnomalyInfo.Type.Name(r.type) for r in info.reason}
        for name, info in anomalies.anomaly_info.items()
    }


def replace(table: pa.Table, name: str, values) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def test_clean_validation_split_passes_with_drift_checked(data):
    anomalies = validate(
        stats(data, data["validation"]), data["schema"], baseline=data["train_stats"], drift=DRIFT
    )
    assert anomaly_lines(anomalies) == []
    measured = measurements(anomalies)
    assert {m.feature for m in measured} == set(data["validation"].column_names)
    assert all(m.value < 0.1 for m in measured)


def test_new_categorical_value_is_named(data):
    sex = data["validation"]["SEX"].to_pylist()
    sex[:5] = ["3"] * 5
    anomalies = validate(
        stats(data, replace(data["validation"], "SEX", pa.array(sex))), data["schema"]
    )
    assert reasons(anomalies) == {"SEX": {"ENUM_TYPE_UNEXPECTED_STRING_VALUES"}}
    assert "3" in anomalies.anomaly_info["SEX"].description


def test_missing_column_is_named(data):
    anomalies = validate(stats(data, data["validation"].drop(["DIS"])), data["schema"])
    assert reasons(anomalies) == {"DIS": {"SCHEMA_MISSING_COLUMN"}}


def test_type_change_is_named(data):
    as_text = pc.cast(data["validation"]["AGEP"], pa.string())
    anomalies = validate(stats(data, replace(data["validation"], "AGEP", as_text)), data["schema"])
    assert set(reasons(anomalies)) == {"AGEP"}
    assert "FLOAT" in anomalies.anomaly_info["AGEP"].description.upper()


def test_numeric_drift_beyond_threshold_is_named(data):
    older = pc.add(data["validation"]["AGEP"], 25.0)
    drifted = stats(data, replace(data["validation"], "AGEP", older))
    anomalies = validate(drifted, data["schema"], baseline=data["train_stats"], drift=DRIFT)
    assert reasons(anomalies) == {"AGEP": {"COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"}}
    agep = next(m for m in measurements(anomalies) if m.feature == "AGEP")
    assert agep.value > 0.1 and agep.measure == "JENSEN_SHANNON_DIVERGENCE"
    # a per-feature threshold above the measured value lets it pass
    relaxed = Thresholds(categorical=0.1, numeric=0.1, per_feature={"AGEP": agep.value + 0.01})
    assert not anomaly_lines(
        validate(drifted, data["schema"], baseline=data["train_stats"], drift=relaxed)
    )


def test_categorical_skew_between_training_and_serving_is_named(data):
    serving = data["validation"].filter(pc.equal(data["validation"]["SEX"], "1"))
    anomalies = validate(
        data["train_stats"], data["schema"], serving=stats(data, serving),
        skew=Thresholds(categorical=0.2),
    )  # fmt: skip
    assert reasons(anomalies) == {"SEX": {"COMPARATOR_L_INFTY_HIGH"}}
    sex = next(m for m in measurements(anomalies) if m.feature == "SEX")
    assert sex.kind == "skew" and sex.value == pytest.approx(0.5, abs=0.05)


def test_later_years_against_2015_show_real_drift(data, capsys):
    table = tfdv_testing.sample()
    base = stats(data, table.filter(pc.equal(table["year"], 2015)))
    later = stats(data, table.filter(pc.greater(table["year"], 2015)))
    anomalies = validate(later, infer_schema(base), baseline=base, drift=DRIFT)
    found = {m.feature: m.value for m in measurements(anomalies)}
    with capsys.disabled():
        top = sorted(found.items(), key=lambda kv: -kv[1])[:5]
        print("\n2016-2018 vs 2015 (2,000-row sample), largest drift:", top)
    assert found["year"] > 0.5  # the year itself moved entirely
    assert len(found) == table.num_columns


@pytest.mark.parametrize(
    "thresholds, message",
    [(Thresholds(numeric=-1), "must be a number >= 0"),
     (Thresholds(per_feature={"nope": 0.1}), r"not in the schema: \['nope'\]"),
     (Thresholds(per_feature={"AGEP": "x"}), "must be a number")],
)  # fmt: skip
def test_bad_thresholds_are_refused(data, thresholds, message):
    with pytest.raises(ValueError, match=message):
        validate(
            data["train_stats"], data["schema"], baseline=data["train_stats"], drift=thresholds
        )


def test_drift_without_baseline_is_refused(data):
    with pytest.raises(ValueError, match="no baseline_statistics"):
        validate(data["train_stats"], data["schema"], drift=DRIFT)


def write_inputs(data, tmp_path, validation: pa.Table) -> dict:
    dirs = {}
    for name, proto in (("statistics", stats(data, validation)), ("baseline", data["train_stats"])):
        (tmp_path / name).mkdir()
        (tmp_path / name / artifacts.STATISTICS_FILE).write_bytes(proto.SerializeToString())
        dirs[name] = str(tmp_path / name)
    artifacts.write_proto_text(str(tmp_path / "schema"), artifacts.SCHEMA_FILE, data["schema"])
    return {
        "statistics": ("system.Artifact", dirs["statistics"]),
        "baseline_statistics": ("system.Artifact", dirs["baseline"]),
        "schema": ("system.Artifact", str(tmp_path / "schema")),
    }


def run(tmp_path, inputs, params):
    doc = testing.executor_input(tmp_path / "out", params, OUTPUTS, inputs, ["valid"])
    return executor.launch(launcher.run, ["--executor_input", json.dumps(doc)])


def faulty(data) -> pa.Table:
    sex = data["validation"]["SEX"].to_pylist()
    sex[:3] = ["X"] * 3
    return replace(data["validation"], "SEX", pa.array(sex)).drop(["DIS"])


def test_launcher_outputs_valid_metrics_and_report(data, tmp_path):
    inputs = write_inputs(data, tmp_path, faulty(data))
    params = {"default_numeric_drift_threshold": 0.1, "default_categorical_drift_threshold": 0.1}
    assert run(tmp_path, inputs, params) == 0
    out = json.loads((tmp_path / "out" / "executor_output.json").read_text())
    assert out["parameterValues"]["valid"] is False
    assert (tmp_path / "out" / "valid").read_text() == "false"
    metrics = out["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert metrics["anomaly_count"] == 2 and "drift_AGEP" in metrics
    page = (tmp_path / "out" / "report").read_text()
    assert "DIS" in page and "SEX" in page and "2 anomalies" in page
    text = (tmp_path / "out" / "anomalies" / artifacts.ANOMALIES_FILE).read_text()
    assert set(text_format.Parse(text, anomalies_pb2.Anomalies()).anomaly_info) == {"DIS", "SEX"}


def test_launcher_clean_data_is_valid(data, tmp_path):
    assert run(tmp_path, write_inputs(data, tmp_path, data["validation"]), {}) == 0
    out = json.loads((tmp_path / "out" / "executor_output.json").read_text())
    assert out["parameterValues"]["valid"] is True


def test_fail_on_anomalies_lists_every_anomaly_and_writes_nothing(data, tmp_path, caplog):
    inputs = write_inputs(data, tmp_path, faulty(data))
    code = run(tmp_path, inputs, {"fail_on_anomalies": True})
    assert code == executor.EXIT_USER_ERROR
    assert "2 data anomalies" in caplog.text
    assert "  - DIS: Column dropped" in caplog.text and "  - SEX: " in caplog.text
    for name in ("anomalies", "report", "metrics", "valid", "executor_output.json"):
        assert not (tmp_path / "out" / name).exists()


def test_serving_data_without_the_label_passes_in_the_serving_environment(data):
    from kfpkit.tfdv.schema import exclude_from_serving

    schema = infer_schema(data["train_stats"])
    exclude_from_serving(schema, ["employed"])
    serving = stats(data, data["validation"].drop(["employed"]))
    assert anomaly_lines(validate(serving, schema, environment="SERVING")) == []
    assert reasons(validate(serving, schema)) == {"employed": {"SCHEMA_MISSING_COLUMN"}}
    assert (
        anomaly_lines(validate(stats(data, data["validation"]), schema, environment="TRAINING"))
        == []
    )
    with pytest.raises(ValueError, match="environment 'PROD' is not in the schema"):
        validate(serving, schema, environment="PROD")
