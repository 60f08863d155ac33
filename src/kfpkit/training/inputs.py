"""The trainer's input: a Parquet split streamed into tf.data, batch by batch.

Memory does not grow with the number of rows: a split is read one Parquet row group at a
time (only the model's columns), and at most ``window_rows`` rows are held to shuffle them.
The train split's statistics (means, variances, vocabularies) are computed in one streamed
pass as well (:func:`scan_split`).

Shuffling, bounded: every epoch visits the row groups in a new seeded order and permutes the
rows of each window of ``window_rows`` rows (a split of at most that many rows is fully
reshuffled every epoch, as an in-memory shuffle would). Rows are not mixed across windows, so
a split sorted by something the label depends on and larger than a window is best written
shuffled (the split engines write rows in source order).

Sharding (several workers): worker ``i`` of ``n`` reads the ``i``-th of ``n`` contiguous,
equal row ranges of the split (to within one row), whole row groups where it can; see
:func:`shard_pieces`. Reusable outside ``fit``: :func:`make_dataset` takes the file list,
batch size and shard index/count and returns a plain ``tf.data.Dataset``.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kfpkit import tabular
from kfpkit.tabular import NUMERIC, FeatureSpec

# Rows held at once to shuffle: about 60 MB of Arrow data for the demo's 18 columns. A split of
# up to this many rows is reshuffled whole every epoch.
WINDOW_ROWS = 1 << 19
# Rows per record batch of the statistics pass.
SCAN_BATCH_ROWS = 1 << 16


@dataclass(frozen=True)
class Piece:
    """Rows ``[start, stop)`` of one row group of one Parquet file."""

    path: str
    row_group: int
    start: int
    stop: int

    @property
    def rows(self) -> int:
        return self.stop - self.start


def pieces_of(files: Sequence[str], name: str = "data") -> list[Piece]:
    """Every row group of ``files`` in order, from the files' footers (no data read)."""
    pieces = []
    for path in files:
        try:
            meta = pq.ParquetFile(path).metadata
        except (pa.ArrowInvalid, OSError) as e:
            raise ValueError(f"{name}: {path!r} is not a readable Parquet file: {e}") from e
        for group in range(meta.num_row_groups):
            rows = meta.row_group(group).num_rows
            if rows:
                pieces.append(Piece(path, group, 0, rows))
    return pieces


def shard_pieces(pieces: Sequence[Piece], index: int, count: int) -> list[Piece]:
    """The pieces of rows ``[index * N // count, (index + 1) * N // count)`` of the ``N`` rows
    of ``pieces`` taken in order: equal shards whatever the row group sizes."""
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard index {index} is not in [0, {count})")
    if count == 1:
        return list(pieces)
    total = sum(p.rows for p in pieces)
    low, high = index * total // count, (index + 1) * total // count
    out, offset = [], 0
    for p in pieces:
        start, stop = max(low, offset), min(high, offset + p.rows)
        if start < stop:
            base = p.start - offset
            out.append(Piece(p.path, p.row_group, base + start, base + stop))
        offset += p.rows
    return out


def table_batches(
    pieces: Sequence[Piece],
    columns: Sequence[str],
    batch_rows: int,
    rng: np.random.Generator | None = None,
    window_rows: int = WINDOW_ROWS,
) -> Iterator[pa.Table]:
    """Tables of ``batch_rows`` rows (the last one may have fewer): in file order without
    ``rng``; with it, the pieces in a random order and the rows permuted per window."""
    order = list(pieces) if rng is None else [pieces[i] for i in rng.permutation(len(pieces))]
    files: dict[str, pq.ParquetFile] = {}
    pending: list[pa.Table] = []
    pending_rows = 0

    def cut(final: bool) -> Iterator[pa.Table]:
        nonlocal pending, pending_rows
        window = pa.concat_tables(pending)
        if rng is not None:
            window = window.take(pa.array(rng.permutation(window.num_rows)))
        end = window.num_rows if final else window.num_rows // batch_rows * batch_rows
        for start in range(0, end, batch_rows):
            yield window.slice(start, min(batch_rows, end - start))
        rest = window.slice(end)
        pending, pending_rows = ([rest] if rest.num_rows else []), rest.num_rows

    for piece in order:
        if piece.path not in files:
            files[piece.path] = pq.ParquetFile(piece.path)
        group = files[piece.path].read_row_group(piece.row_group, columns=list(columns))
        pending.append(group.slice(piece.start, piece.rows))
        pending_rows += piece.rows
        if pending_rows >= window_rows:
            yield from cut(final=False)
    if pending_rows:
        yield from cut(final=True)


