"""The out-of-domain flag of served rows: a real schema text proto (tensorflow_metadata's own
parser) and batches decoded by the server's own request decoder."""

from __future__ import annotations

import numpy as np
import pytest

from kfpkit.serving.domain import Domain, DomainCheck, load_domains
from kfpkit.serving.requests import decode_v1
from kfpkit.tabular import CATEGORICAL, NUMERIC, FeatureSpec

SCHEMA = """
feature { name: "AGEP" type: FLOAT float_domain { min: 0 max: 99 } }
feature { name: "WKHP" type: INT int_domain { min: 1 max: 99 } }
feature { name: "SEX" type: BYTES string_domain { value: "1" value: "2" } }
feature { name: "COW" type: BYTES domain: "cow_codes" }
feature { name: "SCHL" type: BYTES int_domain { min: 1 max: 24 } }
feature { name: "RELP" type: BYTES int_domain { } }
feature { name: "PINCP" type: FLOAT }
feature { name: "label" type: INT int_domain { min: 0 max: 1 } }
string_domain { name: "cow_codes" value: "1" value: "2" value: "3" }
"""
SPECS = [
    FeatureSpec("AGEP", NUMERIC),
    FeatureSpec("WKHP", NUMERIC),
    FeatureSpec("SEX", CATEGORICAL),
    FeatureSpec("COW", CATEGORICAL),
    FeatureSpec("SCHL", CATEGORICAL),
    FeatureSpec("RELP", CATEGORICAL),
    FeatureSpec("PINCP", NUMERIC),
]
IN_DOMAIN = {"AGEP": 30.0, "WKHP": 40, "SEX": "1", "COW": "3", "SCHL": "21", "RELP": "07",
             "PINCP": -1e9}  # fmt: skip


@pytest.fixture()
def domains(tmp_path):
    (tmp_path / "schema.pbtxt").write_text(SCHEMA)
    return load_domains(str(tmp_path))


def flags(domains, *rows):
    decoded = decode_v1({"instances": [IN_DOMAIN | r for r in rows]}, SPECS, 100)
    return DomainCheck(domains, [s.name for s in SPECS]).flags(decoded.features, decoded.rows)


def test_in_domain_rows_are_not_flagged(domains):
    assert flags(domains, {}, {"AGEP": 0.0}, {"AGEP": 99}, {"WKHP": 1.0}) == ["", "", "", ""]


def test_each_kind_of_domain_flags_the_value_outside_it(domains):
    assert flags(
        domains,
        {"AGEP": -5},  # float_domain min
        {"AGEP": 99.5},  # float_domain max
        {"WKHP": 0},  # int_domain min
        {"WKHP": 40.5},  # not a whole number
        {"SEX": "3"},  # string_domain
        {"COW": "9"},  # named string_domain
        {"SCHL": "25"},  # coded string above int_domain max
        {"SCHL": "abc"},  # not a whole number as text
        {"RELP": "x1"},  # int_domain without bounds: still whole numbers only
    ) == ["AGEP", "AGEP", "WKHP", "WKHP", "SEX", "COW", "SCHL", "SCHL", "RELP"]


def test_a_row_names_every_feature_outside_in_feature_order(domains):
    assert flags(domains, {"SEX": "0", "AGEP": -5, "SCHL": "0"}) == ["AGEP,SEX,SCHL"]


def test_missing_values_and_features_without_domain_are_never_flagged(domains):
    missing = {"AGEP": None, "WKHP": None, "SEX": None, "COW": None, "SCHL": None, "RELP": None}
    assert flags(domains, missing, {"PINCP": 1e30}) == ["", ""]
    assert "PINCP" not in domains  # no domain


def test_float32_values_at_a_decimal_bound_are_inside():
    bound = Domain(minimum=0.1, maximum=0.3)
    column = np.array([0.1, 0.3, 0.30001, 0.09999], dtype=np.float32)
    assert bound.outside(column).tolist() == [False, False, True, True]


def test_a_schema_without_domains_flags_nothing(tmp_path):
    (tmp_path / "schema.pbtxt").write_text('feature { name: "AGEP" type: FLOAT }')
    domains = load_domains(str(tmp_path / "schema.pbtxt"))
    assert domains == {}
    check = DomainCheck(domains, ["AGEP"])
    assert not check and check.flags({"AGEP": np.array([-5.0], dtype=np.float32)}, 1) == [""]


def test_a_bad_schema_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no schema.pbtxt"):
        load_domains(str(tmp_path))
    (tmp_path / "schema.pbtxt").write_text("feature { nme: 1 }")
    with pytest.raises(ValueError, match="schema.pbtxt.*not a valid tensorflow_metadata Schema"):
        load_domains(str(tmp_path))
