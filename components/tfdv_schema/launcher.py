"""Launcher of tfdv_schema: infers a schema from statistics, or takes the user's schema as is.

Run inside the tfdv image as
``python3 -m kfpkit.components.tfdv_schema.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

from kfpkit.runtime.executor import Executor, main
from kfpkit.tfdv.schema import schema_from, write_schema


def run(executor: Executor) -> None:
    schema, origin = schema_from(executor, executor.input("statistics"))
    write_schema(executor, schema, origin)


if __name__ == "__main__":
    main(run)
