"""TFDV statistics of Arrow record batches, computed in this process (no Beam).

TFDV's statistics generators take record batches whose columns are lists; their
accumulators take the batches one at a time, so memory is bounded by a batch. The
statistics equal the Beam pipeline's, without its start-up: the path for Parquet files
(``tfdv_statistics``) and for tables already in memory (served traffic).
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import statistics_pb2

from kfpkit.tfdv import data_files

# Rows per batch handed to the generators: large enough that per-batch overhead vanishes,
# small enough to bound memory.
BATCH_ROWS = 65_536


def statistics_of_batches(
    batches: Iterable[pa.RecordBatch], options: tfdv.StatsOptions | None = None
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Statistics of flat record batches (one value per row and column; nulls are missing)."""
    options = options or tfdv.StatsOptions()
    generators = stats_impl.get_generators(options, in_memory=True)
    accumulators = [g.create_accumulator() for g in generators]
    for record_batch in batches:
        batch = pa.RecordBatch.from_arrays(
            [data_files.as_list_column(c) for c in record_batch.columns],
            record_batch.schema.names,
        )
        accumulators = [
            g.add_input(a, batch) for g, a in zip(generators, accumulators, strict=True)
        ]
    return stats_impl.extract_statistics_output(accumulators, generators)


def statistics_of_table(
    table: pa.Table, options: tfdv.StatsOptions | None = None
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Statistics of a table's columns, :data:`BATCH_ROWS` rows at a time."""
    return statistics_of_batches(table.to_batches(max_chunksize=BATCH_ROWS), options)
