"""File layout of the TFDV artifacts, and loading them with errors that name the bad input.

Layout (TFX's file names, so TFX tools read them): statistics ``FeatureStats.pb`` (binary
DatasetFeatureStatisticsList), schema ``schema.pbtxt``, anomalies ``anomalies.pbtxt`` (text).
An artifact's path is a directory holding its file; a plain file path is accepted on input.
"""

from __future__ import annotations

import os

import tensorflow_data_validation as tfdv
from google.protobuf import message, text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from kfpkit.runtime.executor import write_text_artifact

STATISTICS_FILE = "FeatureStats.pb"
SCHEMA_FILE = "schema.pbtxt"
ANOMALIES_FILE = "anomalies.pbtxt"


def _file_in(path: str, file_name: str, name: str) -> str:
    candidate = os.path.join(path, file_name) if os.path.isdir(path) else path
    if not os.path.isfile(candidate):
        raise ValueError(f"{name}: no {file_name} at {path!r}")
    return candidate


def load_statistics(path: str, name: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Statistics of an input artifact, restricted to TFDV's default slice (all examples)."""
    file = _file_in(path, STATISTICS_FILE, name)
    try:
        stats = tfdv.load_stats_binary(file)
    except message.DecodeError as e:
        raise ValueError(f"{name}: {file!r} is not a statistics proto: {e}") from e
    if not stats.datasets:
        raise ValueError(f"{name}: {file!r} holds no datasets")
    try:
        return default_slice(stats)
    except ValueError as e:
        raise ValueError(f"{name}: {file!r} has slices but no default slice: {e}") from e


def default_slice(
    stats: statistics_pb2.DatasetFeatureStatisticsList,
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """The ``All Examples`` dataset of sliced statistics (unsliced ones as they are)."""
    if len(stats.datasets) == 1:
        return stats
    return tfdv.get_slice_stats(stats, tfdv.constants.DEFAULT_SLICE_KEY)


def load_schema(path: str, name: str) -> schema_pb2.Schema:
    """A schema text proto; ValueError with the parser's message when it does not parse."""
    file = _file_in(path, SCHEMA_FILE, name)
    try:
        with open(file, encoding="utf-8") as f:
            schema = text_format.Parse(f.read(), schema_pb2.Schema())
    except (text_format.ParseError, UnicodeDecodeError) as e:
        raise ValueError(f"{name}: {file!r} is not a TFDV schema text proto: {e}") from e
    if not schema.feature and not schema.sparse_feature:
        raise ValueError(f"{name}: {file!r} declares no features")
    return schema


def statistics_metadata(
    stats: statistics_pb2.DatasetFeatureStatisticsList, source_format: str
) -> dict[str, object]:
    """The metadata of a statistics artifact (tfdv_statistics and tfdv_validate_splits)."""
    overall = stats.datasets[0]
    return {
        "file": STATISTICS_FILE,
        "num_examples": overall.num_examples,
        "num_features": len(overall.features),
        "slices": [d.name for d in stats.datasets],
        "source_format": source_format,
    }


def write_proto_text(directory: str, file_name: str, proto: message.Message) -> str:
    path = os.path.join(directory, file_name)
    write_text_artifact(path, text_format.MessageToString(proto))
    return path
