"""End to end: pipelines/continuous_training.py in Docker through kfp.local, on the emulator.

Three small windows of real demo rows, one run each, through kfpkit.continuous.run_window
(what `kfpkit run continuous_training --window` and `kfpkit replay` run): the first trains
the first model; the second holds the very same rows under new ids and another year, so
only id and year differ and nothing may retrain; the third has its ANC values forced
toward one value, so it must retrain for drift (and skew) on ANC. The decisions are read
from what the pipeline wrote: its state folder and its steps' outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from kfpkit import continuous, demo_data, images

pytestmark = [pytest.mark.docker, pytest.mark.emulator, pytest.mark.slow]
ROWS = 3000
FAST = {"tuning_trials": 0, "hyperparameters": {"epochs": 3}, "min_auc": 0.6,
        "max_auc_regression": 0.05}  # fmt: skip


@pytest.fixture(scope="module")
def image_present():
    import docker

    client = docker.from_env()
    for family in ("core", "tfdv", "train"):
        ref = images.image(family)
        assert client.images.list(name=ref), f"{ref} not built: run `make images`"


def _window(base: pa.Table, year: int, id_offset: int) -> pa.Table:
    ids = pa.array(np.arange(base.num_rows, dtype=np.int64) + id_offset)
    table = base.set_column(base.schema.get_field_index("id"), "id", ids)
    return table.set_column(table.schema.get_field_index("year"), "year",
                            pa.array([year] * base.num_rows, pa.int64()))  # fmt: skip


def _write(root: Path, window: str, table: pa.Table) -> None:
    data = continuous.layout(root)["data"]
    data.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, data / f"employment_{window}.parquet")  # run_window reads it


def test_retrains_on_first_and_drifted_windows_only(image_present, emulator, tmp_path):
    demo = pq.read_table(demo_data.demo_parquet())
    base = demo.filter(pc.equal(demo["year"], 2015)).slice(0, ROWS)
    root = tmp_path / "root"
    _write(root, "2015", _window(base, 2015, 0))
    _write(root, "2016", _window(base, 2016, 10_000_000))  # same rows: only id and year differ
    anc = base["ANC"].to_numpy(zero_copy_only=False).copy()
    anc[: ROWS // 2] = "4"  # half the rows forced to one ancestry code: L-infinity ~0.3+
    drifted = base.set_column(base.schema.get_field_index("ANC"), "ANC", pa.array(anc))
    _write(root, "2017", _window(drifted, 2017, 20_000_000))

    first = continuous.run_window(root, "2015", emulator, FAST)
    assert first.decision["retrain"] is True
    assert first.decision["reasons"] == ["no model in production"]
    assert {"register-model", "push-model", "record-production"} <= set(first.ran)
    assert (continuous.layout(root)["base"] / "registry" / "mlflow.db").is_file()
    assert first.serving_versions_after == [1]

    same = continuous.run_window(root, "2016", emulator, FAST)
    decision = same.decision
    assert decision["retrain"] is False
    assert decision["drifted"] == [] and decision["skewed"] == []
    assert decision["reasons"][0].startswith("not retrained: no feature drifted beyond")
    measured = {m["feature"] for m in decision["measured"]}
    assert "id" not in measured and "year" not in measured  # thresholds 0: never compared
    assert {"ANC", "AGEP", "SCHL"} <= measured
    # the same rows, split differently (new ids hash to other splits): sampling noise only
    assert max(m["value"] for m in decision["measured"]) < 0.02
    for step in ("tune", "train", "evaluate", "publish-model", "register-model", "push-model"):
        assert step in same.skipped
    assert same.serving_versions_after == [1]
    # the decision is also the decide step's artifact of the run
    out = json.loads((Path(same.run_dir) / "retrain-decision" / "executor_output.json").read_text())
    assert out["parameterValues"]["retrain"] is False

    moved = continuous.run_window(root, "2017", emulator, FAST)
    assert moved.decision["retrain"] is True
    assert [d["feature"] for d in moved.decision["drifted"]] == ["ANC"]
    assert moved.decision["drifted"][0]["value"] > 0.2
    assert moved.decision["reasons"][0].startswith("drift from window 2016: ANC ")
    assert [d["feature"] for d in moved.decision["skewed"]] == ["ANC"]
    assert "evaluate" in moved.ran
    assert moved.evaluation["baseline_auc"] > 0.5  # evaluated against the model in production
    state = json.loads(
        (continuous.layout(root)["state"] / "production" / "production.json").read_text()
    )
    if moved.serving_versions_after == [1, 2]:  # blessed: the 2017 model is in production
        assert state["window"] == "2017"
    else:
        assert state["window"] == "2015"
