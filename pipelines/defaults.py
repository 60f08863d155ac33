"""Defaults of the parameters that several pipelines declare, each written once here.

The pipelines' signatures read them (``tuning_algorithm: str = TUNING_ALGORITHM``), so a
default changes in one place for every pipeline; the demo's data-specific names (label,
model, features that differ between windows) are set here too, as the components have no
defaults for them. Evaluate's interval-based blessing settings are not restated: they are
evaluate's own defaults, read from its component definition. Empty-string defaults ("": not
set) are left to each signature.
"""

from __future__ import annotations

from typing import Any

from kfpkit.components import EvaluateOp
from kfpkit.components.bigquery_split.sql import DEFAULT_RATIOS

# The demo data: its label, the served model's name, the split key.
LABEL_COLUMN = "employed"
MODEL_NAME = "employment"
KEY_COLUMNS = ["id"]
SPLIT_RATIOS = DEFAULT_RATIOS
BIGQUERY_LOCATION = "US"

# Tuning: the trial budget, and what the tune step searches by default (the learning rate
# and the network's width); no fixed hyperparameters.
HYPERPARAMETERS: dict[str, Any] = {}
TUNING_TRIALS = 3
TUNING_PARALLEL_TRIALS = 1
TUNING_ALGORITHM = "tpe"
TUNING_SEARCH_SPACE = [
    {"name": "learning_rate", "type": "double", "min": 3e-4, "max": 1e-2, "log": True},
    {"name": "hidden_units", "type": "categorical", "values": ["64,32", "128,64"]},
]
TUNING_BACKEND = "local"
TUNING_NAMESPACE = "kubeflow"

# The evaluation gate a candidate passes, on point estimates.
MIN_AUC = 0.8
MAX_AUC_REGRESSION = 0.005


def _evaluate_default(name: str) -> Any:
    """Evaluate's own default of its parameter ``name`` (its component's signature)."""
    return EvaluateOp.component_spec.inputs[name].default


# ... and on intervals: evaluate's defaults (1,000 paired resamples at 95 %; no interval or
# slice check until a run sets one).
BOOTSTRAP_RESAMPLES: int = _evaluate_default("bootstrap_resamples")
CONFIDENCE: float = _evaluate_default("confidence")
MIN_LOWER_BOUND: float = _evaluate_default("min_lower_bound")
REQUIRE_NONINFERIORITY: bool = _evaluate_default("require_noninferiority")
NONINFERIORITY_MARGIN: float = _evaluate_default("noninferiority_margin")
SLICE_THRESHOLDS: dict[str, float] = _evaluate_default("slice_thresholds")

# Serving and the model registry.
SERVING_BACKEND = "local"
SERVING_NAMESPACE = "default"
PUSH_ACTION = "apply"
CANARY_TRAFFIC_PERCENT = 10
REGISTRY_BACKEND = "mlflow"
REGISTRY_LOCATION = "us-central1"

# Continuous training and monitoring: drift or skew beyond this moved a feature; the demo's
# id and year differ between windows by construction, never compared, never a reason.
WINDOW_THRESHOLD = 0.03
NOT_COMPARED_FEATURES = ["id", "year"]
