"""Reads a TFDV schema (``schema.pbtxt``) with tensorflow_metadata's own proto.

The file is parsed into ``schema_pb2.Schema`` by ``google.protobuf.text_format``, so a
malformed schema, an unknown field or a bad enum value fails exactly as the proto says
(a ValueError naming the file and protobuf's parse error, with its line and column).
Training looks only at each ``feature``'s name, ``type``, ``presence.min_fraction``,
``int_domain.is_categorical`` and ``lifecycle_stage``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from kfpkit.tabular import CATEGORICAL, NUMERIC, FeatureSpec

SCHEMA_FILE = "schema.pbtxt"
# Features in these lifecycle stages are not meant for training.
_SKIPPED_STAGES = {"DEPRECATED", "DISABLED", "PLANNED", "ALPHA", "DEBUG_ONLY"}


@dataclass(frozen=True)
class SchemaFeature:
    name: str
    type: str  # FeatureType name: INT, FLOAT, BYTES (STRUCT and TYPE_UNKNOWN are refused)
    min_fraction: float
    int_categorical: bool
    lifecycle_stage: str

    def spec(self) -> FeatureSpec:
        """INT is numeric unless its int_domain says ``is_categorical: true`` (TFDV's flag)."""
        if self.type == "BYTES" or (self.type == "INT" and self.int_categorical):
            kind = CATEGORICAL
        elif self.type in ("INT", "FLOAT"):
            kind = NUMERIC
        else:
            raise ValueError(f"schema: feature {self.name!r} has type {self.type}, not trainable")
        return FeatureSpec(self.name, kind, required=self.min_fraction >= 1.0)


def parse_schema(text: str, source: str = "schema") -> schema_pb2.Schema:
    """``text`` as a ``Schema`` proto; ValueError naming ``source`` and the parse error."""
    try:
        return text_format.Parse(text, schema_pb2.Schema())
    except text_format.ParseError as e:
        raise ValueError(f"{source}: not a valid tensorflow_metadata Schema text proto: {e}") from e


def schema_features(schema: schema_pb2.Schema, source: str = "schema") -> dict[str, SchemaFeature]:
    """The trainable features a schema declares, by name."""
    features: dict[str, SchemaFeature] = {}
    for feature in schema.feature:
        if not feature.name:
            raise ValueError(f"{source}: a feature without a name")
        stage = schema_pb2.LifecycleStage.Name(feature.lifecycle_stage)
        if stage in _SKIPPED_STAGES:
            continue
        features[feature.name] = SchemaFeature(
            name=feature.name,
            type=schema_pb2.FeatureType.Name(feature.type),
            min_fraction=feature.presence.min_fraction,
            int_categorical=feature.int_domain.is_categorical,
            lifecycle_stage=stage,
        )
    if not features:
        raise ValueError(f"{source}: declares no trainable features")
    return features


def load_schema_features(path: str) -> dict[str, SchemaFeature]:
    """Features of the schema artifact at ``path`` (a directory holding schema.pbtxt, or the
    file itself)."""
    file = os.path.join(path, SCHEMA_FILE) if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise ValueError(f"schema: no {SCHEMA_FILE} at {path!r}")
    with open(file, encoding="utf-8") as f:
        return schema_features(parse_schema(f.read(), file), file)
