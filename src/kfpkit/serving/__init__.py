"""Local model serving shared by kserve_push and ``kfpkit serve`` (train image family).

KServe's own Python model server, bound to loopback only, serving the SavedModel the train
component exports (V1 ``:predict`` and V2 / Open Inference Protocol ``/infer``), with request
validation, an optional shadow candidate and request logging to Parquet. ``client`` and
``limits`` are stdlib-only so the SDK (no TensorFlow, no kserve) can drive a server.
"""
