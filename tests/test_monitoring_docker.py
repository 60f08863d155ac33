"""The monitoring pipeline end to end on kfp.local with Docker: a champion registered in the
embedded MLflow registry with its training statistics, the demo data's real rows served in
the last hour (2018) and the hour before (2017) in the log contract's layout with their labels
as feedback; resolve -> monitor -> decide -> trigger, which starts the retraining pipeline
on the local Kubeflow Pipelines API stand-in.

Needs Docker and the core and tfdv images (``make images``).
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from kfpkit import demo_data
from kfpkit.local_run import run_local
from kfpkit.registry import CHAMPION, open_registry
from kfpkit.testing import served_logs as sl
from kfpkit.testing.pipeline_servers import KubeflowTestServer

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[1]
FEATURES = ["AGEP", *demo_data.CATEGORICALS]
RETRAIN = {"project": "p", "source_table": "p.d.employment_2018", "window": "2018",
           "state_uri": "gs://b/state", "destination_dataset": "d",
           "serving_model_uri": "gs://b/serving/employment"}  # fmt: skip


def serve(rows: pa.Table, folder: Path, start: datetime, span: timedelta) -> None:
    """The rows as one-row requests spread over ``[start, start + span)``, labels as feedback;
    the score is a plain stand-in (the rows' age, scaled)."""
    times = sl.evenly(start, span, rows.num_rows)
    ids = [f"{start:%H%M}-{i}" for i in range(rows.num_rows)]
    score = pc.divide(rows["AGEP"], 100.0)
    requests, feedback = sl.served_rows(rows, FEATURES, "employed", score, times, ids,
                                        latency_ms=2.0)  # fmt: skip
    sl.write_experiment(folder, requests, feedback, files=2)


def training_statistics(rows: pa.Table, folder: Path) -> Path:
    import subprocess

    folder.mkdir(parents=True)
    pq.write_table(rows, folder / "train.parquet")
    script = ("import sys; from kfpkit.tfdv.in_process import statistics_of_table; "
              "import pyarrow.parquet as pq; open(sys.argv[2], 'wb').write("
              "statistics_of_table(pq.read_table(sys.argv[1])).SerializeToString())")  # fmt: skip
    subprocess.run([str(ROOT / ".venvs" / "tfdv" / "bin" / "python"), "-c", script,
                    str(folder / "train.parquet"), str(folder / "FeatureStats.pb")],
                   check=True, capture_output=True)  # fmt: skip
    (folder / "train.parquet").unlink()
    return folder


def test_served_skew_and_decay_trigger_a_retraining_run(tmp_path):
    demo = pq.read_table(demo_data.demo_parquet())
    by_year = {y: demo.filter(pc.equal(demo["year"], y)) for y in (2015, 2017, 2018)}
    root = tmp_path / "root"
    logs = root / "logs" / "employment"
    now = datetime.now(UTC)
    serve(by_year[2017], logs, now - timedelta(hours=2), timedelta(minutes=50))
    serve(by_year[2018], logs, now - timedelta(hours=1), timedelta(minutes=50))
    stats = training_statistics(by_year[2015], root / "training-statistics")
    registry = open_registry("mlflow", registry_uri=str(root / "registry" / "mlflow.db"))
    registry.register("employment", str(root / "models" / "1"), {"statistics_uri": str(stats)},
                      {"auc": 0.95, "accuracy": 0.85}, aliases=[CHAMPION])  # fmt: skip
    spec = root / "continuous_training.yaml"
    shutil.copyfile(ROOT / "compiled" / "kubeflow" / "continuous_training.yaml", spec)

    with KubeflowTestServer() as server:
        run = run_local("monitoring", {
            "serving_logs": str(logs), "window_hours": 1.0, "end": now.isoformat(),
            "retrain_pipeline": str(spec),
            "retrain_parameters": RETRAIN, "kfp_host": server.url,
            "kfp_experiment": "retraining",
        }, root)  # fmt: skip
        (created,) = server.calls("POST", "/runs")

    steps = {s.task: s for s in run.steps}
    assert {"resolve-model", "monitor-serving", "retrain-decision", "trigger-pipeline"} <= set(
        steps
    )
    written = Path(steps["monitor-serving"].artifacts["monitoring"]["uri"], "monitoring.json")
    monitoring = json.loads(written.read_text())
    assert monitoring["rows"] == by_year[2018].num_rows
    assert monitoring["window"]["previous"]["rows"] == by_year[2017].num_rows
    assert monitoring["moved_features"] == ["ANC"]  # skew from 2015, as offline
    assert monitoring["drift"] and all(m["value"] < 0.03 for m in monitoring["drift"])
    assert monitoring["performance"]["reference"] == 0.95
    assert monitoring["performance"]["over"] is True  # the stand-in score is far below 0.95
    decision = steps["retrain-decision"].parameters
    assert decision["retrain"] is True
    assert [r.split(":")[0] for r in decision["reasons"]] == [
        "served traffic skewed from the model's training data",
        "served performance decayed",
    ]
    assert steps["trigger-pipeline"].parameters["triggered"] is True
    body = created.json()
    assert body["runtime_config"]["parameters"]["window"] == "2018"
    assert body["description"].startswith("monitoring: served skew or performance decay")
