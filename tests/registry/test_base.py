"""The shared checks: label sanitising, metrics from an evaluation, the version's metadata."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from kfpkit.registry.base import (
    ModelVersion,
    check_lineage,
    label_value,
    registration_key,
    scalar_metrics,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("kfpkit-training-2026", "kfpkit-training-2026"),
        ("Run 01: A/B", "run-01-a-b"),
        ("gs://bucket/x_y", "gs-bucket-x_y"),
        ("한국어", ""),
        ("--x--", "x"),
    ],
)
def test_label_values(text, expected):
    assert label_value(text) == expected


def test_long_label_values_stay_distinct_and_valid():
    a, b = label_value("p" * 80 + "a"), label_value("p" * 80 + "b")
    assert a != b and len(a) == len(b) == 63
    assert all(re.fullmatch(r"[a-z0-9_-]{1,63}", v) for v in (a, b))


def test_scalar_metrics_keep_the_overall_numbers():
    meta = {
        "auc": 0.9,
        "count": 10,
        "blessed": True,
        "SEX=1/auc": 0.8,
        "note": "x",
        "baseline_auc": 0.89,
        "bad": float("inf"),
    }
    assert scalar_metrics(meta) == {"auc": 0.9, "count": 10.0, "baseline_auc": 0.89}


def test_lineage_values_are_strings_and_empty_ones_dropped():
    assert check_lineage({"blessed": False, "a": "", "b": None, "c": 3}) == {
        "blessed": "false",
        "c": "3",
    }


def test_the_registration_key_follows_model_uri_and_run():
    key = registration_key("m", "gs://b/1", {"pipeline_run_id": "r1"})
    assert key == registration_key("m", "gs://b/1", {"pipeline_run_id": "r1", "x": "y"})
    assert key != registration_key("m", "gs://b/1", {"pipeline_run_id": "r2"})
    assert key != registration_key("m", "gs://b/2", {"pipeline_run_id": "r1"})


def test_metadata_round_trip():
    version = ModelVersion(
        "m",
        "3",
        "gs://b/3",
        ("champion",),
        datetime(2026, 12, 1, 20, 0, tzinfo=UTC),
        {"a": "b"},
        {"auc": 0.9},
        "mlflow",
        "models:/m/3",
    )
    assert ModelVersion.from_metadata(version.to_metadata()) == version
    assert version.age_seconds(datetime(2026, 12, 2, 20, 0, tzinfo=UTC)) == 86400
