"""kserve_push's parameter defaults, each written once.

Read by the component's signature (``component.py``), the launcher (a parameter a caller
leaves out) and the runtime's dataclasses (``isvc.ServingSettings``, ``runner.PushRequest``).
No imports: ``component.py`` is imported on the SDK side, which has no numpy or kserve.
"""

ACTION = "apply"
BACKEND = "local"
NAMESPACE = "default"
DEPLOYMENT_MODE = "Serverless"  # isvc.SERVERLESS
RUNTIME = "tensorflow"
CANARY_TRAFFIC_PERCENT = 10
MIRROR_PERCENT = 100.0
CPU = "1"
MEMORY = "2Gi"
GPU = 0
MIN_REPLICAS = 1
MAX_REPLICAS = 1
SCALE_TARGET = 0  # 0: KServe's default
LOGGER_MODE = "all"
TIMEOUT_SECONDS = 900.0
INFRA_VALIDATION_ROWS = 100
STICKY = False  # experiment: the header-matching VirtualService
BANDIT_FLOOR = 0.05  # bandit: the least share of traffic a variant keeps
