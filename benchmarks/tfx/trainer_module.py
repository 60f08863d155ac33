"""TFX Trainer module file: the same Keras model as kfpkit's trainer, trained the TFX way.

Runs inside the TFX 1.16 environment (``.venvs/tfx-bench``), never in kfpkit's own.

Model shape copied from ``src/kfpkit/training/trainer.py`` (``build_model`` and the
``Hyperparameters`` defaults, passed in by the driver through ``custom_config``): one input per
feature; numeric features standardized with the train split's mean and variance; categorical
features looked up in the train split's vocabulary (most frequent first, one out-of-vocabulary
bucket) and embedded with ``min(16, ceil(sqrt(vocabulary + 1)))`` dimensions; ReLU hidden
layers with dropout; a sigmoid output; Adam, binary cross-entropy, batch size, epochs and
early stopping on the validation loss with the best weights restored.

What differs is TFX's own way of feeding it, as a TFX user writes it: examples come from
ExampleGen's gzipped TFRecords through ``data_accessor.tf_dataset_factory`` (TFXIO, shuffle
buffer of its default size), and mean/variance/vocabularies are computed in one pass over the
train split here (kfpkit computes them from the in-memory train split; TFX without Transform
has no other place for them). The exported SavedModel's ``serving_default`` takes serialized
``tf.Example``s, which is what TFMA's Evaluator feeds a generic model.
"""

from __future__ import annotations

import collections
import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

_DTYPES = {
    schema_pb2.INT: tf.int64,
    schema_pb2.FLOAT: tf.float32,
    schema_pb2.BYTES: tf.string,
}
STATS_BATCH = 8192
MAX_VOCABULARY = 10_000  # kfpkit's: rarer values share the out-of-vocabulary bucket


def _model_features(schema, config):
    """(name, kind, dtype) of every schema feature but the label and the excluded columns."""
    label = config["label"]
    excluded = set(config["exclude_columns"])
    categorical = set(config["categorical_features"])
    out = []
    for feature in schema.feature:
        if feature.name == label or feature.name in excluded:
            continue
        kind = "categorical" if feature.name in categorical else "numeric"
        out.append((feature.name, kind, _DTYPES[feature.type]))
    if not out:
        raise ValueError("no feature columns left to train on")
    return out


def _dense(name, tensor):
    if not isinstance(tensor, tf.Tensor):
        raise ValueError(
            f"feature {name!r} is not dense ({type(tensor).__name__}): the schema must give it a "
            "fixed shape (SchemaGen infer_feature_shape=True, no missing values)"
        )
    return tensor


def _train_stats(files, data_accessor, schema, features):
    """Mean/variance of numeric features and frequency-ordered vocabularies, one pass."""
    dataset = data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(batch_size=STATS_BATCH, num_epochs=1, shuffle=False),
        schema,
    )
    sums = collections.defaultdict(float)
    squares = collections.defaultdict(float)
    counts = collections.defaultdict(collections.Counter)
    rows = 0
    for batch in dataset.as_numpy_iterator():
        rows += len(next(iter(batch.values())))
        for name, kind, _ in features:
            values = np.asarray(batch[name]).reshape(-1)
            if kind == "numeric":
                values = values.astype(np.float64)
                sums[name] += float(values.sum())
                squares[name] += float(np.square(values).sum())
            else:
                uniques, n = np.unique(values, return_counts=True)
                counts[name].update(dict(zip(uniques.tolist(), n.tolist(), strict=True)))
    stats = {}
    for name, kind, _ in features:
        if kind == "numeric":
            mean = sums[name] / rows
            stats[name] = {"mean": mean, "variance": max(squares[name] / rows - mean * mean, 0.0)}
        else:
            order = sorted(counts[name].items(), key=lambda kv: (-kv[1], kv[0]))
            vocabulary = [k.decode() if isinstance(k, bytes) else k for k, _ in order]
            stats[name] = {"vocabulary": vocabulary[:MAX_VOCABULARY]}
    return stats, rows


