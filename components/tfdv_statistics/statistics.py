"""Computes TFDV statistics of Parquet or CSV files with a Beam pipeline.

Parquet is read as Arrow record batches straight into ``tfdv.GenerateStatistics`` (no pandas,
no CSV); CSV goes through TFDV's own CSV decoder. Beam pipeline arguments pass through, so
the same step runs on the DirectRunner with several workers or on Dataflow.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import apache_beam as beam
import tensorflow_data_validation as tfdv
from apache_beam.io.parquetio import ReadAllFromParquetBatched
from apache_beam.options.pipeline_options import PipelineOptions
from tensorflow_data_validation.coders import csv_decoder
from tensorflow_data_validation.utils import slicing_util
from tensorflow_metadata.proto.v0 import statistics_pb2

from kfpkit.components._runtime.executor import path_to_uri
from kfpkit.components._tfdv import data_files
from kfpkit.components._tfdv.data_files import DataFiles

_log = logging.getLogger("kfpkit")


def runs_remotely(beam_args: Sequence[str]) -> bool:
    """True when the pipeline runs on workers that see object-store URIs, not local mounts."""
    return any(a.replace("=", " ").split()[-1] in ("DataflowRunner", "dataflow") for a in beam_args
               if a.startswith("--runner"))  # fmt: skip


def stats_options(
    columns: Sequence[str], slice_features: Sequence[str], num_top_values: int = 20
) -> tfdv.StatsOptions:
    unknown = [f for f in slice_features if f not in columns]
    if unknown:
        raise ValueError(f"slice_features {unknown} are not columns of the data: {list(columns)}")
    slicers = [slicing_util.get_feature_value_slicer({f: None}) for f in slice_features]
    return tfdv.StatsOptions(experimental_slice_functions=slicers or None,
                             num_top_values=num_top_values)  # fmt: skip


def compute_statistics(
    data: DataFiles,
    output_file: str,
    slice_features: Sequence[str] = (),
    beam_args: Sequence[str] = (),
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Runs the statistics pipeline; writes the binary proto to ``output_file`` and returns it.

    With slice features the result holds one dataset per slice value besides
    ``All Examples`` (TFDV's default slice).
    """
    options = stats_options(data.columns, slice_features)
    remote = runs_remotely(beam_args)
    paths = [path_to_uri(p) for p in data.paths] if remote else list(data.paths)
    target = path_to_uri(output_file) if remote else output_file
    _log.info("Statistics of %d %s file(s), Beam args %s", len(paths), data.format, beam_args)
    with beam.Pipeline(options=PipelineOptions(list(beam_args))) as pipeline:
        files = pipeline | "Files" >> beam.Create(paths)
        if data.format == data_files.PARQUET:
            batches = (
                files
                | "ReadParquet" >> ReadAllFromParquetBatched()
                | "ToListColumns" >> beam.FlatMap(data_files.as_tfdv_batch)
            )
        else:
            batches = (
                files
                | "ReadCSV" >> beam.io.ReadAllFromText(skip_header_lines=1)
                | "DecodeCSV" >> csv_decoder.DecodeCSV(column_names=list(data.columns))
            )
        _ = (
            batches
            | "GenerateStatistics" >> tfdv.GenerateStatistics(options)
            | "Write" >> tfdv.WriteStatisticsToBinaryFile(target)
        )
    stats = tfdv.load_stats_binary(output_file)
    if not stats.datasets or stats.datasets[0].num_examples == 0:
        raise ValueError(f"No examples were read from {list(data.paths)[:5]}")
    return stats
