"""Trains a binary classifier on tabular Parquet splits and exports it for serving.

Pure runtime (no kfp): the launcher turns the executor input into a :class:`TrainRequest`
and records what :func:`train` returns. The exported model takes raw features: numeric
columns are standardized and categorical columns looked up and embedded inside the model,
with statistics and vocabularies computed on the train split only.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import pyarrow as pa
import tensorflow as tf

from kfpkit import tabular

# the hyperparameters and their rules are pure code, shared with katib_tune (no TensorFlow)
from kfpkit.hyperparameters import Hyperparameters
from kfpkit.tabular import NUMERIC, FeatureSpec
from kfpkit.training import strategy as strategies
from kfpkit.training.schema import SchemaFeature, load_schema_features

_log = logging.getLogger("kfpkit")

# Categorical values beyond the most frequent ones share the out-of-vocabulary bucket.
MAX_VOCABULARY = 10_000
OUTPUT_NAME = "probability"
# TensorFlow op and signature input names must match this; Parquet column names need not.
_INPUT_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\-]*\Z")


@dataclass(frozen=True)
class TrainRequest:
    train_path: str
    validation_path: str
    model_dir: str
    label_column: str
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)
    schema_path: str | None = None
    feature_columns: tuple[str, ...] = ()
    exclude_columns: tuple[str, ...] = ()
    model_version: int = 1
    mixed_precision: bool = False


@dataclass
class TrainResult:
    export_dir: str  # <model_dir>/<model_version>
    features: list[FeatureSpec]
    history: dict[str, list[float]]
    metrics: dict[str, float | int]
    strategy: strategies.StrategyChoice
    replicas: int


def select_features(
    columns: pa.Schema,
    schema: Mapping[str, SchemaFeature] | None,
    label: str,
    feature_columns: Sequence[str],
    exclude_columns: Sequence[str],
) -> list[FeatureSpec]:
    """The model's features: ``feature_columns`` if given, else every schema feature (or, with
    no schema, every column) but the label and ``exclude_columns``; kinds from the schema when
    given, else from the Arrow types. ValueError names a column the data lacks."""
    present = set(columns.names)
    if label not in present:
        raise ValueError(f"train_data: label column {label!r} not in the data")
    if feature_columns:
        names = list(dict.fromkeys(feature_columns))
        if label in names:
            raise ValueError(f"feature_columns includes the label column {label!r}")
    else:
        candidates = list(schema) if schema is not None else columns.names
        names = [c for c in candidates if c != label and c not in set(exclude_columns)]
    if not names:
        raise ValueError("no feature columns left to train on")
    missing = [n for n in names if n not in present]
    if missing:
        origin = "the schema" if schema is not None and not feature_columns else "feature_columns"
        raise ValueError(f"train_data lacks column(s) {missing} that {origin} requires")
    specs = []
    for name in names:
        if not _INPUT_NAME.match(name):
            raise ValueError(f"feature column name {name!r} cannot name a model input")
        if schema is not None:
            if name not in schema:
                raise ValueError(f"feature column {name!r} is not in the schema")
            specs.append(schema[name].spec())
            continue
        kind = tabular.kind_of_arrow_type(columns.field(name).type)
        if kind is None:
            raise ValueError(f"column {name!r} has type {columns.field(name).type}, not a feature")
        specs.append(FeatureSpec(name, kind))
    return specs


@dataclass(frozen=True)
class FeatureStats:
    """Train-split statistics baked into the model's preprocessing layers."""

    mean: float = 0.0
    variance: float = 1.0
    vocabulary: tuple[str, ...] = ()


def feature_stats(spec: FeatureSpec, values: np.ndarray) -> FeatureStats:
    if spec.kind == NUMERIC:
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            raise ValueError(f"train_data: numeric column {spec.name!r} has no values")
        return FeatureStats(mean=float(finite.mean()), variance=float(finite.var()))
    uniques, counts = np.unique(values[values != ""], return_counts=True)
    if uniques.size == 0:
        raise ValueError(f"train_data: categorical column {spec.name!r} has no values")
    order = sorted(range(len(uniques)), key=lambda i: (-counts[i], uniques[i]))
    return FeatureStats(vocabulary=tuple(str(uniques[i]) for i in order[:MAX_VOCABULARY]))


