"""Schema reading through tensorflow_metadata's proto, on a schema TFDV wrote and on edge cases."""

from pathlib import Path

import pytest

from kfpkit.tabular import CATEGORICAL, NUMERIC, FeatureSpec
from kfpkit.training.schema import load_schema_features, parse_schema, schema_features

DATA = Path(__file__).parent / "data"


def test_reads_a_schema_written_by_tfdv():
    """TFDV 1.16.1 (tensorflow_metadata 1.16, tfdv image) wrote it; 1.21 reads it here."""
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
    schema = parse_schema(EDGE_CASES)
    assert list(schema.string_domain[0].value) == ["1", "2"]
    assert list(schema.default_environment) == ["TRAINING", "SERVING"]
    assert schema.feature[1].domain == "café"  # octal-escaped UTF-8
    features = schema_features(schema)
    assert "old" not in features  # deprecated features are not trained on
    assert features["year"].spec() == FeatureSpec("year", CATEGORICAL, required=False)
    assert features["city"].spec() == FeatureSpec("city", CATEGORICAL, required=False)
    assert features["score"].spec() == FeatureSpec("score", NUMERIC, required=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # protobuf's own errors, with line:column
        ('feature { name: "a" type: BYTES', r'1:27 : Expected "}"'),
        ("feature { name: @ }", r"1:17 : .*Expected string"),
        (
            'feature { name: "a" colour: "red" }',
            r'1:21 : .*"tensorflow.metadata.v0.Feature" '
            r'has no field named "colour"',
        ),  # fmt: skip
        (
            'feature { name: "a" type: TEXT }',
            r'Enum type "tensorflow.metadata.v0.FeatureType" '
            r"has no value named TEXT",
        ),  # fmt: skip
        ('feature { name: "a" presence { min_fraction: "x" } }', r"1:46 : .*Couldn't parse float"),
    ],
)
def test_malformed_schema_fails_as_the_proto_says(tmp_path, text, message):
    file = tmp_path / "schema.pbtxt"
    file.write_text(text)
    with pytest.raises(ValueError, match=message) as caught:
        load_schema_features(str(tmp_path))
    assert str(file) in str(caught.value)  # the file is named
    assert "not a valid tensorflow_metadata Schema text proto" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("feature { type: INT }", "a feature without a name"),
        ('string_domain { name: "x" }', "declares no trainable features"),
    ],
)
def test_valid_schema_unfit_for_training_is_a_value_error(text, message):
    with pytest.raises(ValueError, match=message):
        schema_features(parse_schema(text))


def test_struct_features_are_refused_when_used():
    feature = schema_features(parse_schema('feature { name: "s" type: STRUCT }'))["s"]
    with pytest.raises(ValueError, match="'s' has type STRUCT"):
        feature.spec()
