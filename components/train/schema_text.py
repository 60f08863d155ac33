"""Reads a TFDV schema text proto (``schema.pbtxt``) without tensorflow_metadata.

The train image ships no TFDV/tensorflow_metadata, and training needs only a few fields of
each ``feature``: its name, ``type`` (INT, FLOAT, BYTES), ``presence.min_fraction``,
``int_domain.is_categorical`` and ``lifecycle_stage``. A small generic text-format reader
(fields, nested messages, strings, numbers, enums, comments) is enough for that; it does not
validate against the proto definition, so unknown fields are read and ignored.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from kfpkit.components._runtime.tabular import CATEGORICAL, NUMERIC, FeatureSpec

SCHEMA_FILE = "schema.pbtxt"
# Features in these lifecycle stages are not meant for training.
_SKIPPED_STAGES = {"DEPRECATED", "DISABLED", "PLANNED", "ALPHA", "DEBUG_ONLY"}

_TOKEN = re.compile(
    r"""\s+|\#[^\n]*
    |(?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    |(?P<punct>[{}<>:;,\[\]])
    |(?P<word>[A-Za-z0-9_.+\-]+)""",
    re.VERBOSE,
)

Message = dict[str, list[Any]]


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            line = text.count("\n", 0, pos) + 1
            raise ValueError(f"schema: unexpected character {text[pos]!r} on line {line}")
        pos = m.end()
        if m.lastgroup:
            out.append((m.lastgroup, m.group(m.lastgroup)))
    return out


def _unquote(token: str) -> str:
    # Text format escapes bytes as octal/hex (UTF-8 bytes); decode them back to text.
    raw = token[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    return raw.encode("latin-1").decode("utf-8", "replace")


def _scalar(word: str) -> Any:
    if word in ("true", "True"):
        return True
    if word in ("false", "False"):
        return False
    try:
        return int(word, 0)
    except ValueError:
        pass
    try:
        return float(word)
    except ValueError:
        return word  # an enum value, e.g. BYTES


def parse_text_proto(text: str) -> Message:
    """Parses protobuf text format into ``{field: [values]}``; nested messages are dicts."""
    tokens = _tokens(text)
    pos = 0

    def peek() -> tuple[str, str] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError("schema: unexpected end of the text proto")
        pos += 1
        return tokens[pos - 1]

    def value() -> Any:
        kind, tok = take()
        if kind == "string":
            parts = [_unquote(tok)]
            while (nxt := peek()) is not None and nxt[0] == "string":  # "a" "b" concatenates
                parts.append(_unquote(take()[1]))
            return "".join(parts)
        if kind == "word":
            return _scalar(tok)
        if tok == "[":
            items = []
            while peek() != ("punct", "]"):
                items.append(value())
                if peek() == ("punct", ","):
                    take()
            take()
            return items
        if tok in "{<":
            return message("}" if tok == "{" else ">")
        raise ValueError(f"schema: unexpected {tok!r} in the text proto")

    def message(end: str | None) -> Message:
        fields: Message = {}
        while True:
            nxt = peek()
            if nxt is None:
                if end is not None:
                    raise ValueError(f"schema: missing {end!r} in the text proto")
                return fields
            if nxt == ("punct", end):
                take()
                return fields
            kind, name = take()
            if kind != "word":
                raise ValueError(f"schema: expected a field name, found {name!r}")
            if peek() == ("punct", ":"):
                take()
            got = value()
            items = got if isinstance(got, list) else [got]
            fields.setdefault(name, []).extend(items)
            if peek() in (("punct", ";"), ("punct", ",")):
                take()

    return message(None)


@dataclass(frozen=True)
class SchemaFeature:
    name: str
    type: str  # INT, FLOAT, BYTES (STRUCT and unknown types are kept, then refused)
    min_fraction: float
    int_categorical: bool
    lifecycle_stage: str

    def spec(self) -> FeatureSpec:
        """INT is numeric unless its int_domain says ``is_categorical: true`` (TFDV's flag)."""
        if self.type == "BYTES" or (self.type == "INT" and self.int_categorical):
            kind = CATEGORICAL
        elif self.type in ("INT", "FLOAT"):
            kind = NUMERIC
        else:
            raise ValueError(f"schema: feature {self.name!r} has type {self.type}, not trainable")
        return FeatureSpec(self.name, kind, required=self.min_fraction >= 1.0)


def _first(message: Message, name: str, default: Any = None) -> Any:
    values = message.get(name)
    return values[0] if values else default


def schema_features(text: str) -> dict[str, SchemaFeature]:
    """The trainable features declared by a schema text proto, by name."""
    features: dict[str, SchemaFeature] = {}
    for raw in parse_text_proto(text).get("feature", []):
        if not isinstance(raw, dict) or not isinstance(_first(raw, "name"), str):
            raise ValueError("schema: a feature without a name")
        stage = str(_first(raw, "lifecycle_stage", "UNKNOWN_STAGE"))
        if stage in _SKIPPED_STAGES:
            continue
        presence = _first(raw, "presence", {})
        int_domain = _first(raw, "int_domain", {})
        features[raw["name"][0]] = SchemaFeature(
            name=raw["name"][0],
            type=str(_first(raw, "type", "TYPE_UNKNOWN")),
            min_fraction=float(_first(presence, "min_fraction", 0.0)),
            int_categorical=bool(_first(int_domain, "is_categorical", False)),
            lifecycle_stage=stage,
        )
    if not features:
        raise ValueError("schema: declares no trainable features")
    return features


def load_schema_features(path: str) -> dict[str, SchemaFeature]:
    """Features of the schema artifact at ``path`` (a directory holding schema.pbtxt, or the
    file itself)."""
    file = os.path.join(path, SCHEMA_FILE) if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise ValueError(f"schema: no {SCHEMA_FILE} at {path!r}")
    with open(file, encoding="utf-8") as f:
        return schema_features(f.read())
