"""Test helpers of the serving tests (train image family): a candidate SavedModel that differs
from the trained one on purpose and fails on some traffic, and its numpy twin."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# The candidate's graph asserts AGEP < this: a request with an older person fails inside it.
CANDIDATE_MAX_AGE = 90.0


def candidate_probability(age: np.ndarray, sex: np.ndarray) -> np.ndarray:
    """What the candidate computes, in numpy (float32 like the graph)."""
    z = (age.astype(np.float32) - np.float32(45.0)) / np.float32(10.0)
    p = np.float32(1.0) / (np.float32(1.0) + np.exp(-z))
    return np.where(sex == "1", p, p * np.float32(0.8)).astype(np.float32)


def write_candidate(path: Path) -> Path:
    """A SavedModel ``<path>/1`` with a ``serving_default`` on raw AGEP (float) and SEX (string),
    the train component's serving contract."""
    import tensorflow as tf

    class Candidate(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.float32, name="AGEP"),
                tf.TensorSpec([None], tf.string, name="SEX"),
            ]
        )
        def serve(self, AGEP, SEX):  # noqa: N803 - input names are the feature names
            tf.debugging.assert_less(
                AGEP, tf.constant(CANDIDATE_MAX_AGE), message="candidate: age out of range"
            )
            p = tf.sigmoid((AGEP - 45.0) / 10.0)
            return {"probability": tf.where(tf.equal(SEX, "1"), p, p * 0.8)}

    module = Candidate()
    tf.saved_model.save(module, str(path / "1"), signatures={"serving_default": module.serve})
    return path
