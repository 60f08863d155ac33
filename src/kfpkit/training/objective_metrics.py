"""The metrics the trainer prints as ``name=value`` lines (TF-free, for tuners to check).

Katib's StdOut metrics collector reads these lines from a trial's output; a tuner's objective
must be one of these names. Per epoch, each name comes from the Keras log key beside it.
"""

from __future__ import annotations

from collections.abc import Mapping

# printed name -> key of the trainer's result metrics (printed once, after training)
OBJECTIVE_METRICS = {
    "validation-accuracy": "validation_accuracy",
    "validation-loss": "validation_loss",
    "validation-auc": "validation_auc",
    "train-accuracy": "train_accuracy",
    "train-loss": "train_loss",
}
# printed name -> Keras ``logs`` key at the end of an epoch
EPOCH_LOG_KEYS = {
    "validation-accuracy": "val_accuracy",
    "validation-loss": "val_loss",
    "validation-auc": "val_auc",
    "train-accuracy": "accuracy",
    "train-loss": "loss",
}


def metric_lines(metrics: Mapping[str, float], prefix: str = "") -> list[str]:
    """``[prefix]name=value`` lines for the printed names, from the trainer's result metrics."""
    return [f"{prefix}{name}={float(metrics[key]):.6f}" for name, key in OBJECTIVE_METRICS.items()]
