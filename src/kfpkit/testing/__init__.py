"""Test support for kfpkit's own tests and notebooks; not shipped in the images (the wheel
leaves this package out: see setup.py and tests/test_packaging.py).

Stand-ins on 127.0.0.1: ``kube_apiserver`` (a real kube-apiserver and etcd), ``http``
(the recording HTTP server the stand-ins below share), ``registry_servers`` (Vertex AI and
Kubeflow Model Registry), ``pipeline_servers`` (Kubeflow Pipelines and Vertex AI Pipelines),
``vertex_jobs`` (Vertex AI CustomJobs), ``gcs`` (Cloud Storage, read only, in a child
process), ``kserve_crd`` (the InferenceService CRD from the kserve SDK's models). Data and
models: ``splits`` (the demo sample as split folders), ``tfdv`` (statistics of a table),
``serving`` (a candidate SavedModel), ``explanations`` (evaluate's attribution summary),
``served_logs`` and ``experiments`` (request logs and feedback as the server writes them).
Permissions: ``permissions`` (a child without root's right to read any file).
Launchers: :func:`executor_input`.
"""

from kfpkit.testing.launcher_input import executor_input

__all__ = ["executor_input"]
