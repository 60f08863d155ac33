"""Metrics, KFP metadata layout, the blessing rule and the report, on hand-made numbers."""

import itertools

import numpy as np
import pytest

from kfpkit.components.evaluate import metrics as m


def test_auc_matches_the_pairwise_definition_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300).astype(float)
    scores = np.round(rng.random(300) * 0.5 + labels * 0.3, 1)  # many ties
    pairs = [
        1.0 if p > n else 0.5 if p == n else 0.0
        for p, n in itertools.product(scores[labels == 1], scores[labels == 0])
    ]
    assert m.roc_auc(labels, scores) == pytest.approx(np.mean(pairs))
    assert m.roc_auc(np.ones(3), np.array([0.1, 0.2, 0.3])) is None


def test_binary_metrics_and_layouts():
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 1], dtype=float)
    scores = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1, 0.4, 0.6])
    got = m.binary_metrics(labels, scores)
    assert got["count"] == 8 and got["positives"] == 4
    assert got["accuracy"] == 6 / 8 and got["precision"] == 3 / 4 and got["recall"] == 3 / 4
    assert got["auc"] == pytest.approx(13 / 16)  # 13 of 16 (positive, negative) pairs ordered
    expected_loss = -np.mean(labels * np.log(scores) + (1 - labels) * np.log(1 - scores))
    assert got["log_loss"] == pytest.approx(expected_loss)
    matrix = m.confusion_matrix(labels, scores)
    assert matrix == {
        "annotationSpecs": [{"displayName": "0"}, {"displayName": "1"}],
        "rows": [{"row": [3, 1]}, {"row": [1, 3]}],  # actual 0: 3 right, 1 wrong
    }
    curve = m.roc_curve(labels, scores)
    assert len(curve) == 101 and curve[0] == {
        "confidenceThreshold": 0.0,
        "recall": 1.0,
        "falsePositiveRate": 1.0,
    }
    assert curve[50] == {"confidenceThreshold": 0.5, "recall": 0.75, "falsePositiveRate": 0.25}
    assert curve[-1]["recall"] == 0.0
    fprs = [p["falsePositiveRate"] for p in curve]
    assert fprs == sorted(fprs, reverse=True)


def test_slices_by_value():
    labels = np.array([1, 0, 1, 0], dtype=float)
    scores = np.array([0.9, 0.1, 0.2, 0.8])
    got = m.slice_metrics(labels, scores, {"SEX": np.array(["1", "1", "2", "2"])})
    assert got["SEX"]["1"]["accuracy"] == 1.0 and got["SEX"]["2"]["accuracy"] == 0.0


RULE = m.BlessingRule(metric="auc", absolute_threshold=0.7, max_regression=0.01)


@pytest.mark.parametrize(
    ("rule", "candidate", "baseline", "blessed"),
    [
        (RULE, 0.80, None, True),  # first model: threshold only
        (RULE, 0.65, None, False),
        (RULE, 0.80, 0.805, True),  # within the allowed regression
        (RULE, 0.80, 0.85, False),  # baseline better
        (RULE, 0.85, 0.80, True),  # baseline worse
        (m.BlessingRule(min_improvement=0.02), 0.81, 0.80, False),
        (m.BlessingRule(min_improvement=0.02), 0.83, 0.80, True),
    ],
)
def test_blessing(rule, candidate, baseline, blessed):
    base = None if baseline is None else {"auc": baseline}
    decision = m.decide(rule, {"auc": candidate}, base)
    assert decision.blessed is blessed
    if baseline is None:
        assert any("No baseline model" in r for r in decision.reasons)


def test_undefined_metric_is_not_blessed():
    decision = m.decide(m.BlessingRule(), {"auc": None}, None)
    assert not decision.blessed and "undefined" in decision.reasons[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "f1"}, "metric 'f1' is not one of"),
        ({"absolute_threshold": 1.5}, "absolute_threshold must be a number in"),
        ({"max_regression": -0.1}, "max_regression must be"),
        ({"max_regression": 0.1, "min_improvement": 0.1}, "not both"),
    ],
)
def test_bad_rules(kwargs, message):
    with pytest.raises(ValueError, match=message):
        m.BlessingRule(**kwargs)


def test_report_states_the_decision_and_the_missing_baseline():
    candidate = m.binary_metrics(np.array([1.0, 0.0]), np.array([0.8, 0.3]))
    decision = m.decide(RULE, candidate, None)
    text = m.report_markdown(RULE, decision, candidate, None, {})
    assert text.startswith("# Model evaluation: BLESSED")
    assert "No baseline model: only the absolute threshold applies" in text
    assert "| auc | 1.0000 |" in text