def make_dataset(
    files: Sequence[str],
    specs: Sequence[FeatureSpec],
    label: str,
    batch_size: int,
    *,
    shard_index: int = 0,
    shard_count: int = 1,
    shuffle_seed: int | None = None,
    window_rows: int = WINDOW_ROWS,
    encode: Callable[[Any], Any] | None = None,
) -> Any:
    """A ``tf.data.Dataset`` of ``(features, labels)`` batches read from Parquet ``files``.

    ``features`` maps each spec's name to a float32 (null -> NaN) or string (null -> "")
    vector, ``labels`` is float32 0/1; ``encode`` (e.g. the model's preprocessing part) is
    mapped over the features in parallel. ``shuffle_seed`` None reads in file order (for
    validation); else each iteration (epoch) reshuffles with seed ``(shuffle_seed, epoch)``.
    The data is expected checked (:func:`scan_split`): a bad value here fails the iteration.
    The cardinality (batches of this shard) is set, so ``fit`` knows an epoch's length.
    """
    import tensorflow as tf

    pieces = shard_pieces(pieces_of(files), shard_index, shard_count)
    rows = sum(p.rows for p in pieces)
    if rows == 0:
        raise ValueError(f"shard {shard_index} of {shard_count} of {list(files)[:3]} has no rows")
    columns = list(dict.fromkeys([*(s.name for s in specs), label]))
    epochs = itertools.count()

    def generate() -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
        rng = None if shuffle_seed is None else np.random.default_rng([shuffle_seed, next(epochs)])
        for table in table_batches(pieces, columns, batch_size, rng, window_rows):
            yield tabular.feature_arrays(table, specs), tabular.binary_labels(table, label, "data")

    signature = (
        {
            s.name: tf.TensorSpec([None], tf.float32 if s.kind == NUMERIC else tf.string, s.name)
            for s in specs
        },
        tf.TensorSpec([None], tf.float32, label),
    )
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(math.ceil(rows / batch_size)))
    if encode is not None:
        dataset = dataset.map(
            lambda x, y: (encode(x), y), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
    options = tf.data.Options()
    # Sharded by the reader (shard_index/count), not by tf.data (which cannot split a
    # generator's output without reading it all on every worker).
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


@dataclass
class NumericSummary:
    """Count, mean and sum of squared deviations of the finite values seen, merged batch by
    batch (Chan et al.'s pairwise update: no loss of precision with large means)."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, values: np.ndarray) -> None:
        finite = values[np.isfinite(values)].astype(np.float64)
        n = finite.size
        if n == 0:
            return
        mean = float(finite.mean())
        m2 = float(((finite - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total

    @property
    def variance(self) -> float:
        return self.m2 / self.count if self.count else 0.0


@dataclass
class CategoricalSummary:
    """How often each non-empty value occurs (memory grows with distinct values, not rows)."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, values: pa.Array) -> None:
        for item in pc.value_counts(values).to_pylist():
            if item["values"] != "":
                self.counts[item["values"]] += item["counts"]

    def most_frequent(self, limit: int) -> tuple[str, ...]:
        """The ``limit`` most frequent values, ties in value order."""
        ranked = sorted(self.counts.items(), key=lambda vc: (-vc[1], vc[0]))
        return tuple(v for v, _ in ranked[:limit])


Summary = NumericSummary | CategoricalSummary


def summary_for(spec: FeatureSpec) -> Summary:
    return NumericSummary() if spec.kind == NUMERIC else CategoricalSummary()


def add_to_summary(summary: Summary, table: pa.Table, spec: FeatureSpec) -> None:
    if isinstance(summary, NumericSummary):
        summary.add(tabular.feature_array(table, spec))
    else:
        summary.add(tabular.categorical_text(table, spec))


@dataclass
class SplitScan:
    """What one streamed pass over a split found."""

    files: list[str]
    rows: int
    classes: set[float]
    summaries: dict[str, Summary]


def scan_split(
    path: str,
    name: str,
    specs: Sequence[FeatureSpec],
    label: str,
    summarize: bool = False,
) -> SplitScan:
    """Reads a split once, batch by batch: checks every batch (required features present,
    label binary: ValueError naming the split and column) and, with ``summarize``, the
    features' statistics."""
    files = tabular.parquet_files(path, name)
    columns = list(dict.fromkeys([*(s.name for s in specs), label]))
    summaries: dict[str, Summary] = {s.name: summary_for(s) for s in specs} if summarize else {}
    rows, classes = 0, set()
    for table in tabular.iter_split(path, name, columns, SCAN_BATCH_ROWS):
        tabular.check_required(table, specs, name)
        classes.update(np.unique(tabular.binary_labels(table, label, name)).tolist())
        for spec in specs if summarize else ():
            add_to_summary(summaries[spec.name], table, spec)
        rows += table.num_rows
    return SplitScan(files, rows, classes, summaries)


def summaries_of(
    specs: Sequence[FeatureSpec], features: Mapping[str, np.ndarray]
) -> dict[str, Summary]:
    """The same summaries of in-memory feature arrays (as :func:`tabular.feature_arrays`
    returns them)."""
    out = {}
    for spec in specs:
        summary = summary_for(spec)
        values = features[spec.name]
        summary.add(values if spec.kind == NUMERIC else pa.array(values, pa.string()))
        out[spec.name] = summary
    return out
