"""End to end: pipelines/training.py in Docker through kfp.local, on the emulator, demo data.

Needs a running Docker engine and the images (`make images`); `make test` provides both.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kfpkit import demo_data, images
from kfpkit.components.bigquery_split import sql
from kfpkit.components.bigquery_split.reference import bucket
from kfpkit.local_run import run_local, summary

pytestmark = [pytest.mark.docker, pytest.mark.emulator]


@pytest.fixture(scope="module")
def image_present():
    import docker

    client = docker.from_env()
    for family in ("core", "tfdv", "train"):
        ref = images.image(family)
        assert client.images.list(name=ref), f"{ref} not built: run `make images`"


def test_training_pipeline_splits_the_demo_data(image_present, emulator, bq, dataset, tmp_path):
    table = f"{dataset}.employment"
    assert demo_data.load_into_bigquery(bq, demo_data.demo_parquet(), table) == demo_data.ROWS
    project, ds = dataset.split(".")
    run = run_local(
        "training",
        {
            "project": project,
            "source_table": table,
            "destination_dataset": ds,
            "bigquery_endpoint": emulator.endpoint,
            "serving_model_uri": str(tmp_path / "root" / "serving" / "employment"),
        },
        tmp_path / "root",
    )
    step = run.step("bigquery-split")
    metrics = step.artifacts["split_metrics"]["metadata"]
    assert metrics["rows_total"] == demo_data.ROWS

    ranges = {r.name: r for r in sql.split_ranges({"train": 0.8, "validation": 0.1, "test": 0.1})}
    seen: set[int] = set()
    for name, r in ranges.items():
        art = step.artifacts[name]
        meta = art["metadata"]
        files = glob.glob(f"{art['uri']}/data-*.parquet")
        assert files, f"no Parquet under {art['uri']}"
        data = pq.read_table(files)
        assert data.num_rows == meta["row_count"] == metrics[f"rows_{name}"]
        assert data.schema.names == demo_data.SCHEMA.names
        assert bq.get_table(meta["table_id"]).num_rows == meta["row_count"]
        ids = data.column("id").to_pylist()
        assert all(r.lower <= bucket(str(i)) < r.upper for i in ids), name
        seen.update(ids)
        share = meta["row_count"] / demo_data.ROWS
        assert abs(share - (r.upper - r.lower) / sql.BUCKETS) < 0.005, (name, share)
    assert len(seen) == demo_data.ROWS  # every row exactly once
    # files written in the container belong to the caller, not to the image's user
    assert Path(files[0]).stat().st_uid == Path(tmp_path).stat().st_uid
    text = summary(run)
    assert "step bigquery-split" in text and f"rows_total={demo_data.ROWS}" in text

    # TFDV in its image, one step: statistics of every split, schema from train, validation
    # of validation and test with drift against train
    validation = run.step("tfdv-validate-splits")
    counted = {
        name: validation.artifacts[f"{name}_statistics"]["metadata"]["num_examples"]
        for name in ("train", "validation", "test")
    }
    assert counted == {name: metrics[f"rows_{name}"] for name in counted}
    schema = validation.artifacts["schema"]
    assert schema["metadata"]["num_features"] == len(demo_data.SCHEMA.names)
    assert 'name: "AGEP"' in (Path(schema["uri"]) / "schema.pbtxt").read_text()
    assert validation.parameters["valid"] is True
    drift = validation.artifacts["metrics"]["metadata"]
    assert drift["anomaly_count"] == 0
    assert 0 <= drift["validation_drift_AGEP"] < 0.1 and 0 <= drift["test_drift_AGEP"] < 0.1
    report = Path(validation.artifacts["report"]["uri"]).read_text()
    assert "No anomalies found." in report and "Statistics of test" in report

    # training in its image on the train/validation splits, evaluation on test, publication
    trained = run.step("train").artifacts
    assert trained["metrics"]["metadata"]["validation_accuracy"] > 0.78  # majority: about 0.5
    judged = run.step("evaluate")
    overall = judged.artifacts["metrics"]["metadata"]
    assert overall["auc"] > 0.85 and judged.parameters["blessed"] is True
    assert "baseline_auc" not in overall  # nothing published yet: a first run
    published = run.step("publish-model").parameters["published_uri"]
    assert published == str(tmp_path / "root" / "serving" / "employment" / "1")
    assert (Path(published) / "saved_model.pb").is_file()

    # registered in the embedded registry (MLflow on SQLite under the pipeline root) as the
    # champion, with its lineage; the exit handler recorded a run that succeeded
    registered = run.step("register-model").artifacts["registered_model"]["metadata"]
    assert (registered["backend"], registered["version"]) == ("mlflow", "1")
    assert registered["aliases"] == ["champion"]
    assert (tmp_path / "root" / "registry" / "mlflow.db").is_file()
    outcome = run.step("record-outcome").artifacts["outcome"]["metadata"]
    assert (outcome["state"], outcome["failed_steps"]) == ("SUCCEEDED", [])
    assert {"bigquery-split", "train", "evaluate", "register-model"} <= set(
        outcome["finished_steps"]
    )


def test_failed_step_fails_the_pipeline_and_leaves_no_outputs(
    image_present, emulator, dataset, tmp_path
):
    project, ds = dataset.split(".")
    with pytest.raises(RuntimeError, match="recorded outcome: FAILED, failed: bigquery-split"):
        run_local(
            "training",
            {
                "project": project,
                "source_table": f"{dataset}.does_not_exist",
                "destination_dataset": ds,
                "bigquery_endpoint": emulator.endpoint,
                "serving_model_uri": str(tmp_path / "root" / "serving"),
            },
            tmp_path / "root",
        )
    root = tmp_path / "root"
    # no step's outputs but the exit handler's, which records the failure and its step
    written = glob.glob(f"{root}/**/executor_output.json", recursive=True)
    assert [Path(p).parent.name for p in written] == ["record-outcome"]
    assert not glob.glob(f"{root}/**/*.parquet", recursive=True)
    (path,) = root.glob("*/record-outcome/outcome/outcome.json")
    outcome = json.loads(path.read_text())
    assert (outcome["state"], outcome["succeeded"]) == ("FAILED", False)
    assert outcome["failed_steps"] == ["bigquery-split"]
    assert "does_not_exist" in outcome["step_errors"]["bigquery-split"]
    assert outcome["finished_steps"] == []  # nothing after the split ran
    assert outcome["pipeline_name"] == "kfpkit-training"
    assert outcome["run_name"].startswith("kfpkit-training-")
    # tracked as a failed run, in the registry's store under the pipeline root, with the
    # pipeline's parameters (given and defaults) and the exit handler's artifact
    from kfpkit.tracking import open_tracker

    tracker = open_tracker("mlflow", tracking_uri=str(root / "registry" / "mlflow.db"))
    tracked = tracker.get(outcome["run_name"])
    assert (tracked.status, tracked.experiment) == ("FAILED", "kfpkit-training")
    assert tracked.params["source_table"] == f"{dataset}.does_not_exist"
    assert tracked.params["tuning_trials"] == "3" and "evaluate/auc" not in tracked.metrics
    assert tracked.artifacts["record-outcome/outcome"] == str(path.parent)


def _evaluation(run_dir: Path) -> tuple[dict, bool, str, dict]:
    """evaluate's metrics, blessed, report and publish_model's published_model metadata ({} if
    it did not run) as the steps of one run wrote them."""
    import json

    evaluate = json.loads((run_dir / "evaluate" / "executor_output.json").read_text())
    art = evaluate["artifacts"]
    metrics = art["metrics"]["artifacts"][0]["metadata"]
    report = Path(art["report"]["artifacts"][0]["uri"]).read_text()
    published = run_dir / "publish-model" / "executor_output.json"
    publication = (
        json.loads(published.read_text())["artifacts"]["published_model"]["artifacts"][0]
        if published.is_file()
        else {"metadata": {}}
    )
    return metrics, evaluate["parameterValues"]["blessed"], report, publication["metadata"]


def test_warm_rerun_takes_unchanged_steps_from_kfp_cache(image_present, tmp_path):
    """Two `kfpkit run --cache` of the same data: the second runs only the steps that must
    run (evaluate, publish, push: they read and change the serving directory); a different
    data size misses the cache from the split on.

    The runs share one serving_model_uri, so each later run is evaluated against the model
    the one before published: the second run's evaluate reports the baseline's AUC and
    blesses against it."""
    import subprocess
    import sys

    def run(rows: int) -> str:
        cmd = [sys.executable, "-m", "kfpkit.cli", "run", "training", "--local", "--emulator",
               "--cache", "--rows", str(rows), "--pipeline-root", str(tmp_path),
               "--param", "tuning_trials=0"]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout

    def cached_steps(out: str) -> set[str]:
        return {
            line.split()[1].rstrip(":")
            for line in out.splitlines()
            if line.startswith("  step ") and "from KFP's cache" in line
        }

    first = run(20_000)
    assert cached_steps(first) == set()
    second = run(20_000)
    assert cached_steps(second) == {"bigquery-split", "tfdv-validate-splits", "katib-tune", "train"}
    for ran in ("evaluate", "publish-model", "kserve-push"):  # read or change the serving dir
        assert f"  step {ran}:\n" in second
    assert cached_steps(run(21_000)) == set()  # other data: the split's inputs changed

    # the baseline comparison, on the real outputs of the three runs
    runs = sorted(tmp_path.glob("kfpkit-training-*"), key=lambda p: p.stat().st_mtime)
    assert len(runs) == 3
    serving = tmp_path / "serving" / "employment"
    (first, first_blessed, first_report, first_published), second, third = map(_evaluation, runs)
    assert "baseline_auc" not in first and first_blessed  # nothing published yet
    assert "No baseline model" in first_report
    assert first_published["published_uri"] == str(serving / "1")
    metrics, blessed, report, published = second
    # the baseline is version 1, the model the first run trained; the second run's train
    # step came from the cache, so candidate and baseline are one model on the same test rows
    assert metrics["baseline_auc"] == metrics["auc"] == first["auc"]
    assert metrics["baseline_count"] == first["count"]
    # blessed, and publish_model finds this very model already published: it is not copied
    # into a second version
    assert blessed and published["published_uri"] == str(serving / "1") and published["reused"]
    auc = f"{metrics['auc']:.4f}"
    assert f"PASS: auc {auc} - baseline {auc} = +0.0000 >= -max_regression -0.0050" in report
    # the third run trained a new model on other rows and was judged against version 1
    metrics, blessed, report, published = third
    change = metrics["auc"] - metrics["baseline_auc"]
    assert metrics["baseline_auc"] != second[0]["baseline_auc"]  # v1 scored on the new rows
    assert f"baseline {metrics['baseline_auc']:.4f} = {change:+.4f}" in report
    assert blessed == (metrics["auc"] >= 0.8 and change >= -0.005)
    expected = {"published_uri": str(serving / "2"), "reused": False} if blessed else {}
    assert {k: published[k] for k in expected} == expected
