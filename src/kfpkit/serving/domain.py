"""Which values of a served request fall outside the schema's domain: the request log's
``out_of_domain`` column, for monitoring (the request is still answered).

The domains are those of a TFDV schema (``schema.pbtxt``, tensorflow_metadata's own parser):
``float_domain`` min / max; ``int_domain`` min / max and whole numbers only (on a numeric
feature the value, on a categorical one its text, e.g. "07"); ``string_domain`` values, inline
or named. Numeric bounds are compared in float32, the precision the server decodes to, so a
value sent as the bound itself is inside. A feature without a domain is never flagged; neither
is a missing value (null, or "" for a category). Without a schema nothing is flagged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

SCHEMA_FILE = "schema.pbtxt"


@dataclass(frozen=True)
class Domain:
    """One feature's domain: a numeric range (either end open, whole numbers only when
    ``integer``) or a set of categories."""

    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    values: frozenset[str] | None = None

    def outside(self, column: np.ndarray) -> np.ndarray:
        """True where a present value is outside the domain."""
        if column.dtype == object:
            present = column != ""
            if self.values is not None:
                return present & ~np.isin(column, list(self.values))
            numbers = np.array([_whole_number(v) for v in column], dtype=np.float64)
            return present & (np.isnan(numbers) | self._out_of_range(numbers))
        values = column.astype(np.float32, copy=False)
        out = self._out_of_range(values)
        if self.integer:
            with np.errstate(invalid="ignore"):
                out |= np.isfinite(values) & (values != np.floor(values))
        return out  # NaN compares False: a missing number is never outside

    def _out_of_range(self, values: np.ndarray) -> np.ndarray:
        out = np.zeros(len(values), dtype=bool)
        with np.errstate(invalid="ignore"):
            if self.minimum is not None:
                out |= values < np.float32(self.minimum)
            if self.maximum is not None:
                out |= values > np.float32(self.maximum)
        return out


def _whole_number(text: str) -> float:
    """A category's text as a whole number, NaN when it is not one (or is missing)."""
    try:
        return float(int(text.strip()))
    except (ValueError, AttributeError):
        return float("nan")


def schema_file(path: str) -> str:
    """``path`` itself, or the ``schema.pbtxt`` in it; ValueError if there is none."""
    file = os.path.join(path, SCHEMA_FILE) if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise ValueError(f"schema: no {SCHEMA_FILE} at {path!r}")
    return file


def load_domains(path: str) -> dict[str, Domain]:
    """The domains a TFDV schema declares, by feature name; ValueError naming a bad file."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    file = schema_file(path)
    with open(file, encoding="utf-8") as f:
        try:
            schema = text_format.Parse(f.read(), schema_pb2.Schema())
        except text_format.ParseError as e:
            raise ValueError(f"{file}: not a valid tensorflow_metadata Schema: {e}") from e
    named = {d.name: frozenset(d.value) for d in schema.string_domain}
    domains: dict[str, Domain] = {}
    for feature in schema.feature:
        kind = feature.WhichOneof("domain_info")
        if kind == "float_domain":
            d = feature.float_domain
            domain = Domain(d.min if d.HasField("min") else None,
                            d.max if d.HasField("max") else None)  # fmt: skip
        elif kind == "int_domain":
            d = feature.int_domain
            domain = Domain(float(d.min) if d.HasField("min") else None,
                            float(d.max) if d.HasField("max") else None, integer=True)  # fmt: skip
        elif kind == "string_domain":
            domain = Domain(values=frozenset(feature.string_domain.value))
        elif kind == "domain":
            if feature.domain not in named:
                raise ValueError(
                    f"{file}: feature {feature.name!r} names string domain {feature.domain!r}, "
                    "which the schema does not declare"
                )
            domain = Domain(values=named[feature.domain])
        else:
            continue
        if domain != Domain():  # e.g. float_domain {} bounds nothing
            domains[feature.name] = domain
    return domains


class DomainCheck:
    """Flags the features of each row whose value is outside their domain."""

    def __init__(self, domains: Mapping[str, Domain], feature_names: Sequence[str]):
        # only the features the server takes, in the model's order (the order of a flag)
        self.domains = [(n, domains[n]) for n in feature_names if n in domains]

    def __bool__(self) -> bool:
        return bool(self.domains)

    def flags(self, features: Mapping[str, np.ndarray], rows: int) -> list[str]:
        """One string per row: comma-separated feature names out of domain, "" when none."""
        masks = [(n, d.outside(features[n])) for n, d in self.domains]
        masks = [(n, m) for n, m in masks if m.any()]
        if not masks:
            return [""] * rows
        return [",".join(n for n, m in masks if m[i]) for i in range(rows)]
