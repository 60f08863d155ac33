"""Request logs written on shutdown, exactly once, and read by the TFDV components: a skew
check of deliberately skewed served traffic against the training data names the feature.

The server runs here (train environment); the skew check runs in the tfdv environment
(TFDV 1.16 needs TensorFlow 2.16 / protobuf 4: another dependency island), on the very
files the server wrote, through the TFDV components' own runtime (``kfpkit.tfdv.data_files``,
``kfpkit.tfdv.statistics``, ``kfpkit.tfdv.validation``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kfpkit.serving.client import ServerProcess, server_args

ROOT = Path(__file__).resolve().parents[3]
TFDV_PYTHON = ROOT / ".venvs" / "tfdv" / "bin" / "python"
SKEWED_VALUE = "21"  # every served row gets this SCHL (a bachelor's degree)

SKEW_CHECK = """
import json, sys
import tensorflow_data_validation as tfdv
from kfpkit.tfdv.data_files import find_data_files
from kfpkit.tfdv.statistics import compute_statistics
from kfpkit.tfdv import validation

train_dir, log_dir, out = sys.argv[1:4]
train = compute_statistics(find_data_files(train_dir, "train"), out + "/train.pb")
served = compute_statistics(find_data_files(log_dir, "logs"), out + "/served.pb")
schema = tfdv.infer_schema(train)
skew = validation.Thresholds(per_feature={"SCHL": 0.3, "SEX": 0.3, "AGEP": 0.3})
anomalies = validation.validate(train, schema, serving=served, skew=skew)
print(json.dumps({
    "anomalies": sorted(anomalies.anomaly_info),
    "lines": validation.anomaly_lines(anomalies),
    "skew": {m.feature: m.value for m in validation.measurements(anomalies) if m.kind == "skew"},
}))
"""


@pytest.fixture(scope="module")
def skewed_logs(model_dir, test_rows, tmp_path_factory) -> tuple[Path, int]:
    """Serves skewed traffic with a writer that only writes on shutdown, then SIGTERM."""
    log_dir = tmp_path_factory.mktemp("skewed-logs")
    only_on_shutdown = ["--log-batch-rows", "1000000", "--log-flush-seconds", "3600"]
    args = server_args(str(model_dir), name="employment", log_dir=str(log_dir),
                       extra=only_on_shutdown)  # fmt: skip
    server = ServerProcess.python(sys.executable, args).start()
    client = server.client()
    rows = [{**r, "SCHL": SKEWED_VALUE} for r in test_rows[:400]]
    for i in range(0, len(rows), 8):
        client.predict_v1("employment", rows[i : i + 8])
    client.close()
    assert not list((log_dir / "employment").glob("*.parquet"))  # nothing written yet
    assert server.stop() == 0  # SIGTERM: a clean exit, the queue written out
    return log_dir / "employment", len(rows)


def test_sigterm_writes_every_queued_request_exactly_once(skewed_logs):
    directory, sent = skewed_logs
    table = pq.ParquetDataset([str(p) for p in directory.glob("*.parquet")]).read()
    assert table.num_rows == sent
    keys = set(zip(table["request_id"].to_pylist(), table["row"].to_pylist(), strict=True))
    assert len(keys) == sent
    assert set(table["SCHL"].to_pylist()) == {SKEWED_VALUE}


def test_tfdv_skew_check_on_the_logs_names_the_skewed_feature(skewed_logs, splits, tmp_path):
    if not TFDV_PYTHON.exists():
        pytest.skip(f"{TFDV_PYTHON} is missing (make .venvs/tfdv/.synced)")
    directory, _ = skewed_logs
    done = subprocess.run(
        [str(TFDV_PYTHON), "-c", SKEW_CHECK, str(splits["train"]), str(directory), str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["anomalies"] == ["SCHL"], result["lines"]
    assert result["skew"]["SCHL"] > 0.3  # L-infinity distance of value frequencies
    assert result["skew"]["SEX"] < 0.3 and result["skew"]["AGEP"] < 0.3
