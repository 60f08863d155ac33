"""Compiles every pipeline for every target, and every component, into ``compiled/`` with
deterministic bytes."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from typing import Any

from kfpkit import catalog, targets
from kfpkit.catalog import load_pipeline  # noqa: F401 - kfpkit.compile.load_pipeline
from kfpkit.pipelines import PIPELINES

# name -> (module, attribute) of every component (kfpkit.catalog, the one list).
COMPONENTS = {c.name: (c.module, c.name) for c in catalog.COMPONENTS}


def _load(module: str, attr: str) -> Any:
    return getattr(importlib.import_module(module), attr)


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


def target_dir(out_dir: Path, target: str) -> Path:
    """Where a target's pipelines go: ``<out>/`` for local, else ``<out>/<target>/``."""
    return out_dir if target == "local" else out_dir / target


def _write(obj: Any, path: Path) -> Path:
    from kfp import compiler

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.yaml")
    compiler.Compiler().compile(obj, str(tmp))
    tmp.write_text(_sorted_header_defaults(tmp.read_text()))
    tmp.replace(path)
    return path


def compile_target(out_dir: Path, target: targets.Target) -> list[Path]:
    """Writes every pipeline built for ``target`` under :func:`target_dir`."""
    configured: set[str] = set()
    built = [
        (target_dir(out_dir, target.name) / f"{name}.yaml",
         targets.build(_load(*spec), target, configured))
        for name, spec in sorted(PIPELINES.items())
    ]  # fmt: skip
    unused = sorted(set(target.accelerators) - configured)
    if unused:  # checked before anything is written
        raise ValueError(
            f"target {target.name!r}: accelerators for step(s) {', '.join(unused)}, which no "
            f"pipeline hands to kfpkit.targets.configure; configured: "
            f"{', '.join(sorted(configured)) or 'none'}"
        )
    return [_write(obj, path) for path, obj in built]


def compile_all(
    out_dir: Path, settings: targets.Settings | None = None, target: str | None = None
) -> list[Path]:
    """Writes every pipeline for every target of ``settings`` (default: the built-in ones,
    :data:`kfpkit.targets.BUILTIN_SETTINGS`) and, unless one ``target`` is asked for, every
    component: ``<out>/<pipeline>.yaml`` (local), ``<out>/<target>/<pipeline>.yaml``,
    ``<out>/components/<component>.yaml``."""
    settings = settings or targets.load()
    chosen = [settings.get(target)] if target else list(settings.targets.values())
    written = []
    for t in chosen:
        written += compile_target(out_dir, t)
    if target is None:
        written += [
            _write(_load(*spec), out_dir / "components" / f"{n}.yaml")
            for n, spec in sorted(COMPONENTS.items())
        ]
    return written
