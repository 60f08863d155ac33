"""The trainer's hyperparameters and their rules: pure code (no TensorFlow), shared by the
``train`` component (which trains with them) and ``katib_tune`` (which checks fixed values
and search-space ends before any trial, and passes them on when it does not tune).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Hyperparameters:
    """Tunable settings; a tuning step outputs a JSON dict with (a subset of) these keys."""

    # Batch 1024 at 3e-3 (was 256 at 1e-3): half the training time on the demo data, the
    # same test accuracy and AUC (benchmarks/RESULTS.md, training section).
    learning_rate: float = 3e-3
    hidden_units: tuple[int, ...] = (64, 32)
    dropout: float = 0.1
    batch_size: int = 1024
    # At most this many epochs; training stops earlier once validation AUC stops paying:
    # after `early_stopping_patience` epochs that raise the best AUC by no more than
    # `early_stopping_min_delta` (benchmarks/RESULTS.md, "Streaming input and stopping").
    epochs: int = 10
    early_stopping_patience: int = 2
    early_stopping_min_delta: float = 0.001
    embedding_dim: int = 0  # 0: min(16, ceil(sqrt(vocabulary size))) per feature
    seed: int = 42


KEYS = tuple(f.name for f in fields(Hyperparameters))

# key -> (integer?, lowest, highest, lowest included?)
_RANGES: dict[str, tuple[bool, float, float, bool]] = {
    "learning_rate": (False, 0.0, 10.0, False),
    "dropout": (False, 0.0, 1.0 - 1e-9, True),
    "batch_size": (True, 1, 1_000_000, True),
    "epochs": (True, 1, 10_000, True),
    "early_stopping_patience": (True, 0, 10_000, True),
    "early_stopping_min_delta": (False, 0.0, 1.0, True),
    "embedding_dim": (True, 0, 1024, True),
    "seed": (True, 0, 2**31 - 1, True),
}
_MAX_LAYERS, _MAX_UNITS = 16, 65_536


def _number(key: str, value: Any, integer: bool) -> float | int:
    # Tuners often pass every value as text ("0.01"); numbers as text are accepted.
    if isinstance(value, bool):
        raise ValueError(f"hyperparameters[{key!r}] must be a number, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"hyperparameters[{key!r}] must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"hyperparameters[{key!r}] must be finite, not {value!r}")
    if integer:
        if number != int(number):
            raise ValueError(f"hyperparameters[{key!r}] must be a whole number, not {value!r}")
        return int(number)
    return number


def _hidden_units(value: Any) -> tuple[int, ...]:
    if isinstance(value, str):  # "64,32" or "[64, 32]"
        text = value.strip()
        items: Any = json.loads(text) if text.startswith("[") else text.split(",") if text else []
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        items = [value]
    units = tuple(int(_number("hidden_units", v, integer=True)) for v in items)
    if len(units) > _MAX_LAYERS or any(not 1 <= u <= _MAX_UNITS for u in units):
        raise ValueError(
            f"hyperparameters['hidden_units'] must be at most {_MAX_LAYERS} layer sizes in "
            f"[1, {_MAX_UNITS}], not {value!r}"
        )
    return units


def _value(key: str, raw: Any) -> Any:
    if key == "hidden_units":
        try:
            return _hidden_units(raw)
        except json.JSONDecodeError as e:
            raise ValueError(f"hyperparameters['hidden_units'] is not valid: {raw!r}") from e
    integer, low, high, low_included = _RANGES[key]
    number = _number(key, raw, integer)
    if number > high or number < low or (number == low and not low_included):
        bracket = "[" if low_included else "("
        raise ValueError(
            f"hyperparameters[{key!r}] = {raw!r} is out of range {bracket}{low:g}, {high:g}]"
        )
    return number


def parse_hyperparameters(value: Any) -> Hyperparameters:
    """Hyperparameters from a dict or its JSON text; missing keys take the defaults.

    Raises ValueError naming every bad key and value at once: text that is not JSON, unknown
    keys, values out of range (learning_rate <= 0, dropout outside [0, 1), batch_size or
    epochs below 1, ...).
    """
    if value is None or value == "":
        return Hyperparameters()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"hyperparameters is not valid JSON: {value!r} ({e})") from e
    if not isinstance(value, Mapping):
        raise ValueError(f"hyperparameters must be a JSON object, not {value!r}")
    unknown = sorted(set(value) - set(KEYS), key=str)
    # every problem at once: a user fixing one should not meet the next on the next run
    problems = (
        [f"hyperparameters: unknown key(s) {unknown}; known: {list(KEYS)}"] if unknown else []
    )
    parsed: dict[str, Any] = {}
    for key, raw in value.items():
        if key in KEYS:
            try:
                parsed[key] = _value(key, raw)
            except ValueError as e:
                problems.append(str(e))
    if problems:
        raise ValueError("; ".join(problems))
    return Hyperparameters(**parsed)


def hyperparameters_dict(hp: Hyperparameters) -> dict[str, Any]:
    """``hp`` as the JSON dict a tuner outputs and ``train`` takes."""
    out = asdict(hp)
    out["hidden_units"] = list(hp.hidden_units)
    return out
