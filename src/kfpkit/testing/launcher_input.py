"""Test helper: an ``ExecutorInput`` like the one KFP gives a launcher, for tests of launchers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _artifact(name: str, schema_title: str, uri: str, metadata: Mapping[str, Any]) -> dict:
    entry = {"name": name, "type": {"schemaTitle": schema_title}, "uri": uri}
    return {"artifacts": [{**entry, "metadata": dict(metadata)}]}


def executor_input(
    out_dir: Path,
    params: Mapping[str, Any],
    outputs: Mapping[str, str],
    inputs: Mapping[str, tuple[str, str]] | None = None,
    output_params: Sequence[str] = (),
    input_metadata: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """``outputs``: name -> schema title (URIs under ``out_dir``); ``inputs``: name ->
    (schema title, URI); ``output_params``: names of output parameters."""
    metadata = input_metadata or {}
    return {
        "inputs": {
            "parameterValues": dict(params),
            "artifacts": {
                name: _artifact(name, kind, uri, metadata.get(name, {}))
                for name, (kind, uri) in (inputs or {}).items()
            },
        },
        "outputs": {
            "artifacts": {
                name: _artifact(name, kind, str(out_dir / name), {})
                for name, kind in outputs.items()
            },
            "parameters": {name: {"outputFile": str(out_dir / name)} for name in output_params},
            "outputFile": str(out_dir / "executor_output.json"),
        },
    }
