"""One pipeline run as every experiment store reports it, and the side-by-side comparison.

Names are the same on every backend, so runs of one pipeline compare whatever ran them:

- parameters: the pipeline's inputs by their own names (``tuning_trials``); a step's output
  parameters as ``<step>/<output>`` (``katib-tune/best_hyperparameters``); a Model
  artifact's hyperparameters as ``<step>/hyperparameters/<name>``;
- metrics: every number of every ``system.Metrics`` artifact as ``<step>/<key>``
  (``evaluate/auc``, per slice ``evaluate/SEX:1/auc``), plus ``run/seconds`` locally;
- artifacts: every output artifact's URI under ``<step>/<output>``.
"""

from __future__ import annotations

import json
import math
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

METRICS_SCHEMA = "system.Metrics"
MODEL_SCHEMA = "system.Model"
ABSENT = "(absent)"  # a parameter or metric the run does not have (another pipeline's)

# Run states, the same words on every backend (MLflow's run statuses; KFP's and Vertex AI's
# states are mapped onto them).
SUCCEEDED, FAILED, CANCELLED, RUNNING = "FINISHED", "FAILED", "KILLED", "RUNNING"

_BAD_KEY_CHARACTERS = re.compile(r"[^/\w.\- :]")  # what MLflow refuses in a key


def clean_key(key: str) -> str:
    """``key`` as a parameter or metric name every store takes: ``=`` becomes ``:`` (a slice
    ``SEX=1/auc`` is ``SEX:1/auc``), other characters MLflow refuses become ``_``."""
    cleaned = _BAD_KEY_CHARACTERS.sub("_", key.replace("=", ":"))
    if posixpath.normpath(cleaned) != cleaned:  # MLflow refuses '//', '..', a leading '/'
        cleaned = re.sub(r"/+", "/", cleaned).strip("/").replace("..", "_")
    return cleaned[:250]


def param_text(value: Any) -> str:
    """A parameter as text: strings as they are, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class RunRecord:
    """A pipeline run: what it was given, what it measured, where its outputs are."""

    run_id: str  # the store's id (MLflow run id, KFP run id, Vertex AI job name)
    name: str  # the run's display name (locally: its folder, KFP's PIPELINE_JOB_NAME)
    pipeline: str = ""
    status: str = ""
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)  # <step>/<output> -> URI
    experiment: str = ""
    backend: str = ""
    note: str = ""  # what the store could not say (e.g. no metrics over KFP's REST API)


def step_record(
    task: str, parameters: Mapping[str, Any], artifacts: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, str], dict[str, float], dict[str, str]]:
    """(params, metrics, artifact URIs) of one step from its output parameters and artifacts
    (each ``{"uri", "metadata", "type": {"schemaTitle"}}``, KFP's executor output shape)."""
    params = {clean_key(f"{task}/{k}"): param_text(v) for k, v in parameters.items()}
    metrics: dict[str, float] = {}
    uris: dict[str, str] = {}
    metric_artifacts = [n for n, a in artifacts.items() if _schema(a) == METRICS_SCHEMA]
    for name, artifact in artifacts.items():
        if artifact.get("uri"):
            uris[f"{task}/{name}"] = str(artifact["uri"])
        metadata = artifact.get("metadata") or {}
        if _schema(artifact) == METRICS_SCHEMA:
            prefix = task if len(metric_artifacts) == 1 else f"{task}/{name}"
            metrics.update(
                {clean_key(f"{prefix}/{k}"): float(v) for k, v in metadata.items() if is_number(v)}
            )
        hyperparameters = metadata.get("hyperparameters")
        if _schema(artifact) == MODEL_SCHEMA and isinstance(hyperparameters, dict):
            params.update(
                {clean_key(f"{task}/hyperparameters/{k}"): param_text(v)
                 for k, v in hyperparameters.items()}
            )  # fmt: skip
    return params, metrics, uris


def _schema(artifact: Mapping[str, Any]) -> str:
    kind = artifact.get("type") or {}
    return str(kind.get("schemaTitle", "")) if isinstance(kind, dict) else str(kind)


class Tracker(Protocol):
    """An experiment store: runs recorded (locally) and read back by id or name."""

    backend: str

    def get(self, run: str) -> RunRecord: ...


def comparison(records: Sequence[RunRecord]) -> dict[str, list[list[str]]]:
    """The runs side by side: ``{"parameters": rows, "metrics": rows}``, each row
    ``[name, value of run 1, value of run 2, ...]``, names sorted; a name a run does not
    have is :data:`ABSENT` in its column (runs of two different pipelines)."""

    def rows(values: list[Mapping[str, Any]], number: bool) -> list[list[str]]:
        names = sorted(set().union(*(v.keys() for v in values))) if values else []
        out = []
        for name in names:
            cells = [name]
            for v in values:
                if name not in v:
                    cells.append(ABSENT)
                else:
                    cells.append(f"{v[name]:.6g}" if number else str(v[name]))
            out.append(cells)
        return out

    return {
        "parameters": rows([r.params for r in records], number=False),
        "metrics": rows([r.metrics for r in records], number=True),
    }


def format_comparison(records: Sequence[RunRecord], width: int = 48) -> str:
    """A plain-text table per section: a header of run names, pipelines and states, then
    parameters and metrics; cells longer than ``width`` (or the longest run name, which is
    shown whole) are cut with '...'."""
    width = max([width, *(len(r.name or r.run_id) for r in records)])

    def cut(text: str) -> str:
        return text if len(text) <= width else text[: width - 3] + "..."

    table = comparison(records)
    head = [
        ["run", *[r.name or r.run_id for r in records]],
        ["id", *[r.run_id for r in records]],
        ["pipeline", *[r.pipeline or "?" for r in records]],
        ["status", *[r.status or "?" for r in records]],
    ]
    sections = [("", head), ("parameters", table["parameters"]), ("metrics", table["metrics"])]
    all_rows = [row for _, rows in sections for row in rows]
    widths = [max(len(cut(row[i])) for row in all_rows) for i in range(len(records) + 1)]
    lines: list[str] = []
    for title, rows in sections:
        if title:
            lines.append(f"{title}:" if rows else f"{title}: none")
        for row in rows:
            lines.append("  ".join(cut(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    lines += [f"note on {r.name or r.run_id}: {r.note}" for r in records if r.note]
    return "\n".join(line.rstrip() for line in lines)


def read_executor_outputs(run_dir: Path) -> Iterable[tuple[str, dict[str, Any], dict]]:
    """(task, output parameters, output artifacts) of every step of a local run folder that
    finished (``<task>/executor_output.json``)."""
    for path in sorted(run_dir.glob("*/executor_output.json")):
        doc = json.loads(path.read_text())
        artifacts = {
            name: entry["artifacts"][0]
            for name, entry in (doc.get("artifacts") or {}).items()
            if entry.get("artifacts")
        }
        yield path.parent.name, dict(doc.get("parameterValues") or {}), artifacts
