"""Binary classification metrics of scores against 0/1 labels (numpy only).

One definition for every step that scores a classifier: ``evaluate`` (a model on a test
split) and ``monitor_serving`` (served predictions against feedback labels). Checked against
scikit-learn's metrics in tests/test_evaluate_metrics_reference.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# A row is predicted positive when its probability is at least this.
DECISION_THRESHOLD = 0.5
_EPS = 1e-7


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U, ties counted half); None with one class."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # Average rank within each group of tied scores.
    _, starts, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = starts + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    rank_sum = ranks[labels == 1].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def binary_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    """count, positives, accuracy, precision, recall, auc, log_loss (None where undefined)."""
    predicted = probabilities >= DECISION_THRESHOLD
    actual = labels == 1
    tp = int(np.sum(predicted & actual))
    fp = int(np.sum(predicted & ~actual))
    fn = int(np.sum(~predicted & actual))
    p = np.clip(probabilities, _EPS, 1 - _EPS)
    return {
        "count": int(len(labels)),
        "positives": int(actual.sum()),
        "accuracy": float(np.mean(predicted == actual)) if len(labels) else None,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "auc": roc_auc(labels, probabilities),
        "log_loss": float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))),
    }
