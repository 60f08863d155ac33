"""online_experiment's parameter defaults, each written once.

Read by the component's signature (``component.py``), the launcher (a parameter a caller
leaves out) and :class:`~kfpkit.components.online_experiment.analysis.Settings`. No imports:
``component.py`` is imported on the SDK side, which has no numpy or scipy.
"""

METRIC = "accuracy"
ALPHA = 0.05
MIN_LABELLED_ROWS = 200
MIXTURE_SD = 0.0  # 0: 0.1 x the per-row metric's standard deviation (see README)
THRESHOLD = 0.5  # prediction >= threshold counts as class 1 (accuracy)
MAX_LATENCY_P99_MS = 0.0  # 0: no latency guardrail
MAX_ERROR_RATE = 0.0  # 0: no error-rate guardrail
CONFIDENCE = 0.95  # of the per-variant intervals and the guardrail checks
