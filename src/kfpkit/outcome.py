"""What a run's outcome is, from KFP's final status and the run's folder: pure functions, shared by
record_outcome (the exit handler) and kfpkit run (a run stopped by a signal)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from kfpkit.runtime.executor import FAILURE_RECORD

SUCCEEDED = "SUCCEEDED"
EXECUTOR_OUTPUT = "executor_output.json"
# Vertex AI and the KFP backend: "... The failed tasks are: [train, evaluate]."
_FAILED_TASKS = re.compile(r"failed tasks(?: are)?:?\s*\[([^\]]*)\]", re.IGNORECASE)
# Folders of a local run that are not steps: the exit handler's own step, and kfp.local's.
_NOT_STEPS = {".kfp_cache"}


@dataclass
class Outcome:
    state: str
    succeeded: bool
    failed_steps: list[str] = field(default_factory=list)
    finished_steps: list[str] = field(default_factory=list)
    step_errors: dict[str, str] = field(default_factory=dict)
    error_message: str = ""
    pipeline_name: str = ""
    run_name: str = ""
    recorded_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def failed_tasks_in_message(message: str) -> list[str]:
    """Task names a Vertex AI / KFP error message lists as failed; [] when it lists none."""
    match = _FAILED_TASKS.search(message or "")
    if not match:
        return []
    return [n.strip().strip("'\"") for n in match.group(1).split(",") if n.strip().strip("'\"")]


def steps_in_run_folder(run_dir: str, own_step: str) -> tuple[list[str], dict[str, str]]:
    """Finished step folders of a local run, and failed ones with their error: a kfpkit step
    writes its executor output last and only on success, and a failure record on failure."""
    finished: list[str] = []
    failed: dict[str, str] = {}
    if not os.path.isdir(run_dir):
        return finished, failed
    for name in sorted(os.listdir(run_dir)):
        path = os.path.join(run_dir, name)
        if name == own_step or name in _NOT_STEPS or not os.path.isdir(path):
            continue
        if os.path.isfile(os.path.join(path, EXECUTOR_OUTPUT)):
            finished.append(name)
        elif os.path.isfile(os.path.join(path, FAILURE_RECORD)):
            with open(os.path.join(path, FAILURE_RECORD), encoding="utf-8") as f:
                try:
                    failed[name] = str(json.load(f).get("error", ""))
                except (json.JSONDecodeError, AttributeError):
                    failed[name] = ""
    return finished, failed


def decide(status: dict[str, Any], run_dir: str, own_step: str) -> Outcome:
    """The outcome of the run whose exit handler received ``status`` (KFP's
    PipelineTaskFinalStatus as JSON); ``run_dir`` is the run's folder when it is reachable."""
    if not isinstance(status, dict):
        raise ValueError(f"status is not KFP's final status object: {status!r}")
    state = str(status.get("state") or "")
    if not state:
        raise ValueError(f"status has no state: {status!r}")
    error = status.get("error") or {}
    message = str(error.get("message", "") if isinstance(error, dict) else error)
    finished, step_errors = steps_in_run_folder(run_dir, own_step) if run_dir else ([], {})
    succeeded = state == SUCCEEDED
    failed = [] if succeeded else failed_tasks_in_message(message) or sorted(step_errors)
    return Outcome(
        state=state,
        succeeded=succeeded,
        failed_steps=failed,
        finished_steps=finished,
        step_errors=step_errors,
        error_message=message,
    )
