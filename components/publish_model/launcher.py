"""Launcher of publish_model: copies a blessed model into the versioned serving directory.

Run inside the core image as
``python3 -m kfpkit.components.publish_model.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

import logging

from kfpkit.components.publish_model.publisher import publish
from kfpkit.runtime.executor import Executor, main, path_to_uri, uri_to_path

_log = logging.getLogger("kfpkit")


def run(executor: Executor) -> None:
    model = executor.required_input("model")
    destination = executor.param("destination", "")
    done = publish(model.uri, model.path, uri_to_path(destination) if destination else "")
    uri = path_to_uri(done.path)
    _log.info(
        "%s model version %d at %s", "Found" if done.reused else "Published", done.version, uri
    )
    executor.output("published_model").metadata.update(
        {
            "published_uri": uri,
            "version": done.version,
            "source": model.uri,
            "reused": done.reused,
        }  # fmt: skip
    )
    # what the model was trained with travels on (register_model records it as lineage)
    if isinstance(model.metadata.get("hyperparameters"), dict):
        executor.output("published_model").metadata["hyperparameters"] = model.metadata[
            "hyperparameters"
        ]
    executor.set_output_param("published_uri", uri)


if __name__ == "__main__":
    main(run)
