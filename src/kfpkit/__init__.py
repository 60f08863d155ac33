"""kfpkit: tested, containerized Kubeflow Pipelines components."""

__version__ = "0.1.0"
