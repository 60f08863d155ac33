"""tfdv_schema with real TFDV: inference, coded strings as categories, a user's schema as is."""

from __future__ import annotations

import json

import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from kfpkit import testing
from kfpkit.components.tfdv_schema import launcher
from kfpkit.runtime import executor
from kfpkit.testing import tfdv as tfdv_testing
from kfpkit.tfdv import artifacts
from kfpkit.tfdv.schema import infer_schema, summary_markdown

OUTPUTS = {"schema": "system.Artifact", "summary": "system.Markdown"}


@pytest.fixture(scope="module")
def stats_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("stats")
    stats = tfdv_testing.statistics_of(tfdv_testing.sample(), directory)
    (directory / artifacts.STATISTICS_FILE).write_bytes(stats.SerializeToString())
    return directory


def test_inferred_schema_types_presence_and_domains(stats_dir):
    stats = artifacts.load_statistics(str(stats_dir), "statistics")
    schema = infer_schema(stats)
    by_name = {f.name: f for f in schema.feature}
    assert by_name["AGEP"].type == schema_pb2.FLOAT
    assert by_name["year"].type == schema_pb2.INT
    assert by_name["AGEP"].presence.min_fraction == 1.0
    sex = by_name["SEX"]
    assert sex.type == schema_pb2.BYTES
    assert list(sex.string_domain.value) == ["1", "2"]  # codes kept as categories
    tfdv_ranges = infer_schema(stats, coded_strings_as_categories=False)
    assert {f.name: f for f in tfdv_ranges.feature}["SEX"].WhichOneof("domain_info") == "int_domain"


def test_summary_lists_every_feature(stats_dir):
    schema = infer_schema(artifacts.load_statistics(str(stats_dir), "statistics"))
    text = summary_markdown(schema, "inferred")
    assert text.count("\n| ") == len(schema.feature) + 2  # header, rule, one row each
    assert "| SEX | BYTES | required |" in text


def run(tmp_path, inputs, params=None):
    doc = testing.executor_input(tmp_path / "out", params or {}, OUTPUTS, inputs=inputs)
    return executor.launch(launcher.run, ["--executor_input", json.dumps(doc)])


def test_launcher_infers_and_writes_schema_and_summary(tmp_path, stats_dir):
    assert run(tmp_path, {"statistics": ("system.Artifact", str(stats_dir))}) == 0
    schema = artifacts.load_schema(str(tmp_path / "out" / "schema"), "schema")
    assert len(schema.feature) == 19
    assert "# Schema (inferred from" in (tmp_path / "out" / "summary").read_text()


def test_user_schema_is_used_as_is(tmp_path, stats_dir):
    given = schema_pb2.Schema()
    text_format.Parse(
        'feature { name: "AGEP" type: FLOAT presence { min_fraction: 1 } '
        "float_domain { min: 16 max: 94 } }",
        given,
    )
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "schema.pbtxt").write_text(text_format.MessageToString(given))
    inputs = {
        "statistics": ("system.Artifact", str(stats_dir)),
        "user_schema": ("system.Artifact", str(tmp_path / "mine" / "schema.pbtxt")),
    }
    assert run(tmp_path, inputs) == 0
    assert artifacts.load_schema(str(tmp_path / "out" / "schema"), "schema") == given
    out = json.loads((tmp_path / "out" / "executor_output.json").read_text())
    assert out["artifacts"]["schema"]["artifacts"][0]["metadata"]["origin"] == "given"


@pytest.mark.parametrize(
    "text, message",
    [("feature { name: 'a' type: NOPE }", "is not a TFDV schema text proto"),
     ("not a proto at all {", "is not a TFDV schema text proto"),
     ("", "declares no features")],
)  # fmt: skip
def test_bad_user_schema_fails_clearly_and_writes_nothing(tmp_path, text, message, caplog):
    (tmp_path / "schema.pbtxt").write_text(text)
    inputs = {"user_schema": ("system.Artifact", str(tmp_path / "schema.pbtxt"))}
    assert run(tmp_path, inputs) == executor.EXIT_USER_ERROR
    assert message in caplog.text and "schema.pbtxt" in caplog.text
    assert not (tmp_path / "out" / "schema").exists()
    assert not (tmp_path / "out" / "executor_output.json").exists()


def test_no_input_is_a_user_error(tmp_path):
    assert run(tmp_path, {}) == executor.EXIT_USER_ERROR


def test_statistics_that_are_not_a_proto(tmp_path):
    (tmp_path / artifacts.STATISTICS_FILE).write_bytes(b"\xff\xfe not a proto")
    assert run(tmp_path, {"statistics": ("system.Artifact", str(tmp_path))}) == 2


def test_serving_excluded_features_declare_environments(tmp_path, stats_dir):
    params = {"serving_excluded_features": ["employed"]}
    assert run(tmp_path, {"statistics": ("system.Artifact", str(stats_dir))}, params) == 0
    schema = artifacts.load_schema(str(tmp_path / "out" / "schema"), "schema")
    assert list(schema.default_environment) == ["TRAINING", "SERVING"]
    label = {f.name: f for f in schema.feature}["employed"]
    assert list(label.not_in_environment) == ["SERVING"]
    assert "Not expected in SERVING: employed." in (tmp_path / "out" / "summary").read_text()


def test_serving_excluded_features_are_checked(tmp_path, stats_dir, caplog):
    inputs = {"statistics": ("system.Artifact", str(stats_dir))}
    assert run(tmp_path, inputs, {"serving_excluded_features": ["nope"]}) == 2
    assert "['nope'] are not features of the schema" in caplog.text
