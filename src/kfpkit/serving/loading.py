"""Loads a SavedModel to serve, or says which folder, which version and what is wrong.

:func:`check_saved_model` needs no TensorFlow (the SDK's ``kfpkit serve`` calls it before it
starts a server, for the model, ``--shadow`` and each variant): the highest version's
``saved_model.pb`` must be a non-empty ``tensorflow.SavedModel`` protocol buffer holding at least
one MetaGraph. The check walks the message's top-level fields (wire format only), so random
bytes, a truncated file or an empty one are refused; a file that passes can still fail to load
(e.g. corrupt variables): :func:`load_serving_model` turns that failure into the same kind of
message. Both raise ``ValueError`` (a user error: the server and the CLI exit 2).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from kfpkit.runtime.model_versions import latest_version_dir

if TYPE_CHECKING:
    from kfpkit.tabular import ServingModel

SAVED_MODEL_FILE = "saved_model.pb"
_META_GRAPHS_FIELD = 2  # SavedModel.meta_graphs (repeated MetaGraphDef)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise ValueError(f"a truncated or overlong varint at byte {pos}")


def _meta_graph_count(data: bytes) -> int:
    """MetaGraphs in a serialized SavedModel; ValueError where the wire format breaks."""
    count = pos = 0
    while pos < len(data):
        start = pos
        tag, pos = _varint(data, pos)
        field, wire_type = tag >> 3, tag & 7
        if field == 0:
            raise ValueError(f"field number 0 at byte {start}")
        if wire_type == 0:
            _, pos = _varint(data, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        elif wire_type == 2:
            length, pos = _varint(data, pos)
            pos += length
            count += field == _META_GRAPHS_FIELD
        else:  # groups (3, 4) are not in SavedModel; 6 and 7 do not exist
            raise ValueError(f"wire type {wire_type} at byte {start}")
        if pos > len(data):
            raise ValueError(f"field {field} at byte {start} runs past the end of the file")
    return count


def check_saved_model(model_dir: str, role: str = "model") -> str:
    """The version folder that would be served (the highest number), checked without
    TensorFlow; ValueError naming ``role``, the folder, the version and what is wrong."""
    version_dir = latest_version_dir(model_dir, role)
    file = os.path.join(version_dir, SAVED_MODEL_FILE)
    where = f"{role} {model_dir!r} version {os.path.basename(version_dir)}"
    try:
        with open(file, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ValueError(f"{where}: cannot read {SAVED_MODEL_FILE}: {e}") from None
    if not data:
        raise ValueError(f"{where}: {SAVED_MODEL_FILE} is empty (0 bytes): export the model again")
    try:
        meta_graphs = _meta_graph_count(data)
    except ValueError as e:
        raise ValueError(
            f"{where}: {SAVED_MODEL_FILE} ({len(data)} bytes) is not a SavedModel protocol "
            f"buffer ({e}): the file is corrupt or not a SavedModel"
        ) from None
    if meta_graphs == 0:
        raise ValueError(f"{where}: {SAVED_MODEL_FILE} holds no MetaGraph (no graph to serve)")
    return version_dir


def load_serving_model(model_dir: str, role: str = "model") -> ServingModel:
    """The SavedModel's ``serving_default`` signature, ready to call; ValueError naming the
    folder, the version and what is wrong when it cannot be loaded."""
    from kfpkit.tabular import ServingModel

    version_dir = check_saved_model(model_dir, role)
    where = f"{role} {model_dir!r} version {os.path.basename(version_dir)}"
    try:
        return ServingModel(model_dir, role)
    except ValueError as e:
        message = str(e)
        raise ValueError(message if model_dir in message else f"{where}: {message}") from None
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - TensorFlow raises many types for a broken model
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{where}: TensorFlow cannot load it: {first}") from None
