"""Launcher of tfdv_schema: infers a schema from statistics, or takes the user's schema as is.

Run inside the tfdv image as
``python3 -m kfpkit.components.tfdv_schema.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

from typing import Any

from tensorflow_metadata.proto.v0 import schema_pb2

from kfpkit.components.tfdv_schema.schema import (
    exclude_from_serving,
    infer_schema,
    summary_markdown,
)
from kfpkit.runtime.executor import Artifact, Executor, main, write_text_artifact
from kfpkit.tfdv import artifacts


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


def run(executor: Executor) -> None:
    schema, origin = schema_from(executor, executor.input("statistics"))
    write_schema(executor, schema, origin)


if __name__ == "__main__":
    main(run)
