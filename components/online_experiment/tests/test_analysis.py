"""The experiment's statistics and decisions on real Parquet logs in the contract's layout,
with variants of known quality (kfpkit.testing.served_logs simulates them)."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from kfpkit.components.online_experiment import analysis as an
from kfpkit.components.online_experiment.analysis import (
    CONTINUE,
    PROMOTE,
    ROLLBACK,
    Settings,
    analyse,
)
from kfpkit.serving.served_logs import join_feedback, read_served
from kfpkit.testing.served_logs import T0, Variant, simulate, write_experiment, write_requests


def logged(tmp_path, variants, n=20_000, seed=0, **kwargs) -> pa.Table:
    """Simulated traffic written as Parquet logs and feedback, read back through read_served."""
    requests, feedback = simulate(n, variants, seed=seed, **kwargs)
    write_experiment(tmp_path, requests, feedback, files=3)
    return read_served(str(tmp_path))


@pytest.mark.parametrize("metric", ["accuracy", "log_loss", "auc"])
def test_a_clearly_worse_treatment_is_rolled_back(tmp_path, metric):
    table = logged(tmp_path, {"prod": Variant(skill=1.5), "new": Variant(skill=0.8)})
    result = analyse(table, Settings(control="prod", treatments=("new",), metric=metric))
    assert result.decision == ROLLBACK and result.decided_variant == "new"
    test = result.comparisons[0].test
    assert test.crossed is not None and test.crossed.labelled_rows < table.num_rows
    assert "new is worse than prod on " + metric in result.reasons[0]
    # the interval at the crossing excludes 0, on the worse side
    worse = test.crossed.high < 0 if an.METRICS[metric] else test.crossed.low > 0
    assert worse


def test_a_clearly_better_treatment_is_promoted(tmp_path):
    table = logged(tmp_path, {"prod": Variant(skill=0.8), "new": Variant(skill=1.5)})
    result = analyse(table, Settings(control="prod", treatments=("new",)))
    assert result.decision == PROMOTE
    by_name = {v.variant: v for v in result.variants}
    assert by_name["new"].accuracy.value > by_name["prod"].accuracy.value
    assert by_name["new"].accuracy.low > by_name["prod"].accuracy.high  # far apart here


def test_equal_variants_continue_with_an_interval_around_zero(tmp_path):
    table = logged(tmp_path, {"prod": Variant(), "new": Variant()}, n=6000, seed=4)
    result = analyse(table, Settings(control="prod", treatments=("new",)))
    assert result.decision == CONTINUE
    current = result.comparisons[0].test.current
    assert current.low < 0 < current.high
    assert "no difference shown yet" in result.reasons[0]


def test_a_reward_metric_on_the_rewards_sent_back(tmp_path):
    table = logged(tmp_path, {"prod": Variant(reward_rate=0.10), "new": Variant(reward_rate=0.16)},
                   n=20_000, seed=2)  # fmt: skip
    result = analyse(table, Settings(control="prod", treatments=("new",), metric="reward"))
    assert result.decision == PROMOTE
    reward = {v.variant: v.reward for v in result.variants}
    assert reward["prod"].low < 0.10 < reward["prod"].high
    assert reward["new"].low < 0.16 < reward["new"].high


def test_the_decision_is_the_first_crossing_so_a_later_look_repeats_it(tmp_path):
    requests, feedback = simulate(20_000, {"prod": Variant(skill=1.5), "new": Variant(skill=0.8)},
                                  duration=timedelta(hours=10))  # fmt: skip
    write_experiment(tmp_path, requests, feedback, files=5)
    settings = Settings(control="prod", treatments=("new",))
    early = analyse(read_served(str(tmp_path), end=T0 + timedelta(hours=2)), settings)
    later = analyse(read_served(str(tmp_path)), settings)
    assert early.decision == later.decision == ROLLBACK
    assert early.comparisons[0].test.crossed == later.comparisons[0].test.crossed


def _crossed(requests: pa.Table, feedback: pa.Table, metric: str) -> bool:
    rows = an._Rows.of(join_feedback(requests, feedback))
    settings = Settings(control="a", metric=metric, min_labelled_rows=100)
    return an.mean_test(rows, settings, "b").crossed is not None


def test_false_positives_under_continuous_monitoring_stay_within_alpha():
    """Equal variants, looked at after every outcome (stricter than hourly): the mSPRT
    declares a difference in at most alpha of 200 seeded experiments, where a fixed-horizon
    z test repeated at 20 looks declares one far more often."""
    alpha, runs = 0.05, 200
    false_mSPRT = naive = 0
    for seed in range(runs):
        requests, feedback = simulate(5000, {"a": Variant(skill=1.0), "b": Variant(skill=1.0)},
                                      seed=1000 + seed)  # fmt: skip
        false_mSPRT += _crossed(requests, feedback, "accuracy")
        table = join_feedback(requests, feedback)
        right = (np.array(table.column("prediction")) >= 0.5) == (
            np.array(table.column("label")) == 1
        )
        is_b = np.array(table.column("variant")) == "b"
        rejected = False
        for n in np.linspace(500, len(right), 20).astype(int):
            a_, b_ = right[:n][~is_b[:n]], right[:n][is_b[:n]]
            se = math.sqrt(a_.var(ddof=1) / len(a_) + b_.var(ddof=1) / len(b_))
            rejected |= 2 * stats.norm.sf(abs(b_.mean() - a_.mean()) / se) < alpha
        naive += rejected
    assert false_mSPRT / runs <= alpha
    assert naive / runs > 2 * alpha  # peeking without a sequential test is not safe


def test_the_confidence_sequence_is_where_the_scipy_ratio_reaches_one_over_alpha():
    for variance, sd, alpha in [(1e-4, 0.04, 0.05), (0.01, 0.02, 0.01), (2.0, 0.1, 0.2)]:
        radius = an.sequence_radius(variance, sd, alpha)
        llr = an.mixture_log_likelihood_ratio(np.array(radius), np.array(variance), sd)
        assert float(llr) == pytest.approx(math.log(1 / alpha), rel=1e-9)


def test_a_guardrail_breach_rolls_back_a_better_treatment(tmp_path):
    slow = Variant(skill=1.5, latency_ms=40.0)
    table = logged(tmp_path, {"prod": Variant(skill=0.8), "new": slow})
    settings = Settings(control="prod", treatments=("new",), max_latency_p99_ms=30.0)
    result = analyse(table, settings)
    assert result.decision == ROLLBACK
    assert "guardrail latency_p99_ms" in result.reasons[0]
    assert result.comparisons[0].test.crossed.difference > 0  # the metric was better
    relaxed = analyse(table, Settings(control="prod", treatments=("new",),
                                      max_latency_p99_ms=200.0))  # fmt: skip
    assert relaxed.decision == PROMOTE


def test_an_error_rate_guardrail(tmp_path):
    table = logged(tmp_path, {"prod": Variant(), "new": Variant(error_rate=0.05)}, n=10_000)
    errors = {v.variant: v.error_rate for v in analyse(table, Settings(control="prod")).variants}
    assert errors["new"].low < 0.05 < errors["new"].high and errors["prod"].value == 0
    result = analyse(table, Settings(control="prod", max_error_rate=0.01))
    assert result.decision == ROLLBACK and "guardrail error_rate" in result.reasons[0]


def test_every_treatment_against_the_control(tmp_path):
    table = logged(tmp_path, {"prod": Variant(skill=1.5), "same": Variant(skill=1.5),
                              "bad": Variant(skill=0.6)})  # fmt: skip
    result = analyse(table, Settings(control="prod"))
    decisions = {c.treatment: c.decision for c in result.comparisons}
    assert decisions == {"bad": ROLLBACK, "same": CONTINUE}
    assert result.decision == ROLLBACK and result.decided_variant == "bad"
    assert result.comparisons[0].test.alpha == pytest.approx(0.025)  # split between two


def test_unknown_variants_are_named_with_those_present(tmp_path):
    table = logged(tmp_path, {"prod": Variant(), "new": Variant()}, n=500)
    with pytest.raises(ValueError, match=r"control_variant 'v1' .*\['new', 'prod'\]"):
        analyse(table, Settings(control="v1"))
    with pytest.raises(ValueError, match=r"treatment_variant 'canary' .*\['new', 'prod'\]"):
        analyse(table, Settings(control="prod", treatments=("canary",)))


def test_an_empty_window_continues_with_the_reason(tmp_path):
    table = logged(tmp_path, {"prod": Variant(), "new": Variant()}, n=500)
    empty = read_served(str(tmp_path), start=T0 + timedelta(days=3))
    result = analyse(empty, Settings(control="prod", treatments=("new",)))
    assert result.decision == CONTINUE and result.reasons == ["no served rows in the window"]
    assert table.num_rows == 500


def test_no_labelled_rows_yet_continues(tmp_path):
    requests, _ = simulate(3000, {"prod": Variant(), "new": Variant(skill=0.1)})
    write_requests(tmp_path, requests)
    result = analyse(read_served(str(tmp_path)), Settings(control="prod", treatments=("new",)))
    assert result.decision == CONTINUE
    assert "waiting for outcomes" in result.reasons[0] and "prod 0" in result.reasons[0]
    assert result.variants[0].accuracy.value is None and result.variants[0].rows > 1000


def test_labels_outside_zero_and_one_are_refused(tmp_path):
    requests, feedback = simulate(300, {"prod": Variant(), "new": Variant()})
    labels = feedback.column("label").to_numpy().copy()
    labels[:3] = 2.0
    feedback = feedback.set_column(2, "label", pa.array(labels))
    table = join_feedback(requests, feedback)
    with pytest.raises(ValueError, match=r"3 feedback labels are not 0 or 1 .*2\.0"):
        analyse(table, Settings(control="prod"))
    assert analyse(table, Settings(control="prod", metric="reward")).rows == 300


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"metric": "f1"}, "metric must be one of"),
        ({"alpha": 1.5}, "alpha must be in"),
        ({"treatments": ("prod",)}, "also a treatment"),
        ({"treatments": ("x'; DROP",)}, "variant name"),
        ({"max_error_rate": 2.0}, "max_error_rate"),
        ({"min_labelled_rows": 1}, "min_labelled_rows"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Settings(control="prod", **kwargs)
