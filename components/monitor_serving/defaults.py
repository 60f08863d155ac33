"""monitor_serving's parameter defaults, each written once.

Read by the component's signature (``component.py``), the launcher (a parameter a caller
leaves out) and :class:`~kfpkit.components.monitor_serving.monitor.Settings`. No imports:
``component.py`` is imported on the SDK side, which has no TFDV or numpy.
"""

WINDOW_HOURS = 0.0  # 0: the window is start..end
THRESHOLD = 0.03  # every default_<categorical|numeric>_<drift|skew>_threshold
METRIC = "auc"  # the performance metric compared with the reference
MAX_DECAY = 0.02  # alert when the metric fell by more than this
MIN_LABELLED_ROWS = 100  # fewer labelled rows: measured, never an alert
