"""Re-running a continuous-training window: the state and decision runtimes on a real state
folder, played in the pipeline's order (load the state, decide, record the window, and when
retrained record the new production model), as ``kfpkit run --window`` does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kfpkit import window_state as state
from kfpkit.components.retrain_decision.decision import Distance, Policy, decide

NOW = datetime(2026, 12, 1, tzinfo=UTC)


class Pipeline:
    """The state-keeping steps of continuous_training; a retrain registers the next version."""

    def __init__(self, tmp_path):
        self.root = str(tmp_path / "state")
        self.tmp = tmp_path
        self.versions: list[str] = []  # window each registered version was trained on

    def run(self, window, policy=None, distances=()):  # type: ignore[no-untyped-def]
        stats = self.tmp / f"stats-{window}"
        stats.mkdir(exist_ok=True)
        (stats / state.STATISTICS_FILE).write_bytes(f"statistics of {window}".encode())
        loaded = state.load(self.root, window)
        decision = decide(loaded, list(distances), policy or Policy(), NOW)
        state.record_window(self.root, window, str(stats), decision.to_dict())
        if decision.retrain:
            self.versions.append(window)
            version = str(len(self.versions))
            state.record_production(self.root, window, str(stats), f"/serving/{version}",
                                    version, now=NOW - timedelta(days=1))  # fmt: skip
        return loaded, decision


def test_rerunning_the_production_window_never_trains_a_second_version(tmp_path):
    pipeline = Pipeline(tmp_path)
    _, first = pipeline.run("2015")
    assert first.retrain and pipeline.versions == ["2015"]

    again, second = pipeline.run("2015")
    assert again.windows_since_production == 0  # was 1: a model's own window made it older
    assert not second.retrain

    # the reproduction: with an age limit of one window it retrained on the same rows
    aged, third = pipeline.run("2015", Policy(max_model_age_windows=1))
    assert aged.windows_since_production == 0
    assert not third.retrain, third.reasons
    assert pipeline.versions == ["2015"]  # no version 2
    assert state.read_production(pipeline.root).version == "1"


def test_a_rerun_is_not_retrained_by_drift_skew_or_days_either(tmp_path):
    pipeline = Pipeline(tmp_path)
    pipeline.run("2015")
    pipeline.run("2016", Policy(max_model_age_windows=1))  # age 1: retrains, version 2
    assert pipeline.versions == ["2015", "2016"]
    drift = [Distance("ANC", "drift", "L_INFINITY", 0.5, 0.03)]
    policy = Policy(max_model_age_windows=1, max_model_age_days=0.5)
    for window in ("2016", "2015"):  # the production window, then an older one
        loaded, decision = pipeline.run(window, policy, drift)
        assert not decision.retrain, (window, decision.reasons)
        assert loaded.windows_since_production == 0
        assert "would have retrained for: " in decision.reasons[0]
        assert "days >= max_model_age_days" in decision.reasons[0]
    assert "drift from window 2015" in state.read_decisions(pipeline.root)["2016"]["reasons"][0]
    assert pipeline.versions == ["2015", "2016"]
    # the next new window still ages the model and retrains
    loaded, decision = pipeline.run("2017", Policy(max_model_age_windows=1))
    assert loaded.windows_since_production == 1 and decision.retrain
    assert pipeline.versions == ["2015", "2016", "2017"]


@pytest.mark.parametrize("label", ["02015", "002015"])
def test_a_recorded_year_written_with_leading_zeros_is_refused(tmp_path, label):
    pipeline = Pipeline(tmp_path)
    pipeline.run("2015")
    with pytest.raises(ValueError, match=rf"window '{label}' is the recorded window '2015'"):
        pipeline.run(label)
    assert state.recorded_windows(pipeline.root) == ["2015"]
    assert pipeline.versions == ["2015"]


@pytest.mark.parametrize("window", ["02015", "2015 ", "+2015", "२०१५"])
def test_the_demo_cli_refuses_a_year_not_written_as_one(tmp_path, window):
    from kfpkit.continuous import window_parquet

    with pytest.raises(ValueError, match="demo windows are years written as such"):
        window_parquet(window, tmp_path)
    assert list(tmp_path.iterdir()) == []
