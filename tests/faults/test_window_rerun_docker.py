"""End to end: continuous_training run twice on one window in Docker through kfp.local, on the
emulator (what `kfpkit run continuous_training --window 2015` runs): the re-run, even with a
model-age limit of one window, trains nothing and registers no second version."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from kfpkit import continuous, demo_data, images

pytestmark = [pytest.mark.docker, pytest.mark.emulator, pytest.mark.slow]
ROWS = 3000
FAST = {"tuning_trials": 0, "hyperparameters": {"epochs": 2}, "min_auc": 0.6,
        "max_auc_regression": 0.05}  # fmt: skip


def _registered_versions(root: Path) -> list[str]:
    from mlflow import MlflowClient

    uri = f"sqlite:///{continuous.layout(root)['base'] / 'registry' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return sorted(str(v.version) for v in client.search_model_versions())


def test_rerunning_the_production_window_registers_no_second_version(emulator, tmp_path):
    import docker

    client = docker.from_env()
    for family in ("core", "tfdv", "train"):
        assert client.images.list(name=images.image(family)), "run `make images`"
    demo = pq.read_table(demo_data.demo_parquet())
    root = tmp_path / "root"
    data = continuous.layout(root)["data"]
    data.mkdir(parents=True)
    rows = demo.filter(pc.equal(demo["year"], 2015)).slice(0, ROWS)
    pq.write_table(rows, data / "employment_2015.parquet")  # run_window reads it

    first = continuous.run_window(root, "2015", emulator, FAST)
    assert first.decision["retrain"] is True and first.serving_versions_after == [1]
    versions = _registered_versions(root)
    assert versions == ["1"]

    again = continuous.run_window(root, "2015", emulator, {**FAST, "max_model_age_windows": 1})
    decision = again.decision
    assert decision["retrain"] is False, decision["reasons"]
    assert decision["model_age_windows"] == 0
    # was 1 (>= the limit: retrained on the same rows); a model's own window is age 0
    assert "model age 0 windows < max_model_age_windows 1" in decision["reasons"][0]
    assert {"train", "register-model", "push-model"} <= set(again.skipped)
    assert again.serving_versions_after == [1]
    assert _registered_versions(root) == versions  # no version 2, the champion unmoved
