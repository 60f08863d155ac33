"""Numeric slice columns cut into bands: the labels and the refused edges."""

import numpy as np
import pyarrow as pa
import pytest

from kfpkit.components.evaluate import bands


def test_each_band_holds_its_lower_edge_and_nulls_are_missing():
    ages = np.array([10, 25, 44.9, 45, 65, 70, np.nan])
    got = bands.slice_labels(ages, bands.check_bins({"AGEP": [25, 45, 65]})["AGEP"])
    assert got.tolist() == ["<25", "25-45", "25-45", "45-65", ">=65", ">=65", "missing"]
    assert bands.band_names([0.5, 2]) == ["<0.5", "0.5-2", ">=2", "missing"]
    # without edges a value is its own slice, as text
    assert bands.slice_labels(np.array([1, 2, 1])).tolist() == ["1", "2", "1"]


@pytest.mark.parametrize(
    ("bins", "message"),
    [
        ({"AGEP": []}, r"slice_bins\['AGEP'\]: the edges must be a non-empty list"),
        ({"AGEP": 25}, r"slice_bins\['AGEP'\]: the edges must be a non-empty list"),
        ({"AGEP": [45, 25]}, r"slice_bins\['AGEP'\]: the edges \[45, 25\] are not strictly"),
        ({"AGEP": [25, 25]}, r"slice_bins\['AGEP'\]: the edges \[25, 25\] are not strictly"),
        ({"AGEP": [25, "45"]}, r"slice_bins\['AGEP'\]: the edges \[25, '45'\] are not all"),
        ({"AGEP": [True]}, "are not all numbers"),
        ({"AGEP": [float("nan")]}, "are not all numbers"),
        (["AGEP"], "slice_bins must be a dict"),
    ],
)
def test_bad_edges_are_named(bins, message):
    with pytest.raises(ValueError, match=message):
        bands.check_bins(bins)


def test_a_text_column_cannot_be_banded():
    bands.check_numeric("AGEP", pa.float64())
    bands.check_numeric("year", pa.int32())
    with pytest.raises(ValueError, match=r"slice_bins: column 'SEX' is string, not numeric"):
        bands.check_numeric("SEX", pa.string())
