"""window_state: the state folder on real files, and both launchers through the executor."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from kfpkit import testing
from kfpkit import window_state as state
from kfpkit.components.load_window_state import launcher as load_launcher
from kfpkit.components.save_window_state import launcher as save_launcher
from kfpkit.runtime import executor


def stats_dir(tmp_path, name, content=b"stats"):
    folder = tmp_path / name
    folder.mkdir(parents=True)
    (folder / "FeatureStats.pb").write_bytes(content)
    return folder


def test_empty_state_is_the_first_window(tmp_path):
    got = state.load(str(tmp_path / "state"), "2015")
    assert got.previous_window == "" and got.production is None
    assert got.windows_since_production == 0


def test_previous_window_production_and_age(tmp_path):
    root = str(tmp_path / "state")
    for window in ("2015", "2016", "2017"):
        state.record_window(root, window, str(stats_dir(tmp_path, window, window.encode())),
                            {"window": window})  # fmt: skip
    state.record_production(root, "2015", str(tmp_path / "2015"), "/serving/1", "1",
                            now=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
    got = state.load(root, "2018")
    assert got.previous_window == "2017"
    assert got.recorded_windows == ("2015", "2016", "2017")
    assert got.production.window == "2015" and got.production.model_uri == "/serving/1"
    assert got.windows_since_production == 3  # 2016, 2017, and 2018 itself
    with open(state.production_statistics(root), "rb") as f:
        assert f.read() == b"2015"
    # a re-run of 2017 ignores its own record
    again = state.load(root, "2017")
    assert again.previous_window == "2016" and again.windows_since_production == 2
    assert list(state.read_decisions(root)) == ["2015", "2016", "2017"]


def test_a_window_without_statistics_is_not_recorded(tmp_path):
    root = tmp_path / "state"
    (root / "windows" / "2016").mkdir(parents=True)
    (root / "windows" / "2016" / "decision.json").write_text("{}")  # crashed before the copy
    assert state.load(str(root), "2017").previous_window == ""


@pytest.mark.parametrize("bad", ["", "../x", "a b", "2016;DROP", "x" * 65])
def test_bad_window_labels_are_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="window"):
        state.load(str(tmp_path), bad)


@pytest.mark.parametrize("label", ["02015", "00", "0001"])
def test_a_number_with_leading_zeros_is_refused_even_as_the_first_window(tmp_path, label):
    root = tmp_path / "state"
    with pytest.raises(ValueError, match=rf"window '{label}' is a number written with leading"):
        state.load(str(root), label)
    with pytest.raises(ValueError, match=rf"window '{label}'"):
        state.record_window(str(root), label, str(stats_dir(tmp_path, "s")), {})
    assert not root.exists()
    # zero itself, and labels that only start with a zero digit, are identifiers as written
    for fine in ("0", "0a", "0-1", "2015"):
        assert state.load(str(root), fine).window == fine


def test_a_window_counts_as_registered_once_its_registration_is_recorded(tmp_path):
    root = str(tmp_path / "state")
    stats = str(stats_dir(tmp_path, "s"))
    assert state.load(root, "2016").window_registered_before == ""  # never run
    # 2016 decided to train and its run failed before registering: no version, no guard
    state.record_window(root, "2016", stats, {"window": "2016", "retrain": True})
    assert state.load(root, "2016").window_registered_before == ""
    record = state.record_registration(root, "2016", "2", model_name="employment",
                                       uri="/models/2", aliases=["challenger"],
                                       created_at="2026-12-01T00:00:00+00:00")  # fmt: skip
    path = tmp_path / "state" / "windows" / "2016" / "registration.json"
    assert json.loads(path.read_text()) == record
    assert record["version"] == "2" and record["aliases"] == ["challenger"]
    loaded = state.load(root, "2016")
    assert loaded.window_registered_before == "2"
    assert state.load(root, "2017").window_registered_before == ""  # keyed on the window
    assert state.WindowState.from_dict(loaded.to_dict()) == loaded  # the state.json round trip
    # a KFP retry of the step writes the same record again, and leaves no temporary file
    assert state.record_registration(root, "2016", "2", model_name="employment",
                                     uri="/models/2", aliases=["challenger"],
                                     created_at="2026-12-01T00:00:00+00:00") == record  # fmt: skip
    assert json.loads(path.read_text()) == record
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "FeatureStats.pb", "decision.json", "registration.json"]  # fmt: skip
    with pytest.raises(ValueError, match="version is empty: window 2017's registration"):
        state.record_registration(root, "2017", "")
    assert not (tmp_path / "state" / "windows" / "2017").exists()
    path.write_text("{not json")
    with pytest.raises(RuntimeError, match=r"2016/registration.json is not a registration"):
        state.load(root, "2016")
    path.write_text(json.dumps({"window": "2016"}))
    with pytest.raises(RuntimeError, match=r"is not a registration record \(no version\)"):
        state.load(root, "2016")


def test_state_uri_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ValueError, match="not a directory"):
        state.load(str(tmp_path / "f"), "2016")


def _launch(run, doc):
    return executor.launch(run, ["--executor_input", json.dumps(doc)])


def test_launchers_round_trip(tmp_path):
    root = str(tmp_path / "state")
    current = stats_dir(tmp_path, "current", b"2015 stats")
    load_doc = testing.executor_input(
        tmp_path / "load1", {"state_uri": root, "window": "2015"},
        {"previous_statistics": "system.Artifact", "production_statistics": "system.Artifact",
         "state": "system.Artifact"},
        inputs={"current_statistics": ("system.Artifact", str(current))},
    )  # fmt: skip
    assert _launch(load_launcher.run, load_doc) == 0
    out = json.loads((tmp_path / "load1" / "executor_output.json").read_text())
    prev = out["artifacts"]["previous_statistics"]["artifacts"][0]["metadata"]
    assert prev["fallback"] is True  # nothing to compare with on the first window
    assert (
        tmp_path / "load1" / "previous_statistics" / "FeatureStats.pb"
    ).read_bytes() == b"2015 stats"

    decision = tmp_path / "decision"
    decision.mkdir()
    (decision / "decision.json").write_text(json.dumps({"window": "2015", "retrain": True}))
    save_doc = testing.executor_input(
        tmp_path / "save1", {"state_uri": root, "window": "2015"}, {"record": "system.Artifact"},
        inputs={"statistics": ("system.Artifact", str(current)),
                "decision": ("system.Artifact", str(decision))},
    )  # fmt: skip
    assert _launch(save_launcher.run, save_doc) == 0
    published = tmp_path / "published"
    published.mkdir()
    promote_doc = testing.executor_input(
        tmp_path / "save2", {"state_uri": root, "window": "2015"}, {"record": "system.Artifact"},
        inputs={"statistics": ("system.Artifact", str(current)),
                "published_model": ("system.Model", str(published))},
        input_metadata={
            "published_model": {"published_uri": "/serving/employment/1", "version": 1}
        },
    )  # fmt: skip
    assert _launch(save_launcher.run, promote_doc) == 0
    registered = tmp_path / "registered"
    registered.mkdir()
    register_doc = testing.executor_input(
        tmp_path / "save3", {"state_uri": root, "window": "2015"}, {"record": "system.Artifact"},
        inputs={"statistics": ("system.Artifact", str(current)),
                "registered_model": ("system.Artifact", str(registered))},
        input_metadata={"registered_model": {
            "name": "employment", "version": "1", "uri": "/serving/employment/1",
            "aliases": ["champion"], "created_at": "2026-12-01T00:00:00+00:00",
            "lineage": {"pipeline_run_id": "r1"}}},
    )  # fmt: skip
    assert _launch(save_launcher.run, register_doc) == 0
    out = json.loads((tmp_path / "save3" / "executor_output.json").read_text())
    record = out["artifacts"]["record"]["artifacts"][0]["metadata"]
    assert record["recorded"] == "registration" and record["version"] == "1"

    next_stats = stats_dir(tmp_path, "next", b"2016 stats")
    load_doc = testing.executor_input(
        tmp_path / "load2", {"state_uri": root, "window": "2016"},
        {"previous_statistics": "system.Artifact", "production_statistics": "system.Artifact",
         "state": "system.Artifact"},
        inputs={"current_statistics": ("system.Artifact", str(next_stats))},
    )  # fmt: skip
    assert _launch(load_launcher.run, load_doc) == 0
    loaded = json.loads((tmp_path / "load2" / "state" / "state.json").read_text())
    assert loaded["previous_window"] == "2015"
    assert loaded["production"]["model_uri"] == "/serving/employment/1"
    assert loaded["windows_since_production"] == 1
    assert loaded["window_registered_before"] == ""  # 2015's registration is 2015's
    load_doc = testing.executor_input(
        tmp_path / "load3", {"state_uri": root, "window": "2015"},
        {"previous_statistics": "system.Artifact", "production_statistics": "system.Artifact",
         "state": "system.Artifact"},
        inputs={"current_statistics": ("system.Artifact", str(current))},
    )  # fmt: skip
    assert _launch(load_launcher.run, load_doc) == 0
    rerun = json.loads((tmp_path / "load3" / "state" / "state.json").read_text())
    assert rerun["window_registered_before"] == "1"
    assert (
        tmp_path / "load2" / "previous_statistics" / "FeatureStats.pb"
    ).read_bytes() == b"2015 stats"
    assert (
        tmp_path / "load2" / "production_statistics" / "FeatureStats.pb"
    ).read_bytes() == b"2015 stats"
