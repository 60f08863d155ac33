"""Computes TFDV statistics of Parquet or CSV files with a Beam pipeline.

Parquet is read as Arrow record batches straight into ``tfdv.GenerateStatistics`` (no pandas,
no CSV); CSV goes through TFDV's own CSV decoder. Beam pipeline arguments pass through, so
the same step runs on the DirectRunner with several workers or on Dataflow.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import apache_beam as beam
import tensorflow_data_validation as tfdv
from apache_beam.io.parquetio import ReadAllFromParquetBatched
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from tensorflow_data_validation.coders import csv_decoder
from tensorflow_data_validation.utils import slicing_util
from tensorflow_metadata.proto.v0 import statistics_pb2

from kfpkit.components._runtime.executor import path_to_uri
from kfpkit.components._tfdv import data_files
from kfpkit.components._tfdv.data_files import DataFiles

_log = logging.getLogger("kfpkit")


def runs_remotely(beam_args: Sequence[str]) -> bool:
    """True when the pipeline runs on workers that see object-store URIs, not local mounts.

    Beam parses the arguments itself, so ``--runner=X`` and ``--runner X`` both count.
    """
    runner = PipelineOptions(list(beam_args)).view_as(StandardOptions).runner or ""
    return runner.lower().removesuffix("runner") == "dataflow"


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
    return compute_split_statistics({"data": (data, output_file)}, slice_features, beam_args)[
        "data"
    ]


def compute_split_statistics(
    splits: Mapping[str, tuple[DataFiles, str]],
    slice_features: Sequence[str] = (),
    beam_args: Sequence[str] = (),
) -> dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
    """Statistics of several datasets in ONE Beam pipeline: split name -> (files, output file).

    One pipeline, not one per split: the splits' branches share the runner's start-up and
    its workers, as TFX's StatisticsGen does for all splits of an ExampleGen.
    """
    if not splits:
        raise ValueError("No datasets to compute statistics of")
    remote = runs_remotely(beam_args)
    with beam.Pipeline(options=PipelineOptions(list(beam_args))) as pipeline:
        for name, (data, output_file) in splits.items():
            options = stats_options(data.columns, slice_features)
            paths = [path_to_uri(p) for p in data.paths] if remote else list(data.paths)
            target = path_to_uri(output_file) if remote else output_file
            _log.info("Statistics of %s: %d %s file(s), Beam args %s", name, len(paths),
                      data.format, beam_args)  # fmt: skip
            files = pipeline | f"Files[{name}]" >> beam.Create(paths)
            if data.format == data_files.PARQUET:
                batches = (
                    files
                    | f"ReadParquet[{name}]" >> ReadAllFromParquetBatched()
                    | f"ToListColumns[{name}]" >> beam.FlatMap(data_files.as_tfdv_batch)
                )
            else:
                batches = (
                    files
                    | f"ReadCSV[{name}]" >> beam.io.ReadAllFromText(skip_header_lines=1)
                    | f"DecodeCSV[{name}]" >> csv_decoder.DecodeCSV(column_names=list(data.columns))
                )
            _ = (
                batches
                | f"GenerateStatistics[{name}]" >> tfdv.GenerateStatistics(options)
                | f"Write[{name}]" >> tfdv.WriteStatisticsToBinaryFile(target)
            )
    results = {}
    for name, (data, output_file) in splits.items():
        stats = tfdv.load_stats_binary(output_file)
        if not stats.datasets or stats.datasets[0].num_examples == 0:
            raise ValueError(f"No examples were read from {list(data.paths)[:5]}")
        results[name] = stats
    return results
