"""Re-running a continuous-training window: the state and decision runtimes on a real state
folder, and register_model's registration in a real registry (MLflow on SQLite), played in
the pipeline's order (load the state, decide, record the window; when retrained register the
model and record its version for the window, and when blessed record it as the production
model), as ``kfpkit run --window`` does.
Each run is a new pipeline run (its own run id and model folder), so the registry's own
restart check (same model, same run) does not hide a second version."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest

from kfpkit import window_state as state
from kfpkit.components.register_model.registration import registration_from
from kfpkit.components.retrain_decision.decision import Distance, Policy, decide
from kfpkit.registry import base, open_registry
from kfpkit.runtime.executor import Artifact

NOW = datetime(2026, 12, 1, tzinfo=UTC)
MODEL = "employment"
DRIFT = [Distance("ANC", "drift", "L_INFINITY", 0.5, 0.03)]


@pytest.fixture(scope="module")
def empty_registry(tmp_path_factory):
    """An MLflow SQLite database with its tables made, copied by each test (making them
    takes seconds)."""
    path = tmp_path_factory.mktemp("registry") / "mlflow.db"
    assert open_registry("mlflow", registry_uri=str(path)).list_versions(MODEL) == []
    return path


class Pipeline:
    """The state-keeping and registering steps of continuous_training."""

    def __init__(self, tmp_path, empty_registry):
        self.root = str(tmp_path / "state")
        self.tmp = tmp_path
        shutil.copyfile(empty_registry, tmp_path / "mlflow.db")
        self.registry = open_registry("mlflow", registry_uri=str(tmp_path / "mlflow.db"))
        self.runs = 0

    def run(self, window, policy=None, distances=(), blessed=True, register_attempts=1,  # type: ignore[no-untyped-def]
            fails_before_registering=False):  # fmt: skip
        self.runs += 1
        run_id = f"run-{self.runs}"
        stats = self.tmp / f"stats-{window}"
        stats.mkdir(exist_ok=True)
        (stats / state.STATISTICS_FILE).write_bytes(f"statistics of {window}".encode())
        loaded = state.load(self.root, window)
        decision = decide(loaded, list(distances), policy or Policy(), NOW)
        state.record_window(self.root, window, str(stats), decision.to_dict())
        if decision.retrain:
            if fails_before_registering:  # tune, train or evaluate failed: the run ends here
                return loaded, decision
            # register_model's step, then record-registration's; a KFP restart of them runs
            # them again in the same run
            for _ in range(register_attempts):
                version = self._register(window, run_id, blessed)
                meta = version.to_metadata()
                state.record_registration(self.root, window, meta["version"], meta["name"],
                                          meta["uri"], meta["aliases"],
                                          meta["created_at"])  # fmt: skip
            if blessed:
                state.record_production(self.root, window, str(stats), version.uri,
                                        version.version, now=NOW - timedelta(days=1))  # fmt: skip
        return loaded, decision

    def _register(self, window, run_id, blessed):  # type: ignore[no-untyped-def]
        model = self.tmp / run_id / "model"
        (model / "1").mkdir(parents=True, exist_ok=True)
        (model / "1" / "saved_model.pb").write_bytes(b"graph")
        rows = {"source": f"p.demo.employment_{window}", "row_count": 1000.0}  # as KFP passes
        train = Artifact("train_data", str(self.tmp / run_id / "train"), metadata=rows)
        registration = registration_from(
            MODEL, Artifact("model", str(model)),
            Artifact("metrics", str(self.tmp / run_id / "metrics"), metadata={"auc": 0.9}),
            blessed, {"train_data": train}, pipeline_run=f"ct-{run_id}", pipeline_run_id=run_id,
        )  # fmt: skip
        return self.registry.register(registration.name, registration.uri, registration.lineage,
                                      registration.metrics, registration.aliases)  # fmt: skip

    def versions(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """(version, the data it was trained on, aliases), oldest first."""
        return [(v.version, v.lineage[base.TRAIN_DATA_SOURCE].rsplit("_", 1)[1], v.aliases)
                for v in self.registry.list_versions(MODEL)]  # fmt: skip


def test_rerunning_the_production_window_never_trains_a_second_version(tmp_path, empty_registry):
    pipeline = Pipeline(tmp_path, empty_registry)
    _, first = pipeline.run("2015")
    assert first.retrain and pipeline.versions() == [("1", "2015", ("champion",))]

    again, second = pipeline.run("2015")
    assert again.windows_since_production == 0  # was 1: a model's own window made it older
    assert not second.retrain

    # the reproduction: with an age limit of one window it retrained on the same rows
    aged, third = pipeline.run("2015", Policy(max_model_age_windows=1))
    assert aged.windows_since_production == 0
    assert not third.retrain, third.reasons
    assert pipeline.versions() == [("1", "2015", ("champion",))]  # no version 2
    assert state.read_production(pipeline.root).version == "1"


def test_a_rerun_is_not_retrained_by_drift_skew_or_days_either(tmp_path, empty_registry):
    pipeline = Pipeline(tmp_path, empty_registry)
    pipeline.run("2015")
    pipeline.run("2016", Policy(max_model_age_windows=1))  # age 1: retrains, version 2
    assert [v[:2] for v in pipeline.versions()] == [("1", "2015"), ("2", "2016")]
    policy = Policy(max_model_age_windows=1, max_model_age_days=0.5)
    for window in ("2016", "2015"):  # the production window, then an older one
        loaded, decision = pipeline.run(window, policy, DRIFT)
        assert not decision.retrain, (window, decision.reasons)
        assert loaded.windows_since_production == 0
        assert "would have retrained for: " in decision.reasons[0]
        assert "days >= max_model_age_days" in decision.reasons[0]
    assert "drift from window 2015" in state.read_decisions(pipeline.root)["2016"]["reasons"][0]
    assert len(pipeline.versions()) == 2
    # the next new window still ages the model and retrains
    loaded, decision = pipeline.run("2017", Policy(max_model_age_windows=1))
    assert loaded.windows_since_production == 1 and decision.retrain
    assert [v[:2] for v in pipeline.versions()][-1] == ("3", "2017")


def test_rerunning_a_window_whose_model_was_not_blessed_registers_nothing_new(
    tmp_path, empty_registry
):
    pipeline = Pipeline(tmp_path, empty_registry)
    pipeline.run("2015")
    _, first = pipeline.run("2016", distances=DRIFT, blessed=False)  # the challenger
    assert first.retrain
    expected = [("1", "2015", ("champion",)), ("2", "2016", ("challenger",))]
    assert pipeline.versions() == expected
    # re-runs of 2016 (the drift from 2015 is still there, the model one window older):
    # each trained again and registered version 3, 4, ... of the same data
    for policy in (Policy(), Policy(max_model_age_windows=1), Policy()):
        loaded, again = pipeline.run("2016", policy, DRIFT, blessed=False)
        assert loaded.window_registered_before == "2"  # also after a re-run's own decision
        assert not again.retrain, again.reasons
        assert again.reasons[0].startswith(
            "not retrained: an earlier run of window 2016 registered version 2 from its data"
        )
        assert "would have retrained for: drift from window 2015" in again.reasons[0]
    assert pipeline.versions() == expected
    assert state.read_production(pipeline.root).window == "2015"
    # the next window is new data: it trains, and a KFP restart of its registration (the
    # same run, the same model) finds the version the first attempt registered
    _, later = pipeline.run("2017", distances=DRIFT, register_attempts=2)
    assert later.retrain and pipeline.versions()[2:] == [("3", "2017", ("champion",))]


@pytest.mark.parametrize("blessed", [True, False])
def test_a_run_that_failed_after_deciding_to_train_is_retrained_by_the_next_run_of_its_window(
    tmp_path, empty_registry, blessed
):
    pipeline = Pipeline(tmp_path, empty_registry)
    pipeline.run("2015")
    # 2016's first run decides to train (drift), records its decision, and fails in training
    _, failed = pipeline.run("2016", distances=DRIFT, fails_before_registering=True)
    assert failed.retrain and state.read_decisions(pipeline.root)["2016"]["retrain"] is True
    assert [v[:2] for v in pipeline.versions()] == [("1", "2015")]
    # was: "an earlier run of window 2016 trained on its data", nothing trained, and the user
    # had to delete windows/2016/decision.json by hand
    loaded, rerun = pipeline.run("2016", distances=DRIFT, blessed=blessed, register_attempts=2)
    assert loaded.window_registered_before == ""
    assert rerun.retrain, rerun.reasons
    assert rerun.reasons == ["drift from window 2015: ANC 0.5 > 0.03 (L_INFINITY)"]
    alias = "champion" if blessed else "challenger"
    assert pipeline.versions()[1:] == [("2", "2016", (alias,))]  # exactly one version
    assert state.registered_version(pipeline.root, "2016") == "2"
    # and the run after that one registers none
    loaded, third = pipeline.run("2016", Policy(max_model_age_windows=1), DRIFT, blessed=blessed)
    assert not third.retrain, third.reasons
    assert len(pipeline.versions()) == 2


def test_a_first_window_whose_model_was_not_blessed_is_not_trained_again(tmp_path, empty_registry):
    pipeline = Pipeline(tmp_path, empty_registry)
    pipeline.run("2015", blessed=False)  # no model in production, and none blessed
    loaded, again = pipeline.run("2015", blessed=False)
    assert loaded.production is None and not again.retrain
    assert "would have retrained for: no model in production" in again.reasons[0]
    assert pipeline.versions() == [("1", "2015", ("challenger",))]
    # the next window has no model in production either: it trains
    assert pipeline.run("2016")[1].retrain
    assert [v[:2] for v in pipeline.versions()] == [("1", "2015"), ("2", "2016")]


@pytest.mark.parametrize("recorded", [(), ("2015",)])
def test_a_year_written_with_leading_zeros_is_refused_first_or_not(
    tmp_path, empty_registry, recorded
):
    # was refused only as a recorded window written differently: a first '02015' trained
    pipeline = Pipeline(tmp_path, empty_registry)
    for window in recorded:
        pipeline.run(window)
    with pytest.raises(ValueError, match=r"window '02015' is a number written with leading"):
        pipeline.run("02015")
    assert state.recorded_windows(pipeline.root) == list(recorded)
    assert len(pipeline.versions()) == len(recorded)


@pytest.mark.parametrize(
    ("window", "refusal"),
    [("02015", "is a number written with leading zeros"), ("2015 ", "must be a label"),
     ("+2015", "must be a label"), ("२०१५", "must be a label"),
     ("2015-01-31", "demo windows are years")],
)  # fmt: skip
def test_the_demo_cli_refuses_a_year_not_written_as_one(tmp_path, window, refusal):
    from kfpkit.continuous import window_parquet

    with pytest.raises(ValueError, match=refusal):
        window_parquet(window, tmp_path)
    assert list(tmp_path.iterdir()) == []
