"""A compiled pipeline and its parameters, checked before anything is sent to a service."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_REQUIRED_KEYS = ("pipelineInfo", "root", "schemaVersion")


@dataclass(frozen=True)
class CompiledPipeline:
    path: Path
    spec: dict[str, Any]  # the PipelineSpec (the YAML's first document)
    digest: str  # sha256 of the file's bytes

    @property
    def name(self) -> str:
        return str(self.spec["pipelineInfo"]["name"])

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        return dict(self.spec["root"].get("inputDefinitions", {}).get("parameters", {}))


def load(path: str | Path) -> CompiledPipeline:
    """Reads a compiled KFP pipeline (YAML or JSON); ValueError when it is not one."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"compiled pipeline {str(file)!r} does not exist")
    data = file.read_bytes()
    try:
        docs = list(yaml.safe_load_all(data))
    except yaml.YAMLError as e:
        raise ValueError(f"{str(file)!r} is not YAML or JSON: {e}") from None
    spec = docs[0] if docs else None
    if not isinstance(spec, dict) or any(k not in spec for k in _REQUIRED_KEYS):
        keys = sorted(spec) if isinstance(spec, dict) else type(spec).__name__
        raise ValueError(
            f"{str(file)!r} is not a compiled KFP pipeline spec (needs "
            f"{', '.join(_REQUIRED_KEYS)}; found {keys}): compile it with `kfpkit compile` "
            "or kfp.compiler.Compiler"
        )
    if not isinstance(spec["pipelineInfo"], dict) or not spec["pipelineInfo"].get("name"):
        raise ValueError(f"{str(file)!r} has no pipelineInfo.name")
    return CompiledPipeline(file, spec, hashlib.sha256(data).hexdigest())


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check(name: str, kind: str, value: Any) -> Any:
    """The value as the service expects it for ``kind``; ValueError naming both."""
    if kind == "NUMBER_INTEGER":
        if _is_number(value) and float(value).is_integer():
            return int(value)
    elif kind == "NUMBER_DOUBLE":
        if _is_number(value):
            return float(value)
    elif kind == "STRING":
        if isinstance(value, str):
            return value
    elif kind == "BOOLEAN":
        if isinstance(value, bool):
            return value
    elif kind == "LIST":
        if isinstance(value, list):
            return value
    elif kind == "STRUCT":
        if isinstance(value, dict):
            return value
    else:
        raise ValueError(f"parameter {name!r} has a type kfpkit does not know: {kind!r}")
    raise ValueError(f"parameter {name!r} is {kind}; {value!r} is not one")


def parse_cli_value(kind: str, text: str) -> Any:
    """A ``--param`` value typed by the parameter: STRING as written, the rest as JSON."""
    if kind == "STRING":
        try:
            decoded = json.loads(text)
        except json.JSONDecodeError:
            return text
        return decoded if isinstance(decoded, str) else text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # _check then names it as ill-typed


def read_params_file(path: str | Path) -> dict[str, Any]:
    """Parameter values from a YAML or JSON mapping; ValueError otherwise."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"parameter file {str(file)!r} does not exist")
    try:
        values = yaml.safe_load(file.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"parameter file {str(file)!r} is not YAML or JSON: {e}") from None
    if values is None:
        return {}
    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        raise ValueError(f"parameter file {str(file)!r} must hold a mapping of name: value")
    return values


def parameter_values(
    pipeline: CompiledPipeline,
    values: dict[str, Any] | None = None,
    cli: list[str] | None = None,
) -> dict[str, Any]:
    """Checked parameter values: ``values`` (e.g. from a file), then ``cli`` ``name=value``
    items over them. ValueError naming an unknown name, an ill-typed value or a missing
    required parameter."""
    declared = pipeline.parameters
    merged: dict[str, Any] = dict(values or {})
    for item in cli or []:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--param expects name=value, got {item!r}")
        kind = declared.get(name, {}).get("parameterType", "STRING")
        merged[name] = parse_cli_value(kind, text)
    unknown = sorted(set(merged) - set(declared))
    if unknown:
        raise ValueError(
            f"pipeline {pipeline.name!r} has no parameter {', '.join(map(repr, unknown))} "
            f"(its parameters: {', '.join(sorted(declared))})"
        )
    checked = {n: _check(n, declared[n]["parameterType"], v) for n, v in merged.items()}
    missing = sorted(
        n
        for n, d in declared.items()
        if n not in checked and not d.get("isOptional") and "defaultValue" not in d
    )
    if missing:
        raise ValueError(
            f"pipeline {pipeline.name!r} needs a value for {', '.join(map(repr, missing))}"
        )
    return checked
