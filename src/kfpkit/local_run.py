"""Runs a pipeline on this machine with ``kfp.local.DockerRunner`` and summarises its outputs.

Each step runs in a fresh container of its kfpkit image, with host networking (so it reaches
the emulator on 127.0.0.1) and the caller's uid (so the files it writes under the pipeline
root belong to the caller). Outputs are read back from each step's executor output file.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfpkit.compile import load_pipeline


@dataclass
class StepOutputs:
    task: str
    parameters: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class LocalRun:
    pipeline: str
    run_dir: Path
    seconds: float
    steps: list[StepOutputs]

    def step(self, task: str) -> StepOutputs:
        for s in self.steps:
            if s.task == task:
                return s
        raise KeyError(f"no step {task!r}; steps: {[s.task for s in self.steps]}")


def _read_steps(run_dir: Path) -> list[StepOutputs]:
    steps = []
    for out in sorted(run_dir.glob("*/executor_output.json")):
        doc = json.loads(out.read_text())
        arts = {
            name: entry["artifacts"][0]
            for name, entry in doc.get("artifacts", {}).items()
            if entry.get("artifacts")
        }
        steps.append(StepOutputs(out.parent.name, doc.get("parameterValues", {}), arts))
    return steps


def run_local(
    pipeline: str,
    arguments: dict[str, Any],
    pipeline_root: Path,
    docker_args: dict[str, Any] | None = None,
) -> LocalRun:
    """Runs ``pipeline`` with ``kfp.local.DockerRunner``; raises RuntimeError if a step fails."""
    from kfp import local

    pipeline_root = pipeline_root.absolute()
    pipeline_root.mkdir(parents=True, exist_ok=True)
    run_args = {
        "network_mode": "host",
        "user": f"{os.getuid()}:{os.getgid()}",
        **(docker_args or {}),
    }
    local.init(
        runner=local.DockerRunner(**run_args), pipeline_root=str(pipeline_root), raise_on_error=True
    )
    before = set(pipeline_root.iterdir())
    start = time.monotonic()
    try:
        load_pipeline(pipeline)(**arguments)
    except Exception as e:  # kfp.local raises RuntimeError naming the failed task
        raise RuntimeError(f"pipeline {pipeline!r} failed: {e}") from e
    seconds = time.monotonic() - start
    new = sorted(set(pipeline_root.iterdir()) - before, key=lambda p: p.stat().st_mtime)
    if not new:
        raise RuntimeError(f"pipeline {pipeline!r} wrote no run folder under {pipeline_root}")
    run_dir = new[-1]
    return LocalRun(pipeline, run_dir, seconds, _read_steps(run_dir))


def summary(run: LocalRun) -> str:
    """Readable account of where every output of every step is."""
    lines = [
        f"Pipeline {run.pipeline!r} succeeded in {run.seconds:.1f}s; outputs under {run.run_dir}"
    ]
    for step in run.steps:
        lines.append(f"  step {step.task}:")
        for name, value in sorted(step.parameters.items()):
            lines.append(f"    {name} = {value!r}")
        for name, art in sorted(step.artifacts.items()):
            meta = art.get("metadata", {})
            facts = [f"{k}={meta[k]}" for k in ("table_id", "row_count", "files") if k in meta]
            if "absent" in meta:
                facts = ["absent (not requested)"]
            if art.get("type", {}).get("schemaTitle") == "system.Metrics":
                facts = [f"{k}={v}" for k, v in sorted(meta.items())]
            lines.append(f"    {name}: {art.get('uri')}")
            if facts:
                lines.append(f"      {', '.join(facts)}")
    return "\n".join(lines)
