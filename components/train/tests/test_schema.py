"""The schema text-proto reader, on a schema TFDV wrote and on hand-made edge cases."""

from pathlib import Path

import pytest

from kfpkit.components._runtime.tabular import CATEGORICAL, NUMERIC, FeatureSpec
from kfpkit.components.train.schema_text import (
    load_schema_features,
    parse_text_proto,
    schema_features,
)

DATA = Path(__file__).parent / "data"


def test_reads_a_schema_written_by_tfdv():
    features = load_schema_features(str(DATA / "schema.pbtxt"))
    assert len(features) == 19
    assert features["AGEP"].spec() == FeatureSpec("AGEP", NUMERIC, required=True)
    # TFDV marks numeric-looking string codes BYTES with an int_domain: still categorical
    assert features["SCHL"].spec() == FeatureSpec("SCHL", CATEGORICAL, required=True)
    assert features["year"].spec().kind == NUMERIC


def test_accepts_the_artifact_directory(tmp_path):
    (tmp_path / "schema.pbtxt").write_text((DATA / "schema.pbtxt").read_text())
    assert "SEX" in load_schema_features(str(tmp_path))


def test_missing_schema_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="no schema.pbtxt"):
        load_schema_features(str(tmp_path))


EDGE_CASES = r"""
# a comment
string_domain { name: "SEX" value: "1" value: "2" }
feature {
  name: "year"
  type: INT
  int_domain { min: 2015 max: 2018 is_categorical: true }
  presence { min_fraction: 0.5 }
}
feature < name: 'city' type: BYTES domain: "caf\303\251" >
feature { name: "old" type: FLOAT lifecycle_stage: DEPRECATED }
feature { name: "score" type: FLOAT; presence { min_fraction: 1 min_count: 1 } }
default_environment: ["TRAINING", "SERVING"]
"""


def test_edge_cases_of_the_text_format():
    parsed = parse_text_proto(EDGE_CASES)
    assert parsed["string_domain"][0]["value"] == ["1", "2"]
    assert parsed["default_environment"] == ["TRAINING", "SERVING"]
    assert parsed["feature"][1]["domain"] == ["café"]  # octal-escaped UTF-8
    features = schema_features(EDGE_CASES)
    assert "old" not in features  # deprecated features are not trained on
    assert features["year"].spec() == FeatureSpec("year", CATEGORICAL, required=False)
    assert features["city"].spec() == FeatureSpec("city", CATEGORICAL, required=False)
    assert features["score"].spec() == FeatureSpec("score", NUMERIC, required=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('feature { name: "a" type: BYTES', "missing '}'"),
        ("feature { name: @ }", "unexpected character '@' on line 1"),
        ("feature { type: INT }", "a feature without a name"),
        ('string_domain { name: "x" }', "declares no trainable features"),
    ],
)
def test_bad_text_is_a_value_error(text, message):
    with pytest.raises(ValueError, match=message):
        schema_features(text)


def test_struct_features_are_refused_when_used():
    feature = schema_features('feature { name: "s" type: STRUCT }')["s"]
    with pytest.raises(ValueError, match="'s' has type STRUCT"):
        feature.spec()
