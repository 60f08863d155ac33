"""End to end: the training pipeline's exit handler records a failed run, naming the step,
in Docker through kfp.local on the emulator (a failure in the first step keeps it short)."""

from __future__ import annotations

import json

import pytest

from kfpkit import demo_data
from kfpkit.local_run import run_local

pytestmark = [pytest.mark.docker, pytest.mark.emulator]


def test_a_failed_run_records_which_step_failed_and_why(emulator, bq, dataset, tmp_path):
    table = f"{dataset}.employment_small"
    demo_data.load_into_bigquery(bq, demo_data.scaled_parquet(2000), table)
    project, ds = dataset.split(".")
    root = tmp_path / "root"
    with pytest.raises(RuntimeError, match="recorded outcome: FAILED, failed: bigquery-split"):
        run_local(
            "training",
            {
                "project": project,
                "source_table": table,
                "destination_dataset": ds,
                "bigquery_endpoint": emulator.endpoint,
                "serving_model_uri": str(root / "serving" / "employment"),
                "key_columns": ["no_such_column"],
            },
            root,
        )
    (path,) = root.glob("*/record-outcome/outcome/outcome.json")
    doc = json.loads(path.read_text())
    assert (doc["state"], doc["succeeded"]) == ("FAILED", False)
    assert doc["failed_steps"] == ["bigquery-split"]
    assert "no_such_column" in doc["step_errors"]["bigquery-split"]
    assert doc["finished_steps"] == []  # nothing after the split ran
    assert doc["pipeline_name"] == "kfpkit-training"
    assert doc["run_name"].startswith("kfpkit-training-")
