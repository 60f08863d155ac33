"""Real SavedModels for the attribution tests: the serving tests' candidate (AGEP float, SEX
string; its numpy twin in kfpkit.testing.serving) and numeric-only models written here with
known formulas, so attributions can be checked against exact values."""

from __future__ import annotations

from pathlib import Path

import pytest

# a numeric-only model: sigmoid(0.8 a - 0.5 b + 0.3 a b), c unused
NUMERIC_FEATURES = ("a", "b", "c")


def _write(path: Path, formula) -> Path:  # type: ignore[no-untyped-def]
    import tensorflow as tf

    class Numeric(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name=n)
                                      for n in NUMERIC_FEATURES])  # fmt: skip
        def serve(self, a, b, c):  # type: ignore[no-untyped-def]
            return {"probability": formula(tf, a, b, c)}

    module = Numeric()
    tf.saved_model.save(module, str(path / "1"), signatures={"serving_default": module.serve})
    return path


@pytest.fixture(scope="session")
def nonlinear_model(tmp_path_factory) -> Path:
    return _write(
        tmp_path_factory.mktemp("nonlinear") / "model",
        lambda tf, a, b, c: tf.sigmoid(0.8 * a - 0.5 * b + 0.3 * a * b) + 0.0 * c,
    )


@pytest.fixture(scope="session")
def linear_model(tmp_path_factory) -> Path:
    return _write(
        tmp_path_factory.mktemp("linear") / "model",
        lambda tf, a, b, c: 0.5 + 0.1 * a - 0.05 * b + 0.0 * c,
    )


@pytest.fixture(scope="session")
def mixed_model(tmp_path_factory) -> Path:
    from kfpkit.testing.serving import write_candidate

    return write_candidate(tmp_path_factory.mktemp("mixed") / "model")


@pytest.fixture(scope="session")
def imputing_model(tmp_path_factory) -> Path:
    """AGEP (float; a missing one is 45) and SEX (string): sigmoid((AGEP - 45) / 10), times
    0.8 unless SEX is "1"."""
    import tensorflow as tf

    class Imputing(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="AGEP"),
                                      tf.TensorSpec([None], tf.string, name="SEX")])  # fmt: skip
        def serve(self, AGEP, SEX):  # type: ignore[no-untyped-def]  # noqa: N803
            age = tf.where(tf.math.is_nan(AGEP), 45.0, AGEP)
            p = tf.sigmoid((age - 45.0) / 10.0)
            return {"probability": tf.where(tf.equal(SEX, "1"), p, p * 0.8)}

    module = Imputing()
    path = tmp_path_factory.mktemp("imputing") / "model"
    tf.saved_model.save(module, str(path / "1"), signatures={"serving_default": module.serve})
    return path
