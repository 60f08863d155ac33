"""Two real models trained once per session on the train component's sample: a strong one on
every feature and a weak one on SEX only, and the sample's test split."""

from pathlib import Path

import pytest

from kfpkit.testing.splits import sample_splits
from kfpkit.training import trainer


@pytest.fixture(scope="session")
def data(tmp_path_factory) -> dict[str, Path]:
    return sample_splits(tmp_path_factory.mktemp("data"))


def _train(data: dict[str, Path], model_dir: Path, features: tuple[str, ...]) -> Path:
    request = trainer.TrainRequest(
        train_path=str(data["train"]),
        validation_path=str(data["validation"]),
        model_dir=str(model_dir),
        label_column="employed",
        feature_columns=features,
        hyperparameters=trainer.Hyperparameters(epochs=4, batch_size=128, learning_rate=0.003),
    )
    trainer.train(request)
    return model_dir


@pytest.fixture(scope="session")
def strong_model(data, tmp_path_factory) -> Path:
    return _train(data, tmp_path_factory.mktemp("strong") / "model", ())


@pytest.fixture(scope="session")
def weak_model(data, tmp_path_factory) -> Path:
    return _train(data, tmp_path_factory.mktemp("weak") / "model", ("SEX",))
