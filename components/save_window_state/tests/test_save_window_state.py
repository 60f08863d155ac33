"""save_window_state's launcher on a real state folder: bad input writes nothing.

The round trip through load_window_state is tested with that component
(components/load_window_state/tests/test_window_state.py)."""

from __future__ import annotations

import json

import pytest

from kfpkit import testing
from kfpkit.components.save_window_state import launcher as save_launcher
from kfpkit.runtime import executor


def stats_dir(tmp_path, name, content=b"stats"):
    folder = tmp_path / name
    folder.mkdir(parents=True)
    (folder / "FeatureStats.pb").write_bytes(content)
    return folder


def _launch(run, doc):
    return executor.launch(run, ["--executor_input", json.dumps(doc)])


def test_save_without_decision_or_model_fails_and_writes_nothing(tmp_path):
    doc = testing.executor_input(
        tmp_path / "out", {"state_uri": str(tmp_path / "state"), "window": "2016"},
        {"record": "system.Artifact"},
        inputs={"statistics": ("system.Artifact", str(stats_dir(tmp_path, "s")))},
    )  # fmt: skip
    assert _launch(save_launcher.run, doc) == 2
    assert not (tmp_path / "out" / "executor_output.json").exists()
    assert not (tmp_path / "state" / "windows").exists()


@pytest.mark.parametrize(
    ("given", "metadata"),
    [(("decision", "registered_model"), {"version": "1"}),
     (("published_model", "registered_model"), {"version": "1"}),
     (("registered_model",), {"name": "employment"})],  # a registration without its version
)  # fmt: skip
def test_two_records_at_once_or_a_registration_without_version_writes_nothing(
    tmp_path, given, metadata
):
    inputs = {"statistics": ("system.Artifact", str(stats_dir(tmp_path, "s")))}
    for name in given:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "decision.json").write_text(json.dumps({"window": "2016", "retrain": True}))
        inputs[name] = ("system.Artifact", str(folder))
    doc = testing.executor_input(
        tmp_path / "out", {"state_uri": str(tmp_path / "state"), "window": "2016"},
        {"record": "system.Artifact"}, inputs=inputs,
        input_metadata={"registered_model": metadata, "published_model": {"version": 1}},
    )  # fmt: skip
    assert _launch(save_launcher.run, doc) == 2
    assert not (tmp_path / "out" / "executor_output.json").exists()
    assert not (tmp_path / "state" / "windows").exists()
