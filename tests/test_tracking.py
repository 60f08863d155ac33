"""Experiment tracking on a real MLflow SQLite store (the registry's): local runs recorded from
their run folders (KFP's executor outputs), compared side by side, and a registered model's
lineage back to its run."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from kfpkit import cli
from kfpkit.local_run import _track
from kfpkit.registry import open_registry
from kfpkit.tracking import ABSENT, comparison, open_tracker
from kfpkit.tracking.base import clean_key
from kfpkit.tracking.local import record_local_run, run_record


def artifact(uri: str, schema: str, metadata: dict[str, Any]) -> dict[str, Any]:
    return {"artifacts": [{"uri": uri, "metadata": metadata, "type": {"schemaTitle": schema}}]}


def write_step(run_dir: Path, task: str, params: dict[str, Any], artifacts: dict) -> None:
    """A finished step as kfp.local leaves it: <run>/<task>/executor_output.json."""
    folder = run_dir / task
    folder.mkdir(parents=True)
    doc = {"parameterValues": params, "artifacts": artifacts}
    (folder / "executor_output.json").write_text(json.dumps(doc))


def training_run(root: Path, name: str, auc: float, learning_rate: float) -> Path:
    run_dir = root / name
    write_step(run_dir, "evaluate", {"blessed": True}, {
        "metrics": artifact(f"{run_dir}/evaluate/metrics", "system.Metrics",
                            {"auc": auc, "accuracy": 0.82, "SEX=1/auc": auc + 0.01,
                             "blessed": True, "blessing_metric": "auc"}),
    })  # fmt: skip
    write_step(run_dir, "train", {}, {
        "model": artifact(f"{run_dir}/train/model", "system.Model",
                          {"hyperparameters": {"learning_rate": learning_rate,
                                               "hidden_units": [128, 64]}}),
        "metrics": artifact(f"{run_dir}/train/metrics", "system.Metrics", {"train_auc": 0.91}),
    })  # fmt: skip
    return run_dir


def test_a_run_folder_becomes_params_metrics_and_artifact_uris(tmp_path: Path) -> None:
    run_dir = training_run(tmp_path, "kfpkit-training-1", 0.9033, 0.002)
    record = run_record("kfpkit-training", run_dir, {"tuning_trials": 3, "key_columns": ["id"]},
                        None, "FINISHED", 12.5)  # fmt: skip
    assert record.params == {
        "tuning_trials": "3",
        "key_columns": '["id"]',
        "evaluate/blessed": "true",
        "train/hyperparameters/learning_rate": "0.002",
        "train/hyperparameters/hidden_units": "[128, 64]",
    }
    # numbers only, each under its step; a slice's '=' is a ':' (MLflow refuses '=')
    assert record.metrics == {
        "evaluate/auc": 0.9033,
        "evaluate/accuracy": 0.82,
        "evaluate/SEX:1/auc": pytest.approx(0.9133),
        "train/train_auc": 0.91,
        "run/seconds": 12.5,
    }
    assert record.artifacts == {
        "evaluate/metrics": f"{run_dir}/evaluate/metrics",
        "train/model": f"{run_dir}/train/model",
        "train/metrics": f"{run_dir}/train/metrics",
    }
    assert clean_key("a b=c/d'e") == "a b:c/d_e" and clean_key("/x//y") == "x/y"


def test_runs_and_models_share_one_sqlite_and_compare_shows_absent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "registry" / "mlflow.db"
    registry = open_registry("mlflow", registry_uri=str(db))
    registry.register("employment", str(tmp_path / "model"), {"pipeline_run": "kfpkit-training-1"},
                      {"auc": 0.9033}, ["champion"])  # fmt: skip
    now = time.time()
    first = training_run(tmp_path, "kfpkit-training-1", 0.9033, 0.002)
    recorded = record_local_run(str(db), run_record(
        "kfpkit-training", first, {"tuning_trials": 3}, None, "FINISHED", 100.0), now - 100, now,
        first)  # fmt: skip
    assert recorded is not None and recorded.status == "FINISHED"
    # a run of another pipeline, which failed: other parameters, other metrics
    other = tmp_path / "kfpkit-monitoring-1"
    write_step(other, "monitor", {}, {"report": artifact(f"{other}/monitor/report",
               "system.Metrics", {"drift_max": 0.04})})  # fmt: skip
    failed = record_local_run(str(db), run_record("kfpkit-monitoring", other, {"window": "2017"},
                              None, "FAILED"), now, now, other)  # fmt: skip
    assert failed is not None and failed.status == "FAILED"

    # recording the same run again finds the first record
    again = record_local_run(str(db), run_record("kfpkit-training", first, {}, None, "FINISHED"),
                             now, now, first)  # fmt: skip
    assert again is not None and again.run_id == recorded.run_id

    # one database file holds the runs and the registered models (what `mlflow ui` shows)
    with sqlite3.connect(db) as connection:
        runs = connection.execute("select name, status from runs order by name").fetchall()
        models = connection.execute("select name from registered_models").fetchall()
    assert runs == [("kfpkit-monitoring-1", "FAILED"), ("kfpkit-training-1", "FINISHED")]
    assert models == [("employment",)]

    tracker = open_tracker("mlflow", tracking_uri=str(db))
    by_name, by_id = tracker.get("kfpkit-training-1"), tracker.get(failed.run_id)
    assert by_name.run_id == recorded.run_id and by_name.experiment == "kfpkit-training"
    assert by_id.name == "kfpkit-monitoring-1" and by_id.pipeline == "kfpkit-monitoring"
    table = comparison([by_name, by_id])
    params = {row[0]: row[1:] for row in table["parameters"]}
    assert params["tuning_trials"] == ["3", ABSENT] and params["window"] == [ABSENT, "2017"]
    metrics = {row[0]: row[1:] for row in table["metrics"]}
    assert metrics["evaluate/auc"] == ["0.9033", ABSENT]
    assert metrics["monitor/drift_max"] == [ABSENT, "0.04"]

    code = cli.main(["runs", "compare", "kfpkit-training-1", failed.run_id,
                     "--tracking-uri", str(db)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert lines["status"] == ["FINISHED", "FAILED"]
    assert lines["tuning_trials"] == ["3", ABSENT] and lines["window"] == [ABSENT, "2017"]
    assert lines["evaluate/auc"] == ["0.9033", ABSENT]


def test_compare_names_an_unknown_run_and_a_missing_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "mlflow.db"
    run_dir = training_run(tmp_path, "kfpkit-training-7", 0.9, 0.001)
    record_local_run(str(db), run_record("kfpkit-training", run_dir, {}, None, "FINISHED"), 0, 1,
                     run_dir)  # fmt: skip
    assert cli.main(["runs", "compare", "kfpkit-training-8", "--tracking-uri", str(db)]) == 2
    err = capsys.readouterr().err
    assert "no run 'kfpkit-training-8'" in err and "kfpkit-training-7" in err
    assert cli.main(["runs", "compare", "bad'name", "--tracking-uri", str(db)]) == 2
    assert "no run \"bad'name\"" in capsys.readouterr().err  # never put into a query
    assert cli.main(["runs"]) == 2  # listing needs a cluster
    assert "--target kubeflow or vertex" in capsys.readouterr().err


def test_the_local_runner_records_a_run_with_the_pipelines_defaults(tmp_path: Path) -> None:
    """What ``run_local`` does after a run: the pipeline's declared inputs (given or default)
    and its steps, into the registry's store under the pipeline root; a folder a step made
    beside the run (registry/, serving/) is not a run."""
    run_dir = training_run(tmp_path, "kfpkit-training-2026-12-03-04-00-00-000001", 0.9, 0.003)
    arguments = {"source_table": "p.d.t", "serving_model_uri": "/m", "tuning_trials": 0}
    _track("training", arguments, run_dir, None, "KILLED", time.time(), "nightly")
    (tmp_path / "serving").mkdir()
    _track("training", arguments, tmp_path / "serving", None, "FAILED", time.time(), "")
    tracker = open_tracker("mlflow", tracking_uri=str(tmp_path / "registry" / "mlflow.db"))
    run = tracker.get(run_dir.name)
    assert run.status == "KILLED" and run.experiment == "nightly"
    assert run.params["tuning_trials"] == "0" and run.params["source_table"] == "p.d.t"
    assert run.params["min_auc"] == "0.8"  # the pipeline's default, recorded too
    assert run.params["train/hyperparameters/learning_rate"] == "0.003"
    with pytest.raises(ValueError, match="no run 'serving'"):
        tracker.get("serving")


def test_models_lineage_from_the_registry_and_the_tracked_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "registry" / "mlflow.db"
    run_dir = training_run(tmp_path, "kfpkit-continuous-training-9", 0.9033, 0.002)
    record_local_run(str(db), run_record("kfpkit-continuous-training", run_dir,
                     {"window": "2016", "source_table": "p.demo.employment_2016"}, None,
                     "FINISHED"), 0, 1, run_dir)  # fmt: skip
    registry = open_registry("mlflow", registry_uri=str(db))
    lineage = {"pipeline_run": run_dir.name, "pipeline_run_id": "42",
               "train_data_uri": f"{run_dir}/split/train", "train_data_rows": 221973,
               "train_data_source": "p.demo.employment_2016",
               "statistics_uri": f"{run_dir}/validate/train_statistics",
               "schema_uri": f"{run_dir}/validate/schema", "blessed": True,
               "metrics_uri": f"{run_dir}/evaluate/metrics",
               "hyperparameters": json.dumps({"learning_rate": 0.002})}  # fmt: skip
    registry.register("employment", str(tmp_path / "m1"), lineage, {"auc": 0.9033}, ["champion"])
    registry.register("employment", str(tmp_path / "m2"), {"pipeline_run": "gone"}, {"auc": 0.8},
                      ["challenger"])  # fmt: skip

    assert cli.main(["models", "lineage", "employment", "--registry-uri", str(db), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)  # no version: the champion
    assert doc["model"]["version"] == "1" and doc["model"]["aliases"] == ["champion"]
    assert doc["run"]["name"] == run_dir.name and doc["run"]["id"] == "42"
    assert doc["run"]["tracked"]["parameters"] == {"window": "2016",
                                                   "source_table": "p.demo.employment_2016"}
    assert doc["data"]["source"] == "p.demo.employment_2016"
    assert doc["data"]["train_rows"] == "221973"
    assert doc["statistics"]["statistics_uri"] == f"{run_dir}/validate/train_statistics"
    assert doc["hyperparameters"] == {"learning_rate": 0.002}
    assert doc["evaluation"] == {"blessed": "true", "metrics_uri": f"{run_dir}/evaluate/metrics",
                                 "metrics": {"auc": 0.9033}}  # fmt: skip

    # a version whose run is not tracked here: the registry's record alone, said plainly
    assert cli.main(["models", "lineage", "employment:2", "--registry-uri", str(db)]) == 0
    out = capsys.readouterr().out
    assert "model employment version 2 (challenger)" in out and "run: gone" in out
    assert "hyperparameters: -" in out and "tracked" not in out

    assert cli.main(["models", "lineage", "employment:3", "--registry-uri", str(db)]) == 2
    assert "has no version '3' (versions: 1, 2)" in capsys.readouterr().err
    assert cli.main(["models", "lineage", "nobody", "--registry-uri", str(db)]) == 2
    assert "model 'nobody' has no registered version" in capsys.readouterr().err
    assert cli.main(["models", "lineage", "employment", "--registry-uri", str(tmp_path / "x")]) == 2
    assert "no registry at" in capsys.readouterr().err
