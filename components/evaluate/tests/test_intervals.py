"""Bootstrap intervals, the paired difference, fairness gaps and calibration on numbers whose
answers are known (synthetic predictors drawn with a fixed seed)."""

import numpy as np
import pytest

from kfpkit.classification import binary_metrics
from kfpkit.components.evaluate import diagnostics, intervals
from kfpkit.components.evaluate import metrics as m


def predictor(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A perfectly calibrated predictor: each label is drawn with its own probability."""
    rng = np.random.default_rng(seed)
    probabilities = rng.random(n)
    return (rng.random(n) < probabilities).astype(float), probabilities


SETTINGS = intervals.BootstrapSettings(resamples=400, seed=7)


def test_intervals_cover_the_point_estimate_and_shrink_with_more_rows():
    widths = []
    for n in (300, 3000):
        labels, scores = predictor(n)
        got = intervals.bootstrap(labels, {"model": scores}, SETTINGS).models["model"]
        point = binary_metrics(labels, scores)
        for name in intervals.INTERVAL_METRICS:
            low, high = got[name]
            assert low <= point[name] <= high, name
        widths.append(got["auc"][1] - got["auc"][0])
    assert widths[1] < widths[0] / 2  # about 1/sqrt(10) as wide


def test_the_seed_reproduces_the_intervals_and_another_seed_moves_them():
    labels, scores = predictor(500)
    first = intervals.bootstrap(labels, {"model": scores}, SETTINGS)
    again = intervals.bootstrap(labels, {"model": scores}, SETTINGS)
    other = intervals.bootstrap(
        labels, {"model": scores}, intervals.BootstrapSettings(resamples=400, seed=8)
    )
    assert first.models == again.models
    assert first.models != other.models


def test_the_paired_difference_of_a_model_with_itself_is_exactly_zero():
    labels, scores = predictor(500)
    got = intervals.bootstrap(
        labels, {"model": scores, "baseline": scores.copy()}, SETTINGS, paired=("model", "baseline")
    )
    assert all(band == (0.0, 0.0) for band in got.difference.values())
    text = intervals.describe_difference("auc", 0.0, got.difference["auc"], 0.95)
    assert text.endswith("not distinguishable")


def test_a_clearly_better_model_is_told_apart():
    labels, scores = predictor(2000)
    noisy = np.clip(scores + np.random.default_rng(1).normal(0, 0.4, len(scores)), 0, 1)
    got = intervals.bootstrap(
        labels, {"model": scores, "baseline": noisy}, SETTINGS, paired=("model", "baseline")
    )
    assert got.difference["auc"][0] > 0
    decision = m.decide(
        m.BlessingRule(require_noninferiority=True),
        binary_metrics(labels, scores),
        binary_metrics(labels, noisy),
        got,
    )
    assert decision.blessed
    assert any("the candidate is better" in r for r in decision.reasons)
    worse = m.decide(
        m.BlessingRule(require_noninferiority=True),
        binary_metrics(labels, noisy),
        binary_metrics(labels, scores),
        intervals.bootstrap(
            labels, {"model": noisy, "baseline": scores}, SETTINGS, paired=("model", "baseline")
        ),
    )
    assert not worse.blessed
    assert any(r.startswith("FAIL: not worse than the baseline at 95 %") for r in worse.reasons)


def test_slices_get_paired_differences_from_the_overall_resamples():
    labels, scores = predictor(3000)
    noisy = np.clip(scores + np.random.default_rng(1).normal(0, 0.4, len(scores)), 0, 1)
    group = np.array(["differs", "same"] * 1500)
    group[:10] = "tiny"
    # the baseline is the noisy model on one half, the candidate itself on the other
    baseline = np.where(group == "same", scores, noisy)
    rows = {value: np.flatnonzero(group == value) for value in ("differs", "same", "tiny")}
    got = intervals.bootstrap(
        labels,
        {"model": scores, "baseline": baseline},
        SETTINGS,
        paired=("model", "baseline"),
        groups={"G": rows, "every row": {"all": np.arange(3000)}},
    )
    slices = got.slices["G"]
    assert slices["differs"].difference["auc"][0] > 0.05
    assert all(band == (0.0, 0.0) for band in slices["same"].difference.values())
    assert slices["same"].models["model"]["auc"][0] > 0.5
    assert "too few rows for an interval (10 < 30)" in slices["tiny"].reason
    # the same resamples as overall: a group of every row gets exactly the overall intervals
    everything = got.slices["every row"]["all"]
    assert everything.models == got.models and everything.difference == got.difference
    # and the overall intervals are those of a bootstrap without slices
    alone = intervals.bootstrap(
        labels, {"model": scores, "baseline": baseline}, SETTINGS, paired=("model", "baseline")
    )
    assert alone.models == got.models and alone.slices == {}


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        (np.array([0.0, 1.0] * 10), "too few rows for an interval (20 < 30)"),
        (np.ones(100), "one class only"),
    ],
)
def test_small_or_single_class_groups_are_reported_not_errors(labels, reason):
    got = intervals.bootstrap(labels, {"model": np.full(len(labels), 0.5)}, SETTINGS)
    assert reason in got.reason and got.models == {}


@pytest.mark.parametrize(
    ("resamples", "message"), [(0, "> 0, not 0"), (-5, "> 0"), (2.5, "integer")]
)
def test_bootstrap_resamples_must_be_positive(resamples, message):
    with pytest.raises(ValueError, match=message):
        intervals.BootstrapSettings(resamples=resamples)


def test_min_lower_bound_uses_the_interval():
    labels, scores = predictor(300)
    ci = intervals.bootstrap(labels, {"model": scores}, SETTINGS)
    point = binary_metrics(labels, scores)
    low = ci.models["model"]["auc"][0]
    assert m.decide(m.BlessingRule(min_lower_bound=round(low - 0.01, 4)), point, None, ci).blessed
    assert not m.decide(
        m.BlessingRule(min_lower_bound=round(low + 0.01, 4)), point, None, ci
    ).blessed


def test_ece_of_a_calibrated_predictor_is_near_zero_and_of_an_overconfident_one_is_not():
    labels, scores = predictor(50_000)
    assert diagnostics.calibration(labels, scores)["expected_calibration_error"] < 0.01
    sharp = np.where(scores >= 0.5, 0.99, 0.01)
    assert diagnostics.calibration(labels, sharp)["expected_calibration_error"] > 0.2
    svg = diagnostics.calibration_svg(diagnostics.calibration(labels, scores))
    assert (
        svg.startswith("<svg")
        and "ECE" in svg
        and "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )


def test_fairness_gaps():
    labels = np.array([1, 1, 0, 0, 1, 1, 0, 0], dtype=float)
    scores = np.array([0.9, 0.9, 0.9, 0.1, 0.9, 0.1, 0.1, 0.1])
    group = np.array(["a"] * 4 + ["b"] * 4)
    got = diagnostics.fairness(labels, scores, {"G": group}, min_rows=4)["G"]
    assert got["demographic_parity_difference"] == pytest.approx(0.75 - 0.25)
    assert got["true_positive_rate_gap"] == pytest.approx(1.0 - 0.5)
    assert got["false_positive_rate_gap"] == pytest.approx(0.5 - 0.0)
    assert got["equalized_odds_difference"] == pytest.approx(0.5)
    # groups of fewer rows than the interval minimum make no gap, and are named
    small = diagnostics.fairness(labels, scores, {"G": group})["G"]
    assert small["demographic_parity_difference"] is None and small["excluded"] == ["a", "b"]


def test_slice_thresholds_block_and_unknown_slices_are_named():
    labels = np.array([1, 0, 1, 0], dtype=float)
    scores = np.array([0.9, 0.1, 0.2, 0.8])
    slices = m.slice_metrics(labels, scores, {"SEX": np.array(["1", "1", "2", "2"])})
    rule = m.BlessingRule(
        metric="accuracy", absolute_threshold=0.0, slice_thresholds={"SEX=2": 0.5}
    )
    m.check_slice_thresholds(rule, slices)
    decision = m.decide(rule, binary_metrics(labels, scores), None, None, slices)
    assert not decision.blessed
    assert "FAIL: slice SEX=2: accuracy 0.0000 >= its threshold 0.5000" in decision.reasons
    bad = m.BlessingRule(slice_thresholds={"SEX=3": 0.5, "AGE=1": 0.5})
    with pytest.raises(ValueError, match=r"\['SEX=3', 'AGE=1'\] not in .*\['SEX=1', 'SEX=2'\]"):
        m.check_slice_thresholds(bad, slices)
    with pytest.raises(ValueError, match="'SEX' is not 'column=value'"):
        m.BlessingRule(slice_thresholds={"SEX": 0.5})
    with pytest.raises(ValueError, match=r"slice_thresholds\['SEX=1'\] must be a number"):
        m.BlessingRule(slice_thresholds={"SEX=1": 2})


def test_a_lower_log_loss_is_better():
    assert intervals.describe_difference("log_loss", -0.01, (-0.02, -0.005), 0.95).endswith(
        "the candidate is better"
    )
    assert intervals.describe_difference("auc", -0.01, (-0.02, -0.005), 0.95).endswith(
        "the candidate is worse"
    )


def test_a_resample_as_weights_equals_the_metrics_of_the_drawn_rows():
    labels, scores = predictor(400)
    rows = np.random.default_rng(5).integers(0, 400, 400)
    weights = np.bincount(rows, minlength=400)[None, :].astype(float)
    for scored in (np.round(scores, 1), scores):  # ties (counted half by both), and none
        got = intervals._weighted_metrics(weights, intervals._prepare(labels, scored))
        expected = binary_metrics(labels[rows], scored[rows])
        for name in intervals.INTERVAL_METRICS:
            assert got[name][0] == pytest.approx(expected[name], rel=1e-12), name
