"""Real models for the serving tests, made once per session.

- ``model_dir``: the train component's own export, trained briefly on its checked-in sample.
- ``candidate_dir``: a hand-written SavedModel on two of the same features that disagrees
  with it on purpose and fails on requests with a person aged 90+ (``kfpkit.testing.serving``).
- ``server``: KServe's model server on 127.0.0.1 serving ``model_dir``, shadowed by
  ``candidate_dir``, logging requests (flushing every 0.2 s).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from kfpkit.serving.client import ServerProcess, server_args
from kfpkit.testing.serving import write_candidate
from kfpkit.testing.splits import sample_splits


@pytest.fixture(scope="session")
def splits(tmp_path_factory) -> dict[str, Path]:
    return sample_splits(tmp_path_factory.mktemp("splits"))


@pytest.fixture(scope="session")
def model_dir(splits, tmp_path_factory) -> Path:
    from kfpkit.training import trainer

    model = tmp_path_factory.mktemp("model") / "employment"
    trainer.train(
        trainer.TrainRequest(
            train_path=str(splits["train"]),
            validation_path=str(splits["validation"]),
            model_dir=str(model),
            label_column="employed",
            exclude_columns=("id",),
            hyperparameters=trainer.Hyperparameters(epochs=2, batch_size=256),
        )
    )
    return model


@pytest.fixture(scope="session")
def candidate_dir(tmp_path_factory) -> Path:
    return write_candidate(tmp_path_factory.mktemp("candidate") / "candidate")


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("request-logs")


@pytest.fixture(scope="session")
def server(model_dir, candidate_dir, log_dir, tmp_path_factory):
    args = server_args(
        str(model_dir),
        name="employment",
        shadow_dir=str(candidate_dir),
        log_dir=str(log_dir),
        extra=["--log-flush-seconds", "0.2", "--max-rows", "500", "--max-body-bytes", "200000"],
    )
    log = tmp_path_factory.mktemp("server") / "server.log"
    process = ServerProcess.python(sys.executable, args, str(log)).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def test_rows(splits) -> list[dict]:
    """Rows of the test split, as a client sends them (features only)."""
    table = pq.read_table(splits["test"]).drop_columns(["id", "employed"])
    return table.to_pylist()


@pytest.fixture(scope="session")
def in_process(model_dir):
    """The model's own predictions, called in this process the way evaluate calls it."""
    from kfpkit import tabular

    model = tabular.ServingModel(str(model_dir))

    def predict(rows: list[dict]) -> np.ndarray:
        import pyarrow as pa

        return model.predict_table(pa.Table.from_pylist(rows))

    predict.specs = model.feature_specs  # type: ignore[attr-defined]
    predict.output_name = model.output_name  # type: ignore[attr-defined]
    return predict
