"""monitor_serving's runtime on served logs written in the contract's layout and read back
with read_served, with real TFDV statistics and comparisons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from kfpkit.components.monitor_serving.monitor import (
    Settings,
    feature_columns,
    monitor,
    out_of_domain_counts,
)
from kfpkit.serving.served_logs import read_served
from kfpkit.testing import served_logs as sl
from kfpkit.tfdv.in_process import statistics_of_table
from kfpkit.tfdv.validation import Thresholds

LIMITS = Thresholds(categorical=0.03, numeric=0.03)
SETTINGS = Settings(drift=LIMITS, skew=LIMITS, max_decay=0.02, min_labelled_rows=100)


def traffic(folder: Path, n: int = 4000, seed: int = 0, city=None, shift: float = 0.0,
            skill: float = 1.5, labelled: float = 1.0, error_rate: float = 0.0,
            out_of_domain=None) -> pa.Table:  # fmt: skip
    """Simulated served traffic (features f0, city) written as log files, read back."""
    requests, feedback = sl.simulate(n, {"1": sl.Variant(skill=skill, error_rate=error_rate)},
                                     seed=seed, labelled=labelled)  # fmt: skip
    rng = np.random.default_rng(seed + 100)
    if city is not None:
        values = rng.choice(["a", "b", "c"], size=n, p=city)
        requests = requests.set_column(requests.schema.get_field_index("city"), "city",
                                       pa.array(values, pa.string()))  # fmt: skip
    if shift:
        f0 = pc.add(requests.column("f0"), shift)
        requests = requests.set_column(requests.schema.get_field_index("f0"), "f0", f0)
    if out_of_domain is not None:
        index = requests.schema.get_field_index("out_of_domain")
        requests = requests.set_column(index, "out_of_domain",
                                       pa.array(out_of_domain(n), pa.string()))  # fmt: skip
    sl.write_experiment(folder, requests, feedback, files=2)
    return read_served(str(folder))


def training_statistics(n: int = 20000, seed: int = 7):
    """The model's training data: the served features, plus a label and a key the log lacks."""
    rng = np.random.default_rng(seed)
    return statistics_of_table(
        pa.table(
            {
                "f0": rng.normal(0.0, 1.0, n),
                "city": rng.choice(["a", "b", "c"], size=n),
                "y": rng.integers(0, 2, n),
                "id": np.arange(n),
            }
        )  # fmt: skip
    )


@pytest.fixture(scope="module")
def training():
    return training_statistics()


def test_unchanged_traffic_raises_no_alert_and_says_why(tmp_path, training):
    result, stats = monitor(traffic(tmp_path / "logs"), training, None, SETTINGS)
    assert not result.alert and result.moved_features == []
    assert result.reasons[0].startswith("no alert: no skew beyond its threshold (largest ")
    assert "no drift baseline" in result.reasons[0]
    assert {m["feature"] for m in result.skew} == {"f0", "city"}
    assert all(m["value"] < 0.03 for m in result.skew)
    assert result.features == ["f0", "city"] and result.rows == 4000
    names = {f.path.step[0] for f in stats.datasets[0].features}
    assert names == {"f0", "city", "prediction"} and stats.datasets[0].num_examples == 4000


def test_a_shifted_categorical_feature_is_skew_and_named(tmp_path, training):
    table = traffic(tmp_path / "logs", city=[0.6, 0.2, 0.2])
    result, _ = monitor(table, training, None, SETTINGS)
    assert result.alert and result.moved_features == ["city"]
    city = next(m for m in result.skew if m["feature"] == "city")
    assert city["value"] == pytest.approx(0.6 - 1 / 3, abs=0.03)  # L-infinity of the shares
    assert city["measure"] == "L_INFTY" and city["threshold"] == 0.03
    assert result.reasons[0].startswith("skew from the training data: city 0.")


def test_drift_against_the_previous_window_and_of_the_predictions(tmp_path, training):
    _, previous = monitor(traffic(tmp_path / "w1", seed=1), training, None, SETTINGS)
    # a numeric feature moved, and a worse model now serves (predictions bunch near 0.5)
    table = traffic(tmp_path / "w2", seed=2, shift=1.0, skill=0.3)
    result, _ = monitor(table, None, previous, SETTINGS)
    assert result.moved_features == ["f0"]
    assert [m["feature"] for m in result.drift if m["value"] > m["threshold"]] == ["f0"]
    assert result.skew == [] and "skew:f0" not in result.not_compared
    drift = result.prediction["drift"]
    assert drift["measure"] == "JENSEN_SHANNON_DIVERGENCE" and drift["value"] > 0.03
    assert any(r.startswith("prediction drift from the previous window") for r in result.reasons)
    assert result.prediction["previous_mean"] == pytest.approx(0.5, abs=0.03)
    assert result.prediction["std_dev"] < 0.25  # bunched (about 0.31 at skill 1.5)


