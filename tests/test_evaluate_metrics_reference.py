"""evaluate's numpy metrics agree with scikit-learn's, the reference implementation.

scikit-learn is not in the train image (it would make every step of that image import
scipy and sklearn through Keras: components/evaluate/README.md has the measurement), so the
check runs here, in the SDK environment, where metrics.py (numpy only) imports too.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from kfpkit.components.evaluate import metrics as m


@pytest.fixture(scope="module")
def scored() -> tuple[np.ndarray, np.ndarray]:
    """30,000 rows like a test split: a noisy score, rounded so that many scores tie."""
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 30_000)
    logits = 1.6 * (labels - 0.5) + rng.normal(0, 1, labels.size)
    scores = np.round(1 / (1 + np.exp(-logits)), 3)
    return labels, np.clip(scores, 1e-6, 1 - 1e-6)  # inside both clips: log loss comparable


def test_auc_equals_roc_auc_score(scored):
    labels, scores = scored
    assert len(np.unique(scores)) < 1100  # ties are exercised
    assert m.binary_metrics(labels, scores)["auc"] == pytest.approx(
        sk.roc_auc_score(labels, scores), abs=1e-12
    )


def test_log_loss_accuracy_precision_recall_equal_sklearn(scored):
    labels, scores = scored
    ours = m.binary_metrics(labels, scores)
    predicted = (scores >= m.DECISION_THRESHOLD).astype(int)
    assert ours["log_loss"] == pytest.approx(sk.log_loss(labels, scores), rel=1e-12)
    assert ours["accuracy"] == pytest.approx(sk.accuracy_score(labels, predicted), abs=1e-15)
    assert ours["precision"] == pytest.approx(sk.precision_score(labels, predicted), abs=1e-15)
    assert ours["recall"] == pytest.approx(sk.recall_score(labels, predicted), abs=1e-15)


def test_confusion_matrix_equals_sklearn(scored):
    labels, scores = scored
    rows = [r["row"] for r in m.confusion_matrix(labels, scores)["rows"]]
    predicted = (scores >= m.DECISION_THRESHOLD).astype(int)
    assert rows == sk.confusion_matrix(labels, predicted, labels=[0, 1]).tolist()


def test_roc_points_lie_on_sklearns_curve(scored):
    """Each fixed-threshold point is sklearn's point for the lowest of its thresholds >= t."""
    labels, scores = scored
    fpr, tpr, thresholds = sk.roc_curve(labels, scores, drop_intermediate=False)
    for point in m.roc_curve(labels, scores):
        at_or_above = np.nonzero(thresholds >= point["confidenceThreshold"])[0]
        expected = (fpr[at_or_above[-1]], tpr[at_or_above[-1]]) if len(at_or_above) else (0, 0)
        assert (point["falsePositiveRate"], point["recall"]) == pytest.approx(expected, abs=1e-15)


def test_one_class_auc_is_undefined_where_sklearn_refuses():
    labels, scores = np.ones(10, dtype=int), np.linspace(0.1, 0.9, 10)
    assert m.binary_metrics(labels, scores)["auc"] is None
    with pytest.warns(Warning):  # sklearn: "Only one class is present", nan
        assert np.isnan(sk.roc_auc_score(labels, scores))