def build_model(features, stats, hp):
    """kfpkit's build_model, with (batch, 1) inputs as TFXIO yields them."""
    inputs, encoded = {}, []
    for name, kind, dtype in features:
        st = stats[name]
        if kind == "numeric":
            raw = keras.Input(shape=(1,), dtype="float32", name=name)
            encoded.append(
                keras.layers.Normalization(
                    mean=st["mean"], variance=st["variance"], axis=-1, name=f"{name}_norm"
                )(raw)
            )
        else:
            if dtype == tf.string:
                raw = keras.Input(shape=(1,), dtype="string", name=name)
                lookup = keras.layers.StringLookup(
                    vocabulary=st["vocabulary"], num_oov_indices=1, name=f"{name}_lookup"
                )
            else:  # coded categories that CsvExampleGen inferred as INT
                raw = keras.Input(shape=(1,), dtype="int64", name=name)
                lookup = keras.layers.IntegerLookup(
                    vocabulary=[int(v) for v in st["vocabulary"]],
                    num_oov_indices=1,
                    name=f"{name}_lookup",
                )
            size = len(st["vocabulary"]) + 1
            dim = hp["embedding_dim"] or min(16, math.ceil(math.sqrt(size)))
            embedded = keras.layers.Embedding(size, dim, name=f"{name}_embed")(lookup(raw))
            encoded.append(keras.layers.Reshape((dim,), name=f"{name}_flat")(embedded))
        inputs[name] = raw
    x = encoded[0] if len(encoded) == 1 else keras.layers.Concatenate(name="features")(encoded)
    for i, units in enumerate(hp["hidden_units"]):
        x = keras.layers.Dense(units, activation="relu", name=f"hidden_{i}")(x)
        if hp["dropout"] > 0:
            x = keras.layers.Dropout(hp["dropout"], seed=hp["seed"] + i, name=f"dropout_{i}")(x)
    output = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="probability")(x)
    model = keras.Model(inputs=inputs, outputs=output, name="tfx_binary_classifier")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=hp["learning_rate"]),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
    )
    return model


def _model_inputs(features, batch):
    """The model's inputs from a parsed batch: numeric features as float32."""
    out = {}
    for name, kind, _ in features:
        tensor = _dense(name, batch[name])
        out[name] = tf.cast(tensor, tf.float32) if kind == "numeric" else tensor
    return out


def _dataset(files, data_accessor, schema, features, label, batch_size, seed=None):
    options = tfxio.TensorFlowDatasetOptions(
        batch_size=batch_size,
        num_epochs=1,  # one pass per Keras epoch
        shuffle=seed is not None,
        shuffle_seed=seed,
        label_key=label,
    )
    dataset = data_accessor.tf_dataset_factory(files, options, schema)
    return dataset.map(
        lambda batch, y: (_model_inputs(features, batch), tf.cast(_dense(label, y), tf.float32)),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).prefetch(tf.data.AUTOTUNE)


def _export(model, features, path):
    """SavedModel whose serving_default parses serialized tf.Examples (TFMA's generic input)."""
    spec = {name: tf.io.FixedLenFeature([1], dtype) for name, _, dtype in features}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        return {"probability": model(_model_inputs(features, parsed), training=False)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve)
    archive.write_out(path, verbose=False)


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    config = fn_args.custom_config
    hp = config["hyperparameters"]
    label = config["label"]
    schema = tfx.utils.parse_pbtxt_file(fn_args.schema_path, schema_pb2.Schema())
    features = _model_features(schema, config)

    start = time.perf_counter()
    stats, train_rows = _train_stats(fn_args.train_files, fn_args.data_accessor, schema, features)
    stats_seconds = time.perf_counter() - start

    keras.utils.set_random_seed(hp["seed"])
    model = build_model(features, stats, hp)
    train_data = _dataset(
        fn_args.train_files,
        fn_args.data_accessor,
        schema,
        features,
        label,
        hp["batch_size"],
        seed=hp["seed"],
    )
    eval_data = _dataset(
        fn_args.eval_files, fn_args.data_accessor, schema, features, label, hp["batch_size"]
    )
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=hp["early_stopping_patience"], restore_best_weights=True
    )
    start = time.perf_counter()
    history = model.fit(
        train_data,
        validation_data=eval_data,
        epochs=hp["epochs"],
        callbacks=[stopper],
        verbose=2,
    ).history
    fit_seconds = time.perf_counter() - start
    _export(model, features, fn_args.serving_model_dir)

    best = int(np.argmin(history["val_loss"]))
    summary = {
        "features": [[name, kind, dtype.name] for name, kind, dtype in features],
        "parameters": int(model.count_params()),
        "train_rows": train_rows,
        "epochs_run": len(history["loss"]),
        "best_epoch": best + 1,
        "validation_accuracy": float(history["val_accuracy"][best]),
        "validation_auc": float(history["val_auc"][best]),
        "stats_pass_seconds": round(stats_seconds, 2),
        "fit_seconds": round(fit_seconds, 2),
    }
    # Next to the model run's logs; the benchmark's runner finds it through MLMD.
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "training_summary.json"), "w") as f:
        f.write(json.dumps(summary))
    print("training summary:", json.dumps(summary), flush=True)