@dataclass
class ModelParts:
    """The model in two parts: ``preprocess`` (raw features -> encoded: missing values
    filled, numeric standardized, strings looked up; no trainable weights) and ``core``
    (encoded -> probability: embeddings and the MLP, compiled). Training runs on ``core``
    with the train split encoded once, instead of looking every string up again in every
    batch of every epoch; :meth:`serving_model` joins the parts, so the exported model still
    takes raw features. Encoding outside the trained graph also keeps string lookups off
    accelerators (a TPU cannot run them)."""

    preprocess: Any
    core: Any
    raw_inputs: dict[str, Any]  # the preprocess model's inputs, by feature name

    def encode(self, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        # One vectorized call per chunk (bounded memory for large splits).
        rows = len(next(iter(features.values())))
        chunks = [
            self.preprocess({k: v[i : i + _ENCODE_CHUNK] for k, v in features.items()})
            for i in range(0, rows, _ENCODE_CHUNK)
        ]
        return {k: np.concatenate([np.asarray(c[k]) for c in chunks]) for k in chunks[0]}

    def serving_model(self) -> Any:
        raw = self.raw_inputs
        return keras.Model(inputs=raw, outputs=self.core(self.preprocess(raw)),
                           name="kfpkit_binary_classifier")  # fmt: skip


_ENCODE_CHUNK = 1 << 18


def build_parts(
    specs: Sequence[FeatureSpec],
    stats: Mapping[str, FeatureStats],
    hp: Hyperparameters,
    steps_per_execution: int = 1,
) -> ModelParts:
    """The two parts of a Keras functional MLP on raw inputs (one scalar input per feature,
    named after it)."""
    raw_inputs, encoded, core_inputs, embedded = {}, {}, {}, []
    for spec in specs:
        st = stats[spec.name]
        if spec.kind == NUMERIC:
            raw = keras.Input(shape=(), dtype="float32", name=spec.name)
            filled = FillMissing(st.mean, name=f"{spec.name}_fill")(raw)
            encoded[spec.name] = keras.layers.Normalization(
                mean=st.mean, variance=st.variance, axis=-1, name=f"{spec.name}_norm"
            )(filled)
            core_in = keras.Input(shape=(1,), dtype="float32", name=spec.name)
            embedded.append(core_in)
        else:
            raw = keras.Input(shape=(), dtype="string", name=spec.name)
            encoded[spec.name] = keras.layers.StringLookup(
                vocabulary=list(st.vocabulary), num_oov_indices=1, name=f"{spec.name}_lookup"
            )(raw)
            core_in = keras.Input(shape=(), dtype="int64", name=spec.name)
            size = len(st.vocabulary) + 1
            dim = hp.embedding_dim or min(16, math.ceil(math.sqrt(size)))
            embedded.append(keras.layers.Embedding(size, dim, name=f"{spec.name}_embed")(core_in))
        raw_inputs[spec.name] = raw
        core_inputs[spec.name] = core_in
    preprocess = keras.Model(inputs=raw_inputs, outputs=encoded, name="preprocess")
    x = embedded[0] if len(embedded) == 1 else keras.layers.Concatenate(name="features")(embedded)
    for i, units in enumerate(hp.hidden_units):
        x = keras.layers.Dense(units, activation="relu", name=f"hidden_{i}")(x)
        if hp.dropout > 0:
            x = keras.layers.Dropout(hp.dropout, seed=hp.seed + i, name=f"dropout_{i}")(x)
    # float32 output even under a mixed precision policy: a float16 sigmoid loses resolution.
    output = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name=OUTPUT_NAME)(x)
    core = keras.Model(inputs=core_inputs, outputs=output, name="core")
    _compile(core, hp, steps_per_execution)
    return ModelParts(preprocess=preprocess, core=core, raw_inputs=raw_inputs)


