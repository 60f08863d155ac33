"""Compiles every pipeline and every component into ``compiled/`` with deterministic bytes."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from kfpkit.pipelines import PIPELINES

COMPONENTS = {
    "bigquery_split": ("kfpkit.components.bigquery_split.component", "bigquery_split"),
}


def _load(module: str, attr: str) -> Any:
    return getattr(importlib.import_module(module), attr)


def load_pipeline(name: str) -> Any:
    if name not in PIPELINES:
        raise ValueError(f"Unknown pipeline {name!r}; known: {', '.join(sorted(PIPELINES))}")
    return _load(*PIPELINES[name])


def compile_all(out_dir: Path) -> list[Path]:
    """Writes ``<out>/<pipeline>.yaml`` and ``<out>/components/<component>.yaml``."""
    from kfp import compiler

    written = []
    (out_dir / "components").mkdir(parents=True, exist_ok=True)
    targets = [(out_dir / f"{n}.yaml", _load(*spec)) for n, spec in sorted(PIPELINES.items())]
    targets += [
        (out_dir / "components" / f"{n}.yaml", _load(*spec)) for n, spec in sorted(COMPONENTS.items())
    ]
    for path, obj in targets:
        tmp = path.with_suffix(".yaml.tmp")
        compiler.Compiler().compile(obj, str(tmp))
        tmp.replace(path)
        written.append(path)
    return written
