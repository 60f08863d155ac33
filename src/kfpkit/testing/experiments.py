"""Test helpers of online experiments (train image family): tiny real SavedModels whose answer
tells which variant gave it, a folder that fails to load, and a TFDV schema with domains."""

from __future__ import annotations

from pathlib import Path

SCHEMA = """
feature { name: "AGEP" type: FLOAT float_domain { min: 0 max: 99 } }
feature { name: "SEX" type: BYTES string_domain { value: "1" value: "2" } }
"""


def write_constant_model(path: Path, probability: float) -> Path:
    """A SavedModel ``<path>/1`` with the train component's serving contract on raw AGEP
    (float) and SEX (string) that answers ``probability`` for every row."""
    import tensorflow as tf

    class Constant(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.float32, name="AGEP"),
                tf.TensorSpec([None], tf.string, name="SEX"),
            ]
        )
        def serve(self, AGEP, SEX):  # noqa: N803 - input names are the feature names
            rows = tf.shape(AGEP)[0] + 0 * tf.shape(SEX)[0]
            return {"probability": tf.fill([rows], tf.constant(probability, tf.float32))}

    module = Constant()
    tf.saved_model.save(module, str(path / "1"), signatures={"serving_default": module.serve})
    return path


def write_broken_model(path: Path) -> Path:
    """A model folder whose version holds a saved_model.pb that is not one."""
    (path / "1").mkdir(parents=True)
    (path / "1" / "saved_model.pb").write_bytes(b"not a SavedModel")
    return path


def write_schema(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "schema.pbtxt").write_text(SCHEMA)
    return path / "schema.pbtxt"
