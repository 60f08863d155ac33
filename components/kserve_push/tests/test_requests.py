"""Request decoding and validation of the local server, without a server (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from kfpkit.serving import requests
from kfpkit.serving.requests import BadRequest
from kfpkit.tabular import CATEGORICAL, NUMERIC, FeatureSpec

SPECS = [FeatureSpec("AGEP", NUMERIC), FeatureSpec("SEX", CATEGORICAL)]


class Tensor:
    def __init__(self, name, datatype, shape, data):
        self.name, self.datatype, self.shape, self.data = name, datatype, shape, data


def test_v1_rows_become_typed_columns_with_nulls_as_missing():
    decoded = requests.decode_v1(
        {"instances": [{"AGEP": 30, "SEX": "1"}, {"AGEP": None, "SEX": None},
                       {"AGEP": 41.5, "SEX": "2"}]}, SPECS, 10)  # fmt: skip
    assert decoded.rows == 3
    np.testing.assert_array_equal(decoded.features["AGEP"], np.array([30, np.nan, 41.5], "f4"))
    assert decoded.features["AGEP"].dtype == np.float32
    assert decoded.features["SEX"].tolist() == ["1", "", "2"]


def test_v2_flat_and_nested_data_and_both_shapes():
    flat = [Tensor("AGEP", "FP32", [2], [30, 40]), Tensor("SEX", "BYTES", [2], ["1", "2"])]
    nested = [Tensor("AGEP", "INT64", [2, 1], [[30], [40]]),
              Tensor("SEX", "BYTES", [2, 1], [["1"], ["2"]])]  # fmt: skip
    for inputs in (flat, nested):
        decoded = requests.decode_v2(inputs, SPECS, 10)
        assert decoded.features["AGEP"].tolist() == [30.0, 40.0]
        assert decoded.features["SEX"].tolist() == ["1", "2"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1, True], "got bool True"),
        ([True, False], "got bool True"),
        ([1, "2"], "got str '2'"),
        ([10**40], "not a finite 32-bit float"),
        ([1, 10**400], "instance 1: .* is not a finite 32-bit float"),
        ([1e300], "not a finite 32-bit float"),
        ([[1, 2]], "got list"),
    ],
)
def test_numbers_are_refused_unless_plain_finite_numbers(values, message):
    with pytest.raises(BadRequest, match=message):
        requests.decode_v1({"instances": [{"AGEP": v, "SEX": "1"} for v in values]}, SPECS, 10)


def test_categories_must_be_strings():
    with pytest.raises(BadRequest, match="'SEX' instance 1: expected a string"):
        requests.decode_v1({"instances": [{"AGEP": 1, "SEX": "1"}, {"AGEP": 1, "SEX": 2}]},
                           SPECS, 10)  # fmt: skip


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([Tensor("AGEP", "FP32", [1], [1])], r"lacks feature\(s\) \['SEX'\]"),
        ([Tensor("AGEP", "FP32", [1], [1]), Tensor("AGEP", "FP32", [1], [1])], "given twice"),
        ([Tensor("AGEP", "BOOL", [1], [True]), Tensor("SEX", "BYTES", [1], ["1"])], "datatype"),
        ([Tensor("AGEP", "FP32", [1, 2], [1, 2]), Tensor("SEX", "BYTES", [1], ["1"])],
         r"not \[rows\] or \[rows, 1\]"),
        ([Tensor("AGEP", "FP32", [2], [1, 2]), Tensor("SEX", "BYTES", [1], ["1"])],
         "has 1 rows, other inputs have 2"),
        ([Tensor("AGEP", "FP32", [0], []), Tensor("SEX", "BYTES", [0], [])], "is empty"),
        ([Tensor("AGEP", "FP32", [11], [1] * 11), Tensor("SEX", "BYTES", [11], ["1"] * 11)],
         "at most 10"),
    ],
)  # fmt: skip
def test_bad_v2_requests_name_the_problem(inputs, message):
    with pytest.raises(BadRequest, match=message):
        requests.decode_v2(inputs, SPECS, 10)
