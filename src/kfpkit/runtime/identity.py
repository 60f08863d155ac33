"""A step's identity: stable across restarts of the same step, different for every step.

Remote work (BigQuery jobs, Katib Experiments, InferenceServices) is named after it, so a
restarted step finds what its previous attempt started instead of starting it twice.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def step_key(payload: Any, length: int = 16) -> str:
    """Lower-case hex digest of ``payload`` (any JSON-serializable value), ``length`` chars."""
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return digest[:length]


def executor_identity(raw_executor_input: dict[str, Any]) -> dict[str, Any]:
    """What identifies one step of one run: its inputs and its output URIs.

    Output artifact URIs contain the pipeline run and the task, so two runs (or two tasks of
    one run) never share an identity, while a retried step keeps its own.
    """
    outputs = raw_executor_input.get("outputs", {})
    uris = sorted(
        a.get("uri", "")
        for entry in outputs.get("artifacts", {}).values()
        for a in entry.get("artifacts", [])
    )
    files = sorted(p.get("outputFile", "") for p in outputs.get("parameters", {}).values())
    return {"inputs": raw_executor_input.get("inputs", {}), "outputs": uris, "files": files}
