"""Tabular data shared by the train and evaluate components (train image only).

One contract between the two: a split is a directory of Parquet files (``data-*.parquet``, as
bigquery_split writes it, or any ``*.parquet``) or one Parquet file; a feature is numeric
(float32, nulls as NaN) or categorical (string, nulls as ""); the label is binary 0/1; a model
is a Keras-exported SavedModel in a numbered version folder (KServe's TensorFlow layout) whose
``serving_default`` signature takes one named raw tensor per feature.

Memory: :func:`iter_split` reads a split batch by batch (train and evaluate stream their
splits through it); :func:`read_split` reads one whole, for small splits only (about
``rows x columns x 8`` bytes plus the strings).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kfpkit.runtime.files import files_under
from kfpkit.runtime.model_versions import latest_version_dir

NUMERIC = "numeric"
CATEGORICAL = "categorical"
SERVING_SIGNATURE = "serving_default"
# Rows per call of a serving signature: bounded memory whatever the split size.
PREDICT_BATCH_ROWS = 8192
_PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class FeatureSpec:
    """One model input: its column, how it is encoded, and whether nulls are an error."""

    name: str
    kind: str  # NUMERIC or CATEGORICAL
    required: bool = False


def parquet_files(path: str, name: str) -> list[str]:
    """The Parquet files of a split; ValueError naming the input when there are none."""
    return files_under(path, _PARQUET_SUFFIXES, name, ".parquet")


def read_split(path: str, name: str, columns: Sequence[str] | None = None) -> pa.Table:
    """Reads a split (only ``columns`` when given); ValueError when a column is missing or
    the split has no rows."""
    files = parquet_files(path, name)
    try:
        dataset = pq.ParquetDataset(files)
        available = set(dataset.schema.names)
        if columns is not None:
            missing = [c for c in columns if c not in available]
            if missing:
                raise ValueError(f"{name}: column(s) {missing} not in the data at {path!r}")
        table = dataset.read(columns=list(columns) if columns is not None else None)
    except pa.ArrowInvalid as e:
        raise ValueError(f"{name}: cannot read Parquet at {path!r}: {e}") from e
    if table.num_rows == 0:
        raise ValueError(f"{name}: the split at {path!r} has 0 rows")
    return table


def iter_split(
    path: str, name: str, columns: Sequence[str], batch_rows: int = 65_536
) -> Iterator[pa.Table]:
    """Reads a split's ``columns`` as tables of at most ``batch_rows`` rows, file by file
    (memory bounded by a batch); the same ValueErrors as :func:`read_split`, the column
    check before any row is read."""
    files = parquet_files(path, name)
    try:
        readers = [pq.ParquetFile(f) for f in files]
        for f, reader in zip(files, readers, strict=True):
            missing = [c for c in columns if c not in reader.schema_arrow.names]
            if missing:
                raise ValueError(f"{name}: column(s) {missing} not in the data at {f!r}")
        rows = 0
        for reader in readers:
            for batch in reader.iter_batches(batch_size=batch_rows, columns=list(columns)):
                rows += batch.num_rows
                if batch.num_rows:
                    yield pa.Table.from_batches([batch])
    except pa.ArrowInvalid as e:
        raise ValueError(f"{name}: cannot read Parquet at {path!r}: {e}") from e
    if rows == 0:
        raise ValueError(f"{name}: the split at {path!r} has 0 rows")


def kind_of_arrow_type(arrow_type: pa.DataType) -> str | None:
    """Feature kind inferred from a column type: numbers and booleans are numeric, strings
    categorical; None for types a flat feature cannot hold (lists, structs, timestamps...)."""
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return NUMERIC
    if pa.types.is_boolean(arrow_type) or pa.types.is_decimal(arrow_type):
        return NUMERIC
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return CATEGORICAL
    if pa.types.is_dictionary(arrow_type):
        return kind_of_arrow_type(arrow_type.value_type)
    return None


def check_required(table: pa.Table, specs: Sequence[FeatureSpec], split: str) -> None:
    """ValueError naming the column and the count when a required feature has nulls or NaNs."""
    for spec in specs:
        if not spec.required:
            continue
        column = table[spec.name]
        missing = column.null_count
        if pa.types.is_floating(column.type):
            missing += pc.sum(pc.is_nan(column.fill_null(0.0))).as_py() or 0
        if missing:
            raise ValueError(
                f"{split}: column {spec.name!r} has {missing} null/NaN value(s) but the schema "
                "requires it in every example (presence min_fraction 1)"
            )


def feature_array(table: pa.Table, spec: FeatureSpec) -> np.ndarray:
    """One column as the model input dtype: float32 (null -> NaN) or str (null -> "")."""
    column = table[spec.name]
    if spec.kind == CATEGORICAL:
        return categorical_text(table, spec).to_numpy(zero_copy_only=False).astype(object)
    if kind_of_arrow_type(column.type) != NUMERIC:
        raise ValueError(f"column {spec.name!r} of type {column.type} is not numeric")
    numbers = pc.cast(column, pa.float64()).fill_null(float("nan"))
    return numbers.to_numpy(zero_copy_only=False).astype(np.float32)


def categorical_text(table: pa.Table, spec: FeatureSpec) -> pa.ChunkedArray:
    """A categorical column as Arrow strings (null -> ""), what :func:`feature_array` gives."""
    column = table[spec.name]
    if kind_of_arrow_type(column.type) not in (NUMERIC, CATEGORICAL):
        raise ValueError(f"column {spec.name!r} of type {column.type} cannot be categorical")
    return pc.cast(column, pa.string()).fill_null("")


def feature_arrays(table: pa.Table, specs: Sequence[FeatureSpec]) -> dict[str, np.ndarray]:
    return {spec.name: feature_array(table, spec) for spec in specs}


def binary_labels(table: pa.Table, label: str, split: str) -> np.ndarray:
    """The label column as float32 0/1; ValueError when missing, null or not binary."""
    if label not in table.column_names:
        raise ValueError(f"{split}: label column {label!r} not in the data")
    column = table[label]
    if not (pa.types.is_integer(column.type) or pa.types.is_boolean(column.type)) and not (
        pa.types.is_floating(column.type)
    ):
        raise ValueError(f"{split}: label column {label!r} has type {column.type}, not 0/1")
    if column.null_count:
        raise ValueError(f"{split}: label column {label!r} has {column.null_count} null(s)")
    values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    distinct = np.unique(values)
    if not set(distinct.tolist()) <= {0.0, 1.0}:
        shown = ", ".join(f"{v:g}" for v in distinct[:10])
        raise ValueError(f"{split}: label column {label!r} is not binary 0/1; values: {shown}")
    return values.astype(np.float32)


class ServingModel:
    """A SavedModel called through its ``serving_default`` signature, as a server calls it."""

    def __init__(self, model_path: str, name: str = "model"):
        import tensorflow as tf

        self.path = latest_version_dir(model_path, name)
        self._tf = tf
        self._loaded = tf.saved_model.load(self.path)  # keep a reference: it owns the variables
        try:
            self._signature = self._loaded.signatures[SERVING_SIGNATURE]
        except KeyError:
            raise ValueError(
                f"{name}: {self.path!r} has no {SERVING_SIGNATURE!r} signature"
            ) from None
        inputs = self._signature.structured_input_signature[1]
        self.feature_specs = [
            FeatureSpec(key, CATEGORICAL if spec.dtype == tf.string else NUMERIC)
            for key, spec in sorted(inputs.items())
        ]
        outputs = list(self._signature.structured_outputs)
        if len(outputs) != 1:
            raise ValueError(f"{name}: expected one output in the signature, found {outputs}")
        self.output_name = outputs[0]

    def predict(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """Probabilities (float64, one per row) for raw feature arrays."""
        rows = len(next(iter(features.values())))
        parts = []
        for start in range(0, rows, PREDICT_BATCH_ROWS):
            batch = {
                spec.name: self._tf.constant(
                    features[spec.name][start : start + PREDICT_BATCH_ROWS]
                )
                for spec in self.feature_specs
            }
            out = self._signature(**batch)[self.output_name]
            parts.append(out.numpy().reshape(-1))
        return np.concatenate(parts).astype(np.float64)

    def gradients(
        self, features: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Probabilities and their gradients with respect to every numeric input (float64, one
        per row); categorical inputs (strings) have none. Rows are independent, so the
        gradient of the batch's sum is each row's own."""
        tf = self._tf
        rows = len(next(iter(features.values())))
        numeric = [s.name for s in self.feature_specs if s.kind == NUMERIC]
        outputs: list[np.ndarray] = []
        grads: dict[str, list[np.ndarray]] = {name: [] for name in numeric}
        for start in range(0, rows, PREDICT_BATCH_ROWS):
            batch = {
                spec.name: tf.constant(features[spec.name][start : start + PREDICT_BATCH_ROWS])
                for spec in self.feature_specs
            }
            with tf.GradientTape() as tape:
                tape.watch([batch[name] for name in numeric])
                out = self._signature(**batch)[self.output_name]
            found = tape.gradient(out, [batch[name] for name in numeric])
            outputs.append(out.numpy().reshape(-1))
            for name, grad in zip(numeric, found, strict=True):
                grads[name].append(np.zeros(len(batch[name])) if grad is None else grad.numpy())
        return np.concatenate(outputs).astype(np.float64), {
            name: np.concatenate(parts).astype(np.float64) for name, parts in grads.items()
        }

    def predict_table(self, table: pa.Table) -> np.ndarray:
        missing = [s.name for s in self.feature_specs if s.name not in table.column_names]
        if missing:
            raise ValueError(f"the data lacks the model's input column(s) {missing}")
        return self.predict(feature_arrays(table, self.feature_specs))
