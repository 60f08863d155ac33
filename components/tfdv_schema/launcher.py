"""Launcher of tfdv_schema: infers a schema from statistics, or takes the user's schema as is.

Run inside the tfdv image as
``python3 -m kfpkit.components.tfdv_schema.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

from kfpkit.components._runtime.executor import Executor, main, write_text_artifact
from kfpkit.components._tfdv import artifacts
from kfpkit.components.tfdv_schema.schema import (
    exclude_from_serving,
    infer_schema,
    summary_markdown,
)


def run(executor: Executor) -> None:
    given = executor.input("user_schema")
    statistics = executor.input("statistics")
    serving_excluded = list(executor.string_list_param("serving_excluded_features"))
    if given is not None and serving_excluded:
        raise ValueError(
            "serving_excluded_features applies to inferred schemas; a user_schema is used as "
            "is: declare its environments in the file"
        )
    if given is not None:
        schema = artifacts.load_schema(given.path, "user_schema")
        origin = f"given: {given.uri}"
    elif statistics is not None:
        stats = artifacts.load_statistics(statistics.path, "statistics")
        schema = infer_schema(
            stats,
            infer_feature_shape=bool(executor.param("infer_feature_shape", True)),
            max_string_domain_size=int(executor.param("max_string_domain_size", 100)),
            coded_strings_as_categories=bool(executor.param("coded_strings_as_categories", True)),
        )
        origin = f"inferred from {statistics.uri}"
        if serving_excluded:
            exclude_from_serving(schema, serving_excluded)
    else:
        raise ValueError("Give statistics to infer a schema from, or a user_schema")
    out = executor.output("schema")
    artifacts.write_proto_text(out.path, artifacts.SCHEMA_FILE, schema)
    out.metadata.update(
        {
            "file": artifacts.SCHEMA_FILE,
            "num_features": len(schema.feature),
            "origin": "given" if given is not None else "inferred",
        }
    )
    write_text_artifact(executor.output("summary").path, summary_markdown(schema, origin))


if __name__ == "__main__":
    main(run)
