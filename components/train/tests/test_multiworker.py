"""Multi-worker training with real worker processes on 127.0.0.1 (TF_CONFIG, free ports): two
workers, each reading its shard, reach the one-worker accuracy and export one SavedModel with
the one-worker signature; a worker that never comes up fails the others within the timeout."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from kfpkit import tabular
from kfpkit.hyperparameters import parse_hyperparameters
from kfpkit.training import distributed, trainer

WORKER = Path(__file__).parent / "multiworker_worker.py"
# Per replica: two workers at 128 train with the one-worker global batch of 256.
HYPERPARAMETERS = {"epochs": 4, "batch_size": 128, "early_stopping_patience": 4}
# Test accuracy of the two-worker model within this of the one-worker model's (1,000 test
# rows: one standard error of an accuracy near 0.8 is 0.013).
ACCURACY_TOLERANCE = 0.03


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tf_config(addresses: list[str], index: int) -> str:
    return json.dumps(
        {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
    )


def start_worker(spec: dict, config: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "TF_CONFIG": config, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen(
        [sys.executable, str(WORKER), json.dumps(spec)],
        env=env, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True,  # noqa: SIM115
    )  # fmt: skip


def test_a_tf_config_is_read_and_bad_ones_are_named():
    config = {"cluster": {"chief": ["a:1"], "worker": ["b:2", "c:3"]},
              "task": {"type": "worker", "index": 1}}  # fmt: skip
    cluster = distributed.cluster_from(json.dumps(config))
    assert cluster.addresses == ("a:1", "b:2", "c:3") and cluster.index == 2
    assert not cluster.is_chief and cluster.peers == ("a:1", "b:2")
    bad = [
        ("not json", "must be JSON"),
        (json.dumps({**config, "task": {"type": "worker", "index": 2}}), "task worker:2"),
        (json.dumps({"cluster": {"worker": ["b", "c:3"]}, "task": config["task"]}), "'b'"),
        (json.dumps({"cluster": {"worker": ["b:2", "b:2"]}, "task": config["task"]}), "twice"),
    ]
    for text, message in bad:
        with pytest.raises(ValueError, match=message):
            distributed.cluster_from(text)


def test_auc_of_histograms_is_the_rank_statistic():
    # two positives at the top bins, one negative below, one tied with a positive
    positives, negatives = np.array([0, 0, 1, 1]), np.array([1, 0, 1, 0])
    assert distributed.auc_of_histograms(positives, negatives) == pytest.approx(0.875)
    assert np.isnan(distributed.auc_of_histograms(positives, np.zeros(4)))


def test_two_workers_reach_the_one_worker_accuracy(splits, tmp_path):
    hp = parse_hyperparameters({**HYPERPARAMETERS, "batch_size": 256})
    one = trainer.train(trainer.TrainRequest(
        train_path=str(splits["train"]), validation_path=str(splits["validation"]),
        model_dir=str(tmp_path / "one"), label_column="employed", exclude_columns=("id",),
        hyperparameters=hp,
    ))  # fmt: skip

    addresses = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    spec = {"train": str(splits["train"]), "validation": str(splits["validation"]),
            "label": "employed", "exclude": ["id"], "hyperparameters": HYPERPARAMETERS,
            "worker_timeout": 300}  # fmt: skip
    procs = [
        start_worker({**spec, "model_dir": str(tmp_path / f"model{i}")},
                     tf_config(addresses, i), tmp_path / f"worker{i}.log")  # fmt: skip
        for i in range(2)
    ]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    for i, p in enumerate(procs):
        assert p.returncode == 0, (tmp_path / f"worker{i}.log").read_text()[-3000:]
    results = [json.loads(out.strip().splitlines()[-1]) for out in outs]

    # both workers saw the same all-reduced metrics; only the chief's export is kept
    measured = [{k: v for k, v in r["metrics"].items() if k != "examples_per_second"}
                for r in results]  # fmt: skip (each worker times itself)
    assert measured[0] == measured[1]
    assert results[0]["metrics"]["workers"] == 2 and results[0]["replicas"] == 2
    assert results[0]["metrics"]["global_batch_size"] == one.metrics["global_batch_size"]
    assert results[0]["export_dir"] == str(tmp_path / "model0" / "1")
    assert not (tmp_path / "model1").exists()

    # the same serving signature, and the one-worker accuracy on the test split
    test = pq.read_table(splits["test"])
    labels = tabular.binary_labels(test, "employed", "test")
    accuracy = {}
    for name, path in (("one", one.export_dir), ("two", results[0]["export_dir"])):
        model = tabular.ServingModel(str(Path(path).parent))
        accuracy[name] = float(((model.predict_table(test) > 0.5) == labels).mean())
        accuracy[f"{name}_inputs"] = model.feature_specs  # type: ignore[assignment]
    assert accuracy["one_inputs"] == accuracy["two_inputs"]
    assert accuracy["two"] > 0.75
    assert abs(accuracy["two"] - accuracy["one"]) <= ACCURACY_TOLERANCE, accuracy


def test_a_worker_that_never_comes_up_fails_within_the_timeout(splits, tmp_path):
    addresses = [f"127.0.0.1:{free_port()}" for _ in range(2)]  # worker 1 is never started
    spec = {"train": str(splits["train"]), "validation": str(splits["validation"]),
            "model_dir": str(tmp_path / "model"), "label": "employed", "exclude": ["id"],
            "hyperparameters": HYPERPARAMETERS, "worker_timeout": 5}  # fmt: skip
    started = time.monotonic()
    proc = start_worker(spec, tf_config(addresses, 0), tmp_path / "worker0.log")
    proc.communicate(timeout=300)  # TensorFlow's import and the scan take most of it
    log = (tmp_path / "worker0.log").read_text()
    assert proc.returncode == 1, log[-3000:]
    assert "not every worker of TF_CONFIG joined within 5 s" in log
    assert f"unreachable: {addresses[1]}" in log
    assert time.monotonic() - started < 300
    assert not (tmp_path / "model").exists()
