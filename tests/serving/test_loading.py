"""The SavedModel check that runs before a server starts (no TensorFlow here): which files it
refuses, and that each message names the role, the folder, the version and the fault. A real
exported SavedModel passing the check is tested in tests/faults/test_serve_faults.py."""

from __future__ import annotations

import os
import random

import pytest

from kfpkit.serving.loading import check_saved_model

# A SavedModel as TensorFlow serializes one: saved_model_schema_version 1 (field 1, varint),
# then a MetaGraphDef (field 2, length-delimited) holding meta_info_def (1) with tags (4) "serve".
MINIMAL = b"\x08\x01" + b"\x12\x09" + b"\x0a\x07" + b"\x22\x05serve"


def version(tmp_path, content: bytes, number: str = "3"):
    folder = tmp_path / "model" / number
    folder.mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(content)
    return tmp_path / "model"


def test_a_well_formed_saved_model_passes_and_gives_the_highest_version(tmp_path):
    model = version(tmp_path, MINIMAL, "2")
    (model / "10").mkdir()
    (model / "10" / "saved_model.pb").write_bytes(MINIMAL)
    assert check_saved_model(str(model)) == os.path.join(str(model), "10")


def test_an_empty_saved_model_is_refused_naming_folder_version_and_role(tmp_path):
    model = version(tmp_path, b"")
    with pytest.raises(ValueError) as e:
        check_saved_model(str(model), "--shadow")
    assert str(e.value) == (
        f"--shadow {str(model)!r} version 3: saved_model.pb is empty (0 bytes): "
        "export the model again"
    )


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes_are_refused(tmp_path, seed):
    model = version(tmp_path, random.Random(seed).randbytes(4096))
    with pytest.raises(ValueError, match=r"model '.*' version 3: saved_model\.pb \(4096 bytes\) "
                                         r"is not a SavedModel protocol buffer"):  # fmt: skip
        check_saved_model(str(model))


def test_a_truncated_saved_model_is_refused(tmp_path):
    model = version(tmp_path, MINIMAL[:-3])
    with pytest.raises(ValueError, match="runs past the end of the file"):
        check_saved_model(str(model), "variant b")


def test_a_protocol_buffer_without_a_meta_graph_is_refused(tmp_path):
    model = version(tmp_path, b"\x08\x01")  # only the schema version
    with pytest.raises(ValueError, match="version 3: saved_model.pb holds no MetaGraph"):
        check_saved_model(str(model))


def test_a_folder_without_versions_is_refused(tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(ValueError, match=r"MODEL_DIR: no <version>/saved_model.pb under"):
        check_saved_model(str(tmp_path / "m"), "MODEL_DIR")
