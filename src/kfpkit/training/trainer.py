"""Trains a binary classifier on tabular Parquet splits and exports it for serving.

Pure runtime (no kfp): the launcher turns the executor input into a :class:`TrainRequest`
and records what :func:`train` returns. The exported model takes raw features: numeric
columns are standardized and categorical columns looked up and embedded inside the model,
with statistics and vocabularies computed on the train split only.

The splits are streamed (:mod:`kfpkit.training.inputs`): one pass computes the statistics,
then every epoch reads the Parquet files again, a row group at a time, so memory does not
grow with the number of rows.
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
import pyarrow.parquet as pq
import tensorflow as tf

from kfpkit import tabular

# the hyperparameters and their rules are pure code, shared with katib_tune (no TensorFlow)
from kfpkit.hyperparameters import Hyperparameters
from kfpkit.runtime.model_versions import FIRST_VERSION
from kfpkit.tabular import NUMERIC, FeatureSpec
from kfpkit.training import inputs
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
    model_version: int = FIRST_VERSION
    mixed_precision: bool = False
    # seconds to wait for every worker of a multi-worker TF_CONFIG (kfpkit.training.distributed)
    worker_timeout: float = 600.0


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


def stats_of_summary(spec: FeatureSpec, summary: inputs.Summary) -> FeatureStats:
    """A feature's statistics from its streamed summary; ValueError when it has no values."""
    if isinstance(summary, inputs.NumericSummary):
        if summary.count == 0:
            raise ValueError(f"train_data: numeric column {spec.name!r} has no values")
        return FeatureStats(mean=summary.mean, variance=summary.variance)
    vocabulary = summary.most_frequent(MAX_VOCABULARY)
    if not vocabulary:
        raise ValueError(f"train_data: categorical column {spec.name!r} has no values")
    return FeatureStats(vocabulary=vocabulary)


def feature_stats(spec: FeatureSpec, values: np.ndarray) -> FeatureStats:
    """The same statistics of an in-memory feature array."""
    return stats_of_summary(spec, inputs.summaries_of([spec], {spec.name: values})[spec.name])


@dataclass
class ModelParts:
    """The model in two parts: ``preprocess`` (raw features -> encoded: missing values
    filled, numeric standardized, strings looked up; no trainable weights) and ``core``
    (encoded -> probability: embeddings and the MLP, compiled). Training runs on ``core``,
    with ``preprocess`` mapped over the batches in the input pipeline (in parallel with the
    training steps); :meth:`serving_model` joins the parts, so the exported model still
    takes raw features. Encoding outside the trained graph also keeps string lookups off
    accelerators (a TPU cannot run them)."""

    preprocess: Any
    core: Any
    raw_inputs: dict[str, Any]  # the preprocess model's inputs, by feature name

    def serving_model(self) -> Any:
        raw = self.raw_inputs
        return keras.Model(inputs=raw, outputs=self.core(self.preprocess(raw)),
                           name="kfpkit_binary_classifier")  # fmt: skip


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


class StopWhenFlat(keras.callbacks.Callback):
    """Early stopping on a metric to maximize (validation AUC): stops after ``patience``
    epochs in a row that together raised it by no more than ``min_delta`` since the last
    epoch that did; at the end restores the weights of the best epoch (any gain counts for
    that: a small gain is not thrown away, it only does not pay for more epochs).

    Unlike Keras' ``EarlyStopping`` with ``min_delta``, which keeps the last epoch that gained
    more than ``min_delta`` and discards better epochs after it.
    """

    def __init__(self, monitor: str, patience: int, min_delta: float) -> None:
        super().__init__()
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.best = self.reference = -math.inf
        self.best_epoch = -1
        self.best_weights: Any = None
        self.wait = 0

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise RuntimeError(f"early stopping: the epoch logged no {self.monitor!r}")
        value = float(value)
        if value > self.best:
            self.best, self.best_epoch = value, epoch
            self.best_weights = self.model.get_weights()
        if value > self.reference + self.min_delta:
            self.reference, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.model.stop_training = True

    def on_train_end(self, logs: Any = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


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


@dataclass
class Inputs:
    """The checked splits: the features, their train statistics, each split's files and rows."""

    features: list[FeatureSpec]
    stats: dict[str, FeatureStats]
    train: inputs.SplitScan
    validation: inputs.SplitScan


def scan_inputs(request: TrainRequest) -> Inputs:
    """Reads both splits once, batch by batch: checks them (columns, required features, a
    binary label with both classes in train) and computes the train split's statistics."""
    schema = load_schema_features(request.schema_path) if request.schema_path else None
    first = tabular.parquet_files(request.train_path, "train_data")[0]
    try:
        columns = pq.ParquetFile(first).schema_arrow
    except (pa.ArrowInvalid, OSError) as e:
        raise ValueError(f"train_data: cannot read Parquet at {first!r}: {e}") from e
    specs = select_features(
        columns, schema, request.label_column, request.feature_columns, request.exclude_columns
    )
    label = request.label_column
    train_scan = inputs.scan_split(request.train_path, "train_data", specs, label, summarize=True)
    if len(train_scan.classes) < 2:
        raise ValueError(f"train_data: label {label!r} has a single class")
    stats = {s.name: stats_of_summary(s, train_scan.summaries[s.name]) for s in specs}
    validation_scan = inputs.scan_split(request.validation_path, "validation_data", specs, label)
    return Inputs(specs, stats, train_scan, validation_scan)


def train(request: TrainRequest, callbacks: Sequence[Any] = ()) -> TrainResult:
    """Trains, then exports the best epoch's weights (early stopping on validation AUC:
    :class:`StopWhenFlat` with ``early_stopping_patience`` and ``early_stopping_min_delta``).

    ``callbacks`` are extra Keras callbacks (a tuner's per-epoch reporting and pruning); a
    callback that sets ``model.stop_training`` ends the run early like early stopping does.
    One worker only: :func:`kfpkit.training.run.train` chooses between this and the workers
    of ``$TF_CONFIG``.
    """
    if request.model_version < 1:
        raise ValueError(f"model_version must be a positive integer, not {request.model_version}")
    workers = strategies.workers_in(os.environ.get("TF_CONFIG"))[0]
    if workers > 1:  # model.fit cannot train multi-worker on Keras 3 (keras-team/keras#20585)
        raise RuntimeError(
            f"TF_CONFIG names {workers} workers: kfpkit.training.run.train trains them"
        )
    hp = request.hyperparameters
    data = scan_inputs(request)
    specs, label = data.features, request.label_column

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
            parts = build_parts(
                specs, data.stats, hp, steps_per_call(data.train.rows, global_batch)
            )
        train_data = inputs.make_dataset(
            data.train.files, specs, label, global_batch, shuffle_seed=hp.seed,
            encode=parts.preprocess,
        )  # fmt: skip
        validation_data = inputs.make_dataset(
            data.validation.files, specs, label, global_batch, encode=parts.preprocess
        )
        timer = EpochTimer()
        stopper = StopWhenFlat("val_auc", hp.early_stopping_patience, hp.early_stopping_min_delta)
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

    best = stopper.best_epoch  # the restored epoch
    rows = data.train.rows
    metrics: dict[str, float | int] = {
        f"{prefix}{name}": float(history[f"{key}{name}"][best])
        for prefix, key in (("train_", ""), ("validation_", "val_"))
        for name in ("loss", "accuracy", "auc")
    }
    metrics.update(
        epochs_run=len(history["loss"]),
        best_epoch=best + 1,
        train_rows=rows,
        validation_rows=data.validation.rows,
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
