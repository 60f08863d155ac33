"""Launcher of record_outcome: writes how the run ended as an artifact.

Run inside the core image as
``python3 -m kfpkit.components.record_outcome.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

import datetime
import json
import logging
import os

from kfpkit.outcome import decide
from kfpkit.runtime.executor import Executor, main, write_text_artifact

_log = logging.getLogger("kfpkit")
OUTCOME_FILE = "outcome.json"


def run(executor: Executor) -> None:
    out = executor.output("outcome")
    # <root>/<run>/<this step>/outcome: the run's folder holds its steps' folders (kfp.local,
    # and a cluster's pipeline root mounted the same way)
    own_step_dir = os.path.dirname(out.path)
    result = decide(
        executor.json_param("status", {}),
        run_dir=os.path.dirname(own_step_dir),
        own_step=os.path.basename(own_step_dir),
    )
    result.pipeline_name = executor.param("pipeline_name", "")
    result.run_name = executor.param("run_name", "")
    result.recorded_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    doc = result.to_dict()
    write_text_artifact(os.path.join(out.path, OUTCOME_FILE), json.dumps(doc, indent=2) + "\n")
    out.metadata.update(doc)
    if result.succeeded:
        _log.info("Run %s succeeded", result.run_name or "(unnamed)")
    else:
        _log.warning(
            "Run %s ended %s; failed steps: %s; %s",
            result.run_name or "(unnamed)",
            result.state,
            ", ".join(result.failed_steps) or "(not named)",
            result.error_message,
        )


if __name__ == "__main__":
    main(run)
