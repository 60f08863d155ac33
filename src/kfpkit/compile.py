"""Compiles every pipeline and every component into ``compiled/`` with deterministic bytes."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from typing import Any

from kfpkit.pipelines import PIPELINES

COMPONENTS = {
    name: (f"kfpkit.components.{name}.component", name)
    for name in (
        "bigquery_split",
        "tfdv_statistics",
        "tfdv_schema",
        "tfdv_validate",
        "tfdv_validate_splits",
        "train",
        "evaluate",
        "publish_model",
        "katib_tune",
        "kserve_push",
        "record_outcome",
        "register_model",
        "resolve_model",
    )  # fmt: skip
}


def _load(module: str, attr: str) -> Any:
    return getattr(importlib.import_module(module), attr)


def load_pipeline(name: str) -> Any:
    if name not in PIPELINES:
        raise ValueError(f"Unknown pipeline {name!r}; known: {', '.join(sorted(PIPELINES))}")
    return _load(*PIPELINES[name])


_HEADER_DEFAULT = re.compile(
    r"^(#\s+\S+: (?:dict|list) \[Default: )(\{.*\}|\[.*\])(\])$", re.MULTILINE
)


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_keys(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def _sorted_header_defaults(text: str) -> str:
    """Sorts the keys of dict defaults (also dicts inside list defaults) in the YAML's header
    comment.

    kfp renders them from a protobuf Struct, whose key order changes from process to process;
    without this, compiled/ would differ between two compiles of the same code.
    """

    def render(m: re.Match[str]) -> str:
        value = ast.literal_eval(m.group(2))
        return m.group(1) + repr(_sorted_keys(value)) + m.group(3)

    return _HEADER_DEFAULT.sub(render, text)


def compile_all(out_dir: Path) -> list[Path]:
    """Writes ``<out>/<pipeline>.yaml`` and ``<out>/components/<component>.yaml``."""
    from kfp import compiler

    written = []
    (out_dir / "components").mkdir(parents=True, exist_ok=True)
    targets = [(out_dir / f"{n}.yaml", _load(*spec)) for n, spec in sorted(PIPELINES.items())]
    targets += [
        (out_dir / "components" / f"{n}.yaml", _load(*spec))
        for n, spec in sorted(COMPONENTS.items())
    ]
    for path, obj in targets:
        tmp = path.with_name(f".{path.stem}.tmp.yaml")
        compiler.Compiler().compile(obj, str(tmp))
        tmp.write_text(_sorted_header_defaults(tmp.read_text()))
        tmp.replace(path)
        written.append(path)
    return written
