"""retrain_decision: the pure rule, then the launcher on anomalies real TFDV measured."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from kfpkit.components.retrain_decision.decision import Distance, Policy, Served, decide
from kfpkit.window_state import Production, WindowState

NOW = datetime(2026, 12, 1, tzinfo=UTC)
PROD = Production("2015", "/serving/employment/1", "1", (NOW - timedelta(days=3)).isoformat())


def state(window="2016", previous="2015", production=PROD, since=1, registered_before=""):
    return WindowState(window, previous, (previous,) if previous else (), production, since,
                       registered_before)  # fmt: skip


def d(feature, kind, value, threshold=0.03, measure="L_INFINITY"):
    return Distance(feature, kind, measure, value, threshold)


def test_first_window_retrains_because_nothing_is_in_production():
    got = decide(state(window="2015", previous="", production=None, since=0), [], Policy(), NOW)
    assert got.retrain
    assert got.reasons == ["no model in production"]
    assert got.production_window == "" and got.model_age_days is None


def test_first_window_ignores_distances_against_the_fallback_baselines():
    # load_window_state hands the window's own statistics as baselines: distances mean nothing
    found = [d("ANC", "drift", 0.5), d("ANC", "skew", 0.5)]
    got = decide(
        state(window="2015", previous="", production=None, since=0), found, NOW and Policy()
    )
    assert got.drifted == [] and got.skewed == [] and got.measured == []


def test_drift_over_threshold_retrains_and_names_feature_distance_threshold():
    found = [d("ANC", "drift", 0.0324), d("MIG", "drift", 0.004), d("ANC", "skew", 0.0324)]
    got = decide(state(), found, Policy(retrain_on_skew=False), NOW)
    assert got.retrain
    assert got.reasons == ["drift from window 2015: ANC 0.0324 > 0.03 (L_INFINITY)"]
    assert got.drifted == [
        {
            "feature": "ANC",
            "kind": "drift",
            "measure": "L_INFINITY",
            "value": 0.0324,
            "threshold": 0.03,
        }  # fmt: skip
    ]


def test_skew_over_threshold_retrains_unless_turned_off():
    found = [d("ANC", "drift", 0.01), d("ANC", "skew", 0.04)]
    assert decide(state(), found, Policy(), NOW).reasons == [
        "skew from the production model's training data (window 2015): ANC 0.04 > 0.03 (L_INFINITY)"
    ]
    off = decide(state(), found, Policy(retrain_on_skew=False), NOW)
    assert not off.retrain
    assert "skew over threshold ignored (retrain_on_skew is off): ANC 0.04 > 0.03" in off.reasons[0]


def test_unchanged_window_records_why_nothing_was_retrained():
    js = "JENSEN_SHANNON_DIVERGENCE"
    found = [d("ANC", "drift", 0.0155), d("AGEP", "drift", 0.002, 0.03, js),
             d("ANC", "skew", 0.0155)]  # fmt: skip
    got = decide(state(window="2017", previous="2016", since=1), found,
                 Policy(max_model_age_windows=2), NOW)  # fmt: skip
    assert not got.retrain
    assert got.reasons == [
        "not retrained: no feature drifted beyond its threshold (largest ANC 0.0155 <= 0.03); "
        "no feature skewed beyond its threshold (largest ANC 0.0155 <= 0.03); "
        "model age 1 windows < max_model_age_windows 2"
    ]
    assert len(got.measured) == 3


@pytest.mark.parametrize("feature", ["id", "year"])
def test_ignored_features_never_count_whatever_was_measured(feature):
    found = [d(feature, "drift", 1.0), d(feature, "skew", 1.0)]
    got = decide(state(), found, Policy(ignored_features=("id", "year")), NOW)
    assert not got.retrain
    assert got.measured == [] and got.ignored_features == ["id", "year"]


def test_no_feature_is_ignored_by_default_the_pipeline_names_its_data():
    got = decide(state(), [d("year", "drift", 1.0)], Policy(), NOW)
    assert got.retrain and got.ignored_features == []
    assert got.reasons == ["drift from window 2015: year 1 > 0.03 (L_INFINITY)"]


def test_a_rerun_of_a_window_that_registered_a_version_trains_nothing_whatever_the_reasons():
    # 2016 registered version 2 in an earlier run, not blessed: 2015's model is in production
    found = [d("ANC", "drift", 0.05)]
    first = decide(state(), found, Policy(max_model_age_windows=1), NOW)
    assert first.retrain and first.window_registered_before == ""
    again = decide(state(registered_before="2"), found, Policy(max_model_age_windows=1), NOW)
    assert not again.retrain and again.window_registered_before == "2"
    assert again.reasons == [
        "not retrained: an earlier run of window 2016 registered version 2 from its data "
        "(windows/2016/registration.json, blessed or not); a re-run never registers a second "
        "version from the same data; would have retrained for: drift from window 2015: ANC "
        "0.05 > 0.03 (L_INFINITY); model age 1 windows >= max_model_age_windows 1 (trained on "
        "window 2015)"
    ]
    # the first window whose model was not blessed: "no model in production" is no reason
    first_window = state(window="2015", previous="", production=None, since=0,
                         registered_before="1")  # fmt: skip
    assert not decide(first_window, [], Policy(), NOW).retrain
    # nothing to retrain for: the usual why-not
    quiet = decide(state(registered_before="2"), [d("ANC", "drift", 0.01)], Policy(), NOW)
    assert not quiet.retrain
    assert quiet.reasons[0].startswith("not retrained: no feature drifted beyond its threshold")


def test_a_window_whose_earlier_run_failed_before_registering_is_decided_afresh():
    # that run recorded a decision to train, then failed: it registered no version, so the
    # state has nothing registered for 2016 and the same reasons retrain it
    found = [d("ANC", "drift", 0.05)]
    rerun = decide(state(registered_before=""), found, Policy(), NOW)
    assert rerun.retrain
    assert rerun.reasons == ["drift from window 2015: ANC 0.05 > 0.03 (L_INFINITY)"]
    first_window = state(window="2015", previous="", production=None, since=0)
    assert decide(first_window, [], Policy(), NOW).retrain


def test_zero_threshold_means_not_compared():
    assert not decide(state(), [d("ANC", "drift", 0.9, threshold=0.0)], Policy(), NOW).retrain


def test_model_age_in_windows_and_in_days():
    got = decide(
        state(window="2018", previous="2017", since=2), [], Policy(max_model_age_windows=2), NOW
    )
    assert got.retrain
    assert got.reasons == [
        "model age 2 windows >= max_model_age_windows 2 (trained on window 2015)"
    ]
    by_days = decide(state(), [], Policy(max_model_age_days=2.5), NOW)
    assert by_days.reasons == ["model age 3.0 days >= max_model_age_days 2.5"]
    assert not decide(state(), [], Policy(max_model_age_days=4), NOW).retrain


def test_every_reason_is_recorded():
    found = [d("ANC", "drift", 0.05), d("SCHL", "skew", 0.06)]
    got = decide(state(since=3), found, Policy(max_model_age_windows=2), NOW)
    assert [r.split(" ")[0] for r in got.reasons] == ["drift", "skew", "model"]


@pytest.mark.parametrize("bad", [-1, float("nan"), True, "2"])
def test_bad_policy_values_are_refused(bad):
    with pytest.raises(ValueError, match="max_model_age_windows"):
        Policy(max_model_age_windows=bad)


def test_launcher_on_anomalies_measured_by_real_tfdv(tmp_path):
    """Real statistics of two windows, real TFDV drift/skew measurements, the launcher."""
    import pandas as pd
    import tensorflow_data_validation as tfdv
    from google.protobuf import text_format

    from kfpkit import testing
    from kfpkit.components.retrain_decision import launcher
    from kfpkit.runtime import executor
    from kfpkit.tfdv.validation import Thresholds, validate

    def stats(share_a, year):
        n = 1000
        a = int(n * share_a)
        frame = pd.DataFrame({"ANC": ["a"] * a + ["b"] * (n - a),
                              "AGEP": [30.0 + i % 40 for i in range(n)],
                              "id": list(range(year * n, year * n + n)),
                              "year": [year] * n})  # fmt: skip
        return tfdv.generate_statistics_from_dataframe(frame)

    old, new = stats(0.5, 2015), stats(0.6, 2016)  # ANC moves by 0.1 (L-infinity)
    schema = tfdv.infer_schema(new)
    off = {"id": 0.0, "year": 0.0}
    limits = Thresholds(0.03, 0.03, off)
    anomalies = validate(new, schema, baseline=old, serving=old, drift=limits, skew=limits)
    (tmp_path / "anomalies").mkdir()
    (tmp_path / "anomalies" / "anomalies.pbtxt").write_text(text_format.MessageToString(anomalies))
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.json").write_text(json.dumps(state().to_dict()))
    doc = testing.executor_input(
        tmp_path / "out",
        {"max_model_age_windows": 5, "ignored_features": ["id", "year"]},
        {"decision": "system.Artifact"},
        inputs={
            "anomalies": ("system.Artifact", str(tmp_path / "anomalies")),
            "state": ("system.Artifact", str(tmp_path / "state")),
        },  # fmt: skip
        output_params=["retrain", "reasons"],
    )
    assert executor.launch(launcher.run, ["--executor_input", json.dumps(doc)]) == 0
    decision = json.loads((tmp_path / "out" / "decision" / "decision.json").read_text())
    assert decision["retrain"] is True and decision["window_registered_before"] == ""
    assert [x["feature"] for x in decision["drifted"]] == ["ANC"]
    assert decision["drifted"][0]["value"] == pytest.approx(0.1, abs=1e-6)
    assert [x["feature"] for x in decision["skewed"]] == ["ANC"]
    measured = {(x["feature"], x["kind"]) for x in decision["measured"]}
    assert measured == {("ANC", "drift"), ("ANC", "skew"), ("AGEP", "drift"), ("AGEP", "skew")}
    out = json.loads((tmp_path / "out" / "executor_output.json").read_text())
    assert out["parameterValues"]["retrain"] is True


# --- served traffic (monitor_serving's monitoring) ------------------------------------------

DECAYED = {"labelled_rows": 800, "metric": "auc", "auc": 0.85, "reference": 0.90,
           "decay": 0.05, "max_decay": 0.02, "over": True}  # fmt: skip
HELD = {**DECAYED, "auc": 0.895, "decay": 0.005, "over": False}


def served(skew=(), performance=None, rows=1000):
    return Served(rows, tuple(skew), performance or {})


def test_served_skew_and_performance_decay_retrain_with_their_reasons():
    monitoring = served([d("ANC", "skew", 0.043), d("MIG", "skew", 0.01)], DECAYED)
    got = decide(state(), [d("ANC", "drift", 0.01)], Policy(), NOW, served=monitoring)
    assert got.retrain
    assert got.reasons == [
        "served traffic skewed from the model's training data: ANC 0.043 > 0.03 (L_INFINITY)",
        "served performance decayed: auc 0.8500 on 800 labelled rows, 0.0500 below the "
        "model's 0.9000 (max_decay 0.02)",
    ]
    assert [x["feature"] for x in got.served["skewed"]] == ["ANC"]
    assert got.served["rows"] == 1000 and got.served["performance"]["over"] is True


def test_served_traffic_within_thresholds_is_said_in_why_not():
    got = decide(state(), [d("ANC", "drift", 0.01)], Policy(), NOW,
                 served=served([d("ANC", "skew", 0.02)], HELD))  # fmt: skip
    assert not got.retrain
    assert got.reasons[0].endswith(
        "; no served feature skewed beyond its threshold (largest ANC 0.02 <= 0.03); "
        "served auc decay 0.0050 <= max_decay 0.02"
    )


def test_served_skew_follows_the_policy_and_the_ignored_features():
    skewed = served([d("ANC", "skew", 0.05), d("year", "skew", 1.0)])
    off = decide(state(), [], Policy(retrain_on_skew=False, ignored_features=("year",)), NOW,
                 served=skewed)  # fmt: skip
    assert not off.retrain
    assert "served skew over threshold ignored (retrain_on_skew is off): ANC 0.05" in off.reasons[0]
    assert [x["feature"] for x in off.served["measured"]] == ["ANC"]  # year never counts


def test_absent_or_empty_monitoring_changes_nothing():
    found = [d("ANC", "drift", 0.0155), d("ANC", "skew", 0.0155)]
    plain = decide(state(), found, Policy(max_model_age_windows=2), NOW)
    for monitoring in (None, served(rows=0)):
        got = decide(state(), found, Policy(max_model_age_windows=2), NOW, served=monitoring)
        assert (got.retrain, got.reasons) == (plain.retrain, plain.reasons)
    assert plain.served == {}


def test_without_a_window_state_only_distances_and_served_traffic_count():
    got = decide(None, [], Policy(), NOW, served=served([d("ANC", "skew", 0.043)]))
    assert got.retrain and got.window == "" and got.production_window == ""
    assert got.reasons == [
        "served traffic skewed from the model's training data: ANC 0.043 > 0.03 (L_INFINITY)"
    ]
    quiet = decide(None, [], Policy(), NOW, served=served(rows=0))
    assert not quiet.retrain and quiet.reasons == ["not retrained: no served traffic"]


def test_served_monitoring_of_another_shape_is_refused_by_name():
    with pytest.raises(ValueError, match="monitoring: not monitor_serving's monitoring.json"):
        Served.from_monitoring({"rows": 5, "skew": [{"feature": "ANC"}]})
    with pytest.raises(ValueError, match="monitoring: performance is not an object"):
        Served.from_monitoring({"rows": 5, "performance": [1]})


def test_launcher_with_monitoring_only_and_with_an_empty_monitoring_folder(tmp_path):
    from kfpkit import testing
    from kfpkit.components.retrain_decision import launcher
    from kfpkit.runtime import executor

    monitoring = {  # monitor_serving's monitoring.json, as it writes it
        "alert": True, "reasons": ["..."], "rows": 4000, "error_rows": 0,
        "features": ["AGEP", "ANC"], "moved_features": ["ANC"],
        "skew": [{"feature": "ANC", "kind": "skew", "measure": "L_INFTY", "value": 0.043,
                  "threshold": 0.03},
                 {"feature": "AGEP", "kind": "skew", "measure": "JENSEN_SHANNON_DIVERGENCE",
                  "value": 0.004, "threshold": 0.03}],
        "drift": [], "performance": HELD,
    }  # fmt: skip
    (tmp_path / "monitoring").mkdir()
    (tmp_path / "monitoring" / "monitoring.json").write_text(json.dumps(monitoring))
    (tmp_path / "empty").mkdir()

    def run(out, inputs):
        outputs = {"decision": "system.Artifact"}
        doc = testing.executor_input(tmp_path / out, {}, outputs, inputs=inputs,
                                     output_params=["retrain", "reasons"])  # fmt: skip
        assert executor.launch(launcher.run, ["--executor_input", json.dumps(doc)]) == 0
        return json.loads((tmp_path / out / "decision" / "decision.json").read_text())

    got = run("a", {"monitoring": ("system.Artifact", str(tmp_path / "monitoring"))})
    assert got["retrain"] is True and got["served"]["skewed"][0]["feature"] == "ANC"
    assert got["reasons"] == [
        "served traffic skewed from the model's training data: ANC 0.043 > 0.03 (L_INFTY)"
    ]
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.json").write_text(json.dumps(state(window="2017").to_dict()))
    empty = run("b", {"monitoring": ("system.Artifact", str(tmp_path / "empty")),
                      "state": ("system.Artifact", str(tmp_path / "state"))})  # fmt: skip
    assert empty["retrain"] is False and empty["served"] == {}
