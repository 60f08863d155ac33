"""evaluate's parameter defaults, each written once.

Read by the component's signature (``component.py``), the launcher (a parameter a caller
leaves out) and the runtime's dataclasses (``BlessingRule``, ``BootstrapSettings``,
``explanations``). No imports: ``component.py`` is imported on the SDK side, which has no
numpy or TensorFlow.
"""

BASELINE_MODEL_DIR = ""  # no serving directory: the baseline_model artifact, or none
METRIC = "auc"
ABSOLUTE_THRESHOLD = 0.5
MAX_REGRESSION = 0.0
MIN_IMPROVEMENT = 0.0
BOOTSTRAP_RESAMPLES = 1000
SEED = 0
CONFIDENCE = 0.95
MIN_LOWER_BOUND = 0.0  # 0: no check of the interval's lower bound
REQUIRE_NONINFERIORITY = False
NONINFERIORITY_MARGIN = 0.0
EXPLAIN_ROWS = 1000
ATTRIBUTION_METHOD = "auto"