def test_performance_decay_on_feedback_labels_against_the_reference(tmp_path, training):
    table = traffic(tmp_path / "logs", skill=0.5)  # AUC about 0.76
    result, _ = monitor(table, training, None, SETTINGS, reference={"auc": 0.90})
    perf = result.performance
    assert perf["labelled_rows"] == 4000 and perf["over"] is True
    assert perf["decay"] == pytest.approx(0.90 - perf["auc"])
    assert 0.7 < perf["auc"] < 0.82
    assert result.alert and result.reasons[-1].startswith("performance decay: auc 0.")
    # evaluate's Metrics or resolve_model's record: the same reference
    same, _ = monitor(table, training, None, SETTINGS, reference={"metrics": {"auc": 0.90}})
    assert same.performance["decay"] == perf["decay"]


def test_decay_needs_enough_labelled_rows_and_a_reference(tmp_path, training):
    table = traffic(tmp_path / "logs", skill=0.5, labelled=0.01)
    result, _ = monitor(table, training, None, SETTINGS, reference={"auc": 0.99})
    perf = result.performance
    assert perf["labelled_rows"] < 100 and perf["over"] is False and not result.alert
    assert "labelled rows < min_labelled_rows 100" in perf["note"]
    none, _ = monitor(table, training, None, SETTINGS)
    assert none.performance["note"] == "no reference metric" and "decay" not in none.performance


def test_failed_requests_do_not_count_and_out_of_domain_is_counted(tmp_path, training):
    flags = ["", "city", "city,f0", ""]
    table = traffic(tmp_path / "logs", error_rate=0.1,
                    out_of_domain=lambda n: [flags[i % 4] for i in range(n)])  # fmt: skip
    result, stats = monitor(table, training, None, SETTINGS)
    errors = int(pc.sum(pc.not_equal(table.column("status"), 200)).as_py())
    assert errors > 300 and result.error_rows == errors and result.rows == 4000 - errors
    assert stats.datasets[0].num_examples == 4000 - errors
    answered = table.filter(pc.equal(table.column("status"), 200))
    expected = sum(1 for v in answered.column("out_of_domain").to_pylist() if "city" in v)
    assert result.out_of_domain["city"] == expected
    assert result.out_of_domain["f0"] == out_of_domain_counts(answered)["f0"] > 0


def test_an_empty_window_is_no_traffic_not_an_error(tmp_path, training):
    traffic(tmp_path / "logs")
    table = read_served(str(tmp_path / "logs"), "2030-01-01", "2030-01-02")
    result, stats = monitor(table, training, None, SETTINGS)
    assert table.num_rows == 0 and not result.alert and result.reasons == ["no traffic"]
    assert stats.datasets[0].num_examples == 0
    # the empty window's statistics as the next baseline count as absent
    again, _ = monitor(traffic(tmp_path / "next", seed=3), training, stats, SETTINGS)
    assert again.drift == [] and "no drift baseline" in again.reasons[0]


def test_thresholds_for_features_the_log_lacks_are_not_used(tmp_path, training):
    # the pipelines' dicts name id, year and the label: not served, not an error
    limits = Thresholds(0.03, 0.03, {"id": 0.0, "year": 0.0, "city": 0.5})
    settings = Settings(drift=limits, skew=limits)
    result, _ = monitor(traffic(tmp_path / "logs", city=[0.6, 0.2, 0.2]), training, None,
                        settings)  # fmt: skip
    assert not result.alert  # city's own threshold 0.5 holds it
    city = next(m for m in result.skew if m["feature"] == "city")
    assert city["threshold"] == 0.5


def test_a_served_feature_the_training_data_lacks_is_not_compared(tmp_path):
    rng = np.random.default_rng(0)
    training = statistics_of_table(pa.table({"f0": rng.normal(0, 1, 5000)}))
    result, _ = monitor(traffic(tmp_path / "logs"), training, None, SETTINGS)
    assert result.not_compared == {"skew:city": "not in the baseline statistics"}
    assert [m["feature"] for m in result.skew] == ["f0"]
    assert feature_columns(read_served(str(tmp_path / "logs"))) == ["f0", "city"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "f1"}, "metric must be one of"),
        ({"max_decay": -0.1}, "max_decay must be a number >= 0"),
        ({"max_decay": float("nan")}, "max_decay must be a number >= 0"),
        ({"min_labelled_rows": 0}, "min_labelled_rows must be an integer >= 1"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Settings(**kwargs)


def test_negative_thresholds_are_refused(tmp_path, training):
    with pytest.raises(ValueError, match="skew threshold for 'categorical' must be a number >= 0"):
        monitor(traffic(tmp_path / "logs"), training, None,
                Settings(skew=Thresholds(categorical=-1.0)))  # fmt: skip


def test_a_reference_metric_that_is_not_a_number_is_refused(tmp_path, training):
    with pytest.raises(ValueError, match="reference_metrics: auc is not a number: 'high'"):
        monitor(traffic(tmp_path / "logs"), training, None, SETTINGS, reference={"auc": "high"})
