"""Launcher of resolve_model: the model version under an alias, or an explicit none.

Run inside the core image as
``python3 -m kfpkit.components.resolve_model.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

import logging

from kfpkit.registry.base import CHAMPION, STATISTICS_URI, check_alias, check_model_name
from kfpkit.registry.launching import registry_from, write_version
from kfpkit.runtime.executor import Executor, main

_log = logging.getLogger("kfpkit")


def run(executor: Executor) -> None:
    name = check_model_name(executor.param("model_name", ""))
    alias = check_alias(executor.param("alias", CHAMPION))
    version = registry_from(executor).get_by_alias(name, alias)
    if version is None:
        _log.info("No version of %s holds the alias %s", name, alias)
        write_version(executor.output("model_version"), None, name=name, alias=alias)
        outputs = {"found": False, "model_uri": "", "created_at": "", "age_days": -1.0,
                   "statistics_uri": ""}  # fmt: skip
    else:
        age_days = round(version.age_seconds() / 86400, 6)
        _log.info("%s@%s is version %s (%s, %.2f days old)", name, alias, version.version,
                  version.uri, age_days)  # fmt: skip
        write_version(executor.output("model_version"), version, alias=alias, age_days=age_days)
        outputs = {
            "found": True,
            "model_uri": version.uri,
            "created_at": version.created_at.isoformat(),
            "age_days": age_days,
            "statistics_uri": version.lineage.get(STATISTICS_URI, ""),
        }
    for key, value in outputs.items():
        executor.set_output_param(key, value)


if __name__ == "__main__":
    main(run)
