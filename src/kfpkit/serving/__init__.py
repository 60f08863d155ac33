"""Local model serving shared by kserve_push and ``kfpkit serve`` (train image family).

KServe's own Python model server, bound to loopback only, serving the SavedModel the train
component exports (V1 ``:predict`` and V2 / Open Inference Protocol ``/infer``), with request
validation, an optional shadow candidate and request logging to Parquet. ``client`` and
``limits`` are stdlib-only so the SDK (no TensorFlow, no kserve) can drive a server.

Online experiments: several variants of one model, routed by ``routing`` (fixed weights,
sticky A/B on the split's hash, Thompson / epsilon-greedy bandit), with feedback
(``feedback``) and the policy's saved state, put together per served model by
``experiment``; ``served_logs`` reads what the server (or KServe's logger through
``logger_sink``) wrote.
"""
