"""Turns V1 and V2 request bodies into the model's raw feature arrays, or says what is wrong.

Pure (numpy only). Every problem raises :class:`BadRequest` (a ValueError) whose message names
the feature, the row and the value; the model turns it into KServe's ``InvalidInput`` (HTTP
400), so a bad request is never a 500. The contract is the one the train component exports:
one scalar input per feature, numeric (any JSON number; ``null`` is a missing value, filled by
the model) or categorical (a JSON string; ``null`` is the empty, out-of-vocabulary value).
Booleans, strings for numbers and numbers for categories are refused rather than coerced: a
category sent as ``1`` instead of ``"1"`` would silently fall into the unknown bucket.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from kfpkit.tabular import CATEGORICAL, FeatureSpec

# V2 datatypes accepted for each kind of feature.
V2_NUMERIC_TYPES = frozenset(
    ["FP16", "FP32", "FP64"] + [f"{s}INT{n}" for s in ("", "U") for n in (8, 16, 32, 64)]
)
V2_CATEGORICAL_TYPES = frozenset({"BYTES"})
_SHOWN = 80  # characters of a bad value quoted in a message


class BadRequest(ValueError):
    """The request cannot be answered as sent (HTTP 4xx)."""


@dataclass(frozen=True)
class Decoded:
    """A request as model inputs: one array per feature (float32 / object of str)."""

    features: dict[str, np.ndarray]
    rows: int


class V2Input(Protocol):
    """What is read of a V2 input tensor (``kserve.InferInput`` has these)."""

    name: str
    datatype: str
    shape: list[int]
    data: Any


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def _check_rows(rows: int, max_rows: int, what: str) -> None:
    if rows == 0:
        raise BadRequest(f"{what} is empty: send at least one row")
    if rows > max_rows:
        raise BadRequest(
            f"{what} has {rows} rows; this server accepts at most {max_rows} a request"
        )


def _check_names(names: Sequence[str], specs: Sequence[FeatureSpec], where: str) -> None:
    expected = [s.name for s in specs]
    unknown = sorted(set(names) - set(expected))
    missing = sorted(set(expected) - set(names))
    if unknown or missing:
        parts = []
        if missing:
            parts.append(f"lacks feature(s) {missing}")
        if unknown:
            parts.append(f"has unknown feature(s) {unknown}")
        raise BadRequest(f"{where} {' and '.join(parts)}; the model takes exactly {expected}")


def _numeric(values: Sequence[Any], name: str, row_label: str) -> np.ndarray:
    # fast path: only ints and floats (a bool is not an int here; nulls, text and the rest
    # take the checking loop below, which names the bad value)
    if set(map(type, values)) <= {int, float}:
        with np.errstate(over="ignore"):
            try:
                result = np.asarray(values, dtype=np.float64).astype(np.float32)
            except OverflowError:  # an int beyond float64
                result = np.full(1, np.inf, dtype=np.float32)
        if np.all(np.isfinite(result)):
            return result
    out = np.empty(len(values), dtype=np.float32)
    for i, v in enumerate(values):
        if v is None:
            out[i] = np.nan
        elif type(v) is float or type(v) is int:  # noqa: E721 - bool is an int subclass
            try:
                with np.errstate(over="ignore"):
                    out[i] = v
            except OverflowError:  # an int beyond float64
                out[i] = np.inf
            if not math.isfinite(out[i]):
                raise BadRequest(
                    f"feature {name!r} {row_label} {i}: {_show(v)} is not a finite 32-bit float"
                )
        else:
            raise BadRequest(
                f"feature {name!r} {row_label} {i}: expected a number or null, got "
                f"{type(v).__name__} {_show(v)}"
            )
    return out


def _categorical(values: Sequence[Any], name: str, row_label: str) -> np.ndarray:
    if set(map(type, values)) == {str}:  # numpy would turn numbers into text: check first
        return np.array(values, dtype=object)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if v is None:
            out[i] = ""
        elif type(v) is str:  # noqa: E721
            out[i] = v
        elif type(v) is bytes:  # noqa: E721 - V2 BYTES in binary form
            try:
                out[i] = v.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest(f"feature {name!r} {row_label} {i}: not UTF-8 text") from None
        else:
            raise BadRequest(
                f"feature {name!r} {row_label} {i}: expected a string (categorical) or null, "
                f"got {type(v).__name__} {_show(v)}"
            )
    return out


def _column(spec: FeatureSpec, values: Sequence[Any], row_label: str) -> np.ndarray:
    if spec.kind == CATEGORICAL:
        return _categorical(values, spec.name, row_label)
    return _numeric(values, spec.name, row_label)


def decode_v1(payload: Any, specs: Sequence[FeatureSpec], max_rows: int) -> Decoded:
    """``{"instances": [{"feature": value, ...}, ...]}`` (KServe V1, row format)."""
    if not isinstance(payload, Mapping) or "instances" not in payload:
        raise BadRequest('expected a JSON object {"instances": [{feature: value, ...}, ...]}')
    extra = sorted(set(payload) - {"instances", "parameters"})
    if extra:
        raise BadRequest(f"unknown top-level key(s) {extra}; expected 'instances'")
    instances = payload["instances"]
    if not isinstance(instances, list):
        raise BadRequest(f"'instances' must be a list of objects, got {type(instances).__name__}")
    _check_rows(len(instances), max_rows, "'instances'")
    names = [s.name for s in specs]
    wanted = set(names)
    for i, instance in enumerate(instances):
        if not isinstance(instance, Mapping):
            raise BadRequest(
                f"instance {i} must be an object {{feature: value}}, got {_show(instance)}"
            )
        if instance.keys() != wanted:
            _check_names(list(instance), specs, f"instance {i}")
    features = {s.name: _column(s, [inst[s.name] for inst in instances], "instance") for s in specs}
    return Decoded(features, len(instances))


def _v2_values(tensor: V2Input) -> list[Any]:
    """The flat, row-major values of a V2 input (JSON ``data``, nested or flat)."""
    shape = tensor.shape
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):  # noqa: E721
        raise BadRequest(f"input {tensor.name!r}: shape must be a list of sizes, got {shape!r}")
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
        raise BadRequest(
            f"input {tensor.name!r}: shape {shape} is not [rows] or [rows, 1] (one scalar a row)"
        )
    data = tensor.data
    if isinstance(data, np.ndarray):
        data = data.tolist()
    if not isinstance(data, list):
        raise BadRequest(f"input {tensor.name!r}: 'data' must be a list")
    flat: list[Any] = data
    if list in set(map(type, data)):
        flat = _flatten(tensor.name, data)
    if len(flat) != shape[0]:
        raise BadRequest(
            f"input {tensor.name!r}: shape {shape} says {shape[0]} values, 'data' has {len(flat)}"
        )
    return flat


def _flatten(name: str, data: list[Any]) -> list[Any]:
    """``[[v], [v], ...]`` (nested V2 data of a [rows, 1] tensor) as ``[v, v, ...]``."""
    flat: list[Any] = []
    for item in data:
        if isinstance(item, list):
            if len(item) != 1 or isinstance(item[0], list):
                raise BadRequest(f"input {name!r}: nested data must hold one value a row")
            flat.append(item[0])
        else:
            flat.append(item)
    return flat


def decode_v2(inputs: Sequence[V2Input], specs: Sequence[FeatureSpec], max_rows: int) -> Decoded:
    """One V2 input tensor per feature, named after it, shape ``[rows]`` or ``[rows, 1]``."""
    by_name: dict[str, V2Input] = {}
    for tensor in inputs:
        if tensor.name in by_name:
            raise BadRequest(f"input {tensor.name!r} is given twice")
        by_name[tensor.name] = tensor
    _check_names(list(by_name), specs, "the request")
    rows: int | None = None
    features = {}
    for spec in specs:
        tensor = by_name[spec.name]
        allowed = V2_CATEGORICAL_TYPES if spec.kind == CATEGORICAL else V2_NUMERIC_TYPES
        if tensor.datatype not in allowed:
            raise BadRequest(
                f"input {spec.name!r} is {spec.kind}: datatype must be one of {sorted(allowed)}, "
                f"got {tensor.datatype!r}"
            )
        values = _v2_values(tensor)
        if rows is None:
            rows = len(values)
            _check_rows(rows, max_rows, f"input {spec.name!r}")
        elif len(values) != rows:
            raise BadRequest(
                f"input {spec.name!r} has {len(values)} rows, other inputs have {rows}"
            )
        features[spec.name] = _column(spec, values, "row")
    assert rows is not None
    return Decoded(features, rows)
