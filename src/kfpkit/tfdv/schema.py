"""Infers a TFDV schema from statistics, and summarizes a schema for people; the schema
step's input and outputs (:func:`schema_from`, :func:`write_schema`), shared by tfdv_schema
and tfdv_validate_splits."""

from __future__ import annotations

from typing import Any

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from kfpkit.runtime.executor import Artifact, Executor, write_text_artifact
from kfpkit.tfdv import artifacts

_MAX_DOMAIN_VALUES_SHOWN = 12


def infer_schema(
    stats: statistics_pb2.DatasetFeatureStatisticsList,
    infer_feature_shape: bool = True,
    max_string_domain_size: int = 100,
    coded_strings_as_categories: bool = True,
) -> schema_pb2.Schema:
    """TFDV's schema inference: types, presence, shapes, string domains of small vocabularies.

    TFDV gives string features whose values all parse as integers (codes such as "01") an
    integer range, which lets an unseen code inside the range pass. With
    ``coded_strings_as_categories`` such a feature with at most ``max_string_domain_size``
    values gets the list of its values as domain instead.
    """
    if max_string_domain_size < 1:
        raise ValueError(f"max_string_domain_size must be >= 1, got {max_string_domain_size}")
    schema = tfdv.infer_schema(
        stats,
        infer_feature_shape=infer_feature_shape,
        max_string_domain_size=max_string_domain_size,
    )
    if coded_strings_as_categories:
        _coded_strings_as_categories(schema, stats.datasets[0], max_string_domain_size)
    return schema


def _coded_strings_as_categories(
    schema: schema_pb2.Schema,
    dataset: statistics_pb2.DatasetFeatureStatistics,
    max_size: int,
) -> None:
    by_name = {".".join(f.path.step) or f.name: f for f in dataset.features}
    for feature in schema.feature:
        stats = by_name.get(feature.name)
        if (
            feature.type != schema_pb2.BYTES
            or feature.WhichOneof("domain_info") != "int_domain"
            or stats is None
        ):
            continue
        buckets = stats.string_stats.rank_histogram.buckets
        # The rank histogram lists every value only when it is not truncated.
        if (
            not 0 < stats.string_stats.unique <= max_size
            or len(buckets) != stats.string_stats.unique
        ):
            continue
        feature.ClearField("int_domain")
        feature.string_domain.value.extend(sorted(b.label for b in buckets))


TRAINING = "TRAINING"
SERVING = "SERVING"


def exclude_from_serving(schema: schema_pb2.Schema, features: list[str]) -> None:
    """Declares TRAINING and SERVING environments, ``features`` (e.g. the label) absent in
    SERVING, so serving data validated with ``environment="SERVING"`` may lack them."""
    names = {f.name for f in schema.feature}
    unknown = sorted(set(features) - names)
    if unknown:
        raise ValueError(f"serving_excluded_features {unknown} are not features of the schema")
    for env in (TRAINING, SERVING):
        if env not in schema.default_environment:
            schema.default_environment.append(env)
    for feature in schema.feature:
        if feature.name in features and SERVING not in feature.not_in_environment:
            feature.not_in_environment.append(SERVING)


def _domain(schema: schema_pb2.Schema, feature: schema_pb2.Feature) -> str:
    kind = feature.WhichOneof("domain_info")
    if kind == "domain":
        named = next((d for d in schema.string_domain if d.name == feature.domain), None)
        values = list(named.value) if named else []
    elif kind == "string_domain":
        values = list(feature.string_domain.value)
    elif kind == "int_domain":
        d = feature.int_domain
        return f"int [{d.min if d.HasField('min') else ''}, {d.max if d.HasField('max') else ''}]"
    elif kind == "float_domain":
        d = feature.float_domain
        return f"float [{d.min if d.HasField('min') else ''}, {d.max if d.HasField('max') else ''}]"
    else:
        return ""
    shown = ", ".join(values[:_MAX_DOMAIN_VALUES_SHOWN])
    more = f", ... ({len(values)} values)" if len(values) > _MAX_DOMAIN_VALUES_SHOWN else ""
    return f"{{{shown}{more}}}"


def _presence(feature: schema_pb2.Feature) -> str:
    if feature.presence.min_fraction >= 1.0:
        return "required"
    return f"optional (min {feature.presence.min_fraction:g})"


def _shape(feature: schema_pb2.Feature) -> str:
    if feature.HasField("shape"):
        return "[" + ",".join(str(d.size) for d in feature.shape.dim) + "]" or "scalar"
    if feature.HasField("value_count"):
        return f"{feature.value_count.min}..{feature.value_count.max} values"
    return "variable"


def summary_markdown(schema: schema_pb2.Schema, origin: str) -> str:
    """A Markdown table of the schema's features, for the KFP UI."""
    excluded = sorted(f.name for f in schema.feature if SERVING in f.not_in_environment)
    lines = [
        f"# Schema ({origin})",
        "",
        f"{len(schema.feature)} features."
        + (f" Not expected in SERVING: {', '.join(excluded)}." if excluded else ""),
        "",
        "| Feature | Type | Presence | Shape | Domain |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in sorted(schema.feature, key=lambda f: f.name):
        cells = [f.name, schema_pb2.FeatureType.Name(f.type), _presence(f), _shape(f),
                 _domain(schema, f)]  # fmt: skip
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def schema_from(executor: Executor, statistics: Any) -> tuple[schema_pb2.Schema, str]:
    """The user's schema when given, else one inferred from ``statistics`` (an input
    artifact, or statistics already computed in this step): (schema, where it came from)."""
    given = executor.input("user_schema")
    serving_excluded = list(executor.string_list_param("serving_excluded_features"))
    if given is not None and serving_excluded:
        raise ValueError(
            "serving_excluded_features applies to inferred schemas; a user_schema is used as "
            "is: declare its environments in the file"
        )
    if given is not None:
        return artifacts.load_schema(given.path, "user_schema"), f"given: {given.uri}"
    if statistics is None:
        raise ValueError("Give statistics to infer a schema from, or a user_schema")
    if isinstance(statistics, Artifact):
        origin = f"inferred from {statistics.uri}"
        statistics = artifacts.load_statistics(statistics.path, "statistics")
    else:
        origin = "inferred from the statistics computed in this step"
    schema = infer_schema(
        statistics,
        infer_feature_shape=bool(executor.param("infer_feature_shape", True)),
        max_string_domain_size=int(executor.param("max_string_domain_size", 100)),
        coded_strings_as_categories=bool(executor.param("coded_strings_as_categories", True)),
    )
    if serving_excluded:
        exclude_from_serving(schema, serving_excluded)
    return schema, origin


def write_schema(executor: Executor, schema: schema_pb2.Schema, origin: str) -> None:
    out = executor.output("schema")
    artifacts.write_proto_text(out.path, artifacts.SCHEMA_FILE, schema)
    out.metadata.update(
        {
            "file": artifacts.SCHEMA_FILE,
            "num_features": len(schema.feature),
            "origin": "given" if origin.startswith("given") else "inferred",
        }
    )
    write_text_artifact(executor.output("summary").path, summary_markdown(schema, origin))