def steps_per_call(rows: int, global_batch: int) -> int:
    """Batches run per call into the compiled training function: a small model's step is
    shorter than Python's per-step work, so one call per batch leaves the cores idle
    between steps (measured: 1.6-1.9x the examples/s). An epoch still ends on time;
    callbacks see every ``n``-th batch."""
    steps = -(-rows // global_batch)
    return max(1, min(_MAX_STEPS_PER_EXECUTION, steps // 4))


_MAX_STEPS_PER_EXECUTION = 64


def _compile(model: Any, hp: Hyperparameters, steps_per_execution: int = 1) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=hp.learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
        steps_per_execution=steps_per_execution,
    )


def build_model(
    specs: Sequence[FeatureSpec], stats: Mapping[str, FeatureStats], hp: Hyperparameters
) -> Any:
    """The whole model on raw inputs, compiled (what is exported; trained as one graph, it
    looks strings up in every batch: :func:`train` trains the parts instead)."""
    model = build_parts(specs, stats, hp).serving_model()
    _compile(model, hp)
    return model


@keras.saving.register_keras_serializable(package="kfpkit")
class FillMissing(keras.layers.Layer):
    """NaN (a null numeric value) -> the train mean, then a (batch, 1) column."""

    def __init__(self, fill_value: float, **kwargs: Any):
        super().__init__(**kwargs)
        self.fill_value = float(fill_value)

    def call(self, x: Any) -> Any:
        x = keras.ops.cast(x, self.compute_dtype)
        x = keras.ops.where(keras.ops.isnan(x), self.fill_value, x)
        return keras.ops.expand_dims(x, -1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape, 1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fill_value": self.fill_value}


def make_dataset(
    features: Mapping[str, np.ndarray],
    labels: np.ndarray | None,
    batch_size: int,
    shuffle_seed: int | None = None,
) -> Any:
    """An in-memory tf.data pipeline that works on whole batches.

    Only row indices go through the per-element stages (a full reshuffle each epoch costs a
    shuffle of int64s); each batch is then cut from the column tensors with one vectorized
    gather per column, in parallel with training (AUTOTUNE map and prefetch).
    """
    columns = {k: tf.constant(v) for k, v in features.items()}
    target = tf.constant(labels) if labels is not None else None
    rows = len(next(iter(features.values())))
    indices = tf.data.Dataset.range(rows)
    if shuffle_seed is not None:
        indices = indices.shuffle(rows, seed=shuffle_seed, reshuffle_each_iteration=True)

    def gather(idx: Any) -> Any:
        batch = {k: tf.gather(v, idx) for k, v in columns.items()}
        return batch if target is None else (batch, tf.gather(target, idx))

    dataset = indices.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    # Row indices, not files: shard by data when several workers read it.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


class EpochTimer(keras.callbacks.Callback):
    """Seconds spent training each epoch, validation excluded."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._start: float | None = None

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._start = time.perf_counter()

    def on_test_begin(self, logs: Any = None) -> None:
        self._stop()  # the epoch's validation starts: its training is done

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None


def export_model(model: Any, model_dir: str, version: int) -> str:
    """Exports ``<model_dir>/<version>`` (SavedModel, ``serving_default`` on raw inputs).

    Written under a temporary name first, so a crash never leaves a version folder that
    looks complete. On mounts that cannot rename folders (gcsfuse by default) it is copied
    instead, and a failure removes the copy.
    """
    os.makedirs(model_dir, exist_ok=True)
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise RuntimeError(f"model version folder {final!r} already exists")
    staging = os.path.join(model_dir, f".incomplete-{version}-{os.getpid()}")
    try:
        model.export(staging, format="tf_saved_model", verbose=False)
        try:
            os.rename(staging, final)
        except OSError:
            shutil.copytree(staging, final)
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def load_features(
    request: TrainRequest,
) -> tuple[list[FeatureSpec], dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Reads and checks both splits: (features, x_train, y_train, x_validation, y_validation)."""
    schema = load_schema_features(request.schema_path) if request.schema_path else None
    train_table = tabular.read_split(request.train_path, "train_data")
    specs = select_features(
        train_table.schema,
        schema,
        request.label_column,
        request.feature_columns,
        request.exclude_columns,
    )
    wanted = [s.name for s in specs] + [request.label_column]
    validation_table = tabular.read_split(request.validation_path, "validation_data", wanted)
    out: list[Any] = [specs]
    for table, split in ((train_table, "train_data"), (validation_table, "validation_data")):
        tabular.check_required(table, specs, split)
        out.append(tabular.feature_arrays(table, specs))
        out.append(tabular.binary_labels(table, request.label_column, split))
    if len(np.unique(out[2])) < 2:
        raise ValueError(f"train_data: label {request.label_column!r} has a single class")
    return tuple(out)  # type: ignore[return-value]


def train(request: TrainRequest, callbacks: Sequence[Any] = ()) -> TrainResult:
    """Trains, then exports the best epoch's weights (early stopping on validation loss).

    ``callbacks`` are extra Keras callbacks (a tuner's per-epoch reporting and pruning); a
    callback that sets ``model.stop_training`` ends the run early like early stopping does.
    """
    if request.model_version < 1:
        raise ValueError(f"model_version must be a positive integer, not {request.model_version}")
    hp = request.hyperparameters
    specs, x_train, y_train, x_val, y_val = load_features(request)
    stats = {s.name: feature_stats(s, x_train[s.name]) for s in specs}

    devices, tpu_resolver = strategies.detect_devices()
    choice = strategies.choose_strategy(devices, request.mixed_precision)
    _log.info("Devices %s -> %s, precision %s %s", devices, choice.name, choice.precision_policy,
              choice.note)  # fmt: skip
    strategy = strategies.make_strategy(choice, tpu_resolver)
    keras.utils.set_random_seed(hp.seed)
    keras.mixed_precision.set_global_policy(choice.precision_policy)
    try:
        replicas = strategy.num_replicas_in_sync
        global_batch = hp.batch_size * replicas  # batch_size is per replica
        with strategy.scope():
            parts = build_parts(specs, stats, hp, steps_per_call(len(y_train), global_batch))
        train_data = make_dataset(
            parts.encode(x_train), y_train, global_batch, shuffle_seed=hp.seed
        )
        validation_data = make_dataset(parts.encode(x_val), y_val, global_batch)
        timer = EpochTimer()
        stopper = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=hp.early_stopping_patience, restore_best_weights=True
        )
        history = parts.core.fit(
            train_data,
            validation_data=validation_data,
            epochs=hp.epochs,
            callbacks=[stopper, timer, *callbacks],
            shuffle=False,  # the dataset reshuffles its rows every epoch
            verbose=2,
        ).history
        with strategy.scope():
            model = parts.serving_model()
        if devices.is_chief:
            export_dir = export_model(model, request.model_dir, request.model_version)
        else:  # every worker must take part in saving; only the chief's copy is kept
            with tempfile.TemporaryDirectory() as scratch:
                export_dir = export_model(model, scratch, request.model_version)
    finally:
        keras.mixed_precision.set_global_policy("float32")

    best = int(np.argmin(history["val_loss"]))
    rows = len(y_train)
    metrics: dict[str, float | int] = {
        f"{prefix}{name}": float(history[f"{key}{name}"][best])
        for prefix, key in (("train_", ""), ("validation_", "val_"))
        for name in ("loss", "accuracy", "auc")
    }
    metrics.update(
        epochs_run=len(history["loss"]),
        best_epoch=best + 1,
        train_rows=rows,
        validation_rows=len(y_val),
        global_batch_size=global_batch,
        examples_per_second=round(rows * len(timer.seconds) / max(sum(timer.seconds), 1e-9), 1),
    )
    _log.info("TensorFlow %s, trained %s", tf.__version__, json.dumps(metrics))
    return TrainResult(
        export_dir=export_dir,
        features=specs,
        history={k: [float(v) for v in vs] for k, vs in history.items()},
        metrics=metrics,
        strategy=choice,
        replicas=replicas,
    )
