"""Puts a pipeline task on GPUs or TPUs: Kubeflow on GKE, Kubeflow elsewhere, Vertex AI.

Each helper validates the accelerator name (ValueError listing the known ones), configures
the task and returns it::

    train_task = train(...)
    accelerators.use_gke_gpu(train_task, "nvidia-l4")            # Kubeflow on GKE
    accelerators.use_gke_tpu(train_task, "tpu-v5-lite-podslice", "2x2")
    accelerators.use_nvidia_gpu(train_task, count=2)             # any Kubernetes with the
                                                                 # NVIDIA device plugin
    accelerators.use_vertex_accelerator(train_task, "NVIDIA_H100_80GB", count=8)

The Kubeflow helpers need kfp-kubernetes (node selectors and tolerations live in the
Kubernetes platform spec); it is imported only when they are called, so a pipeline that uses
none of them compiles with kfp alone. The step's image must hold the accelerator's runtime:
the GPU helpers move a train task to the ``train-gpu`` image (TensorFlow with CUDA); for TPUs
the image needs TensorFlow's TPU build, which kfpkit does not ship yet.
"""

from __future__ import annotations

import math
import re
from typing import Any

from kfpkit import images

NVIDIA_GPU_RESOURCE = "nvidia.com/gpu"
TPU_RESOURCE = "google.com/tpu"
GKE_GPU_LABEL = "cloud.google.com/gke-accelerator"
GKE_TPU_LABEL = "cloud.google.com/gke-tpu-accelerator"
GKE_TPU_TOPOLOGY_LABEL = "cloud.google.com/gke-tpu-topology"

# Values of GKE's cloud.google.com/gke-accelerator node label.
GKE_GPUS = (
    "nvidia-tesla-t4",
    "nvidia-tesla-v100",
    "nvidia-tesla-p100",
    "nvidia-tesla-p4",
    "nvidia-l4",
    "nvidia-tesla-a100",
    "nvidia-a100-80gb",
    "nvidia-h100-80gb",
    "nvidia-h100-mega-80gb",
    "nvidia-h200-141gb",
    "nvidia-b200",
)
# GKE TPU node label value -> chips on one host. Only single-host slices are supported: a
# multi-host slice runs one pod per host (a JobSet), which a single pipeline task is not.
GKE_TPUS = {
    "tpu-v4-podslice": 4,
    "tpu-v5p-slice": 4,
    "tpu-v5-lite-podslice": 8,
    "tpu-v6e-slice": 8,
}
# Vertex AI machine-spec accelerator types that Vertex AI Pipelines accepts.
VERTEX_ACCELERATORS = (
    "NVIDIA_TESLA_T4",
    "NVIDIA_TESLA_V100",
    "NVIDIA_TESLA_P100",
    "NVIDIA_TESLA_P4",
    "NVIDIA_L4",
    "NVIDIA_TESLA_A100",
    "NVIDIA_A100_80GB",
    "NVIDIA_H100_80GB",
    "NVIDIA_H100_MEGA_80GB",
    "NVIDIA_H200_141GB",
    "NVIDIA_B200",
    "TPU_V2",
    "TPU_V3",
    "TPU_V5_LITEPOD",
)
_TOPOLOGY = re.compile(r"^[1-9]\d*(x[1-9]\d*){1,2}\Z")


def _check_name(kind: str, value: str, known: Any) -> None:
    if value not in known:
        raise ValueError(f"Unknown {kind} {value!r}; known: {', '.join(known)}")


def _check_count(count: int, most: int = 16) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= most:
        raise ValueError(f"accelerator count must be an integer in [1, {most}], not {count!r}")


def use_gpu_image(task: Any) -> Any:
    """Runs the task on the GPU build of its image family, when the family has one (train:
    ``train-gpu``, TensorFlow with its CUDA libraries); other tasks keep their image."""
    container = getattr(task, "container_spec", None)
    if container is None:
        return task
    for family, variant in images.GPU_VARIANTS.items():
        if container.image == images.image(family):
            container.image = images.image(variant)
    return task


def use_nvidia_gpu(task: Any, count: int = 1, node_labels: dict[str, str] | None = None) -> Any:
    """Kubeflow on any Kubernetes cluster: ``count`` NVIDIA GPUs (resource nvidia.com/gpu),
    tolerating the usual ``nvidia.com/gpu`` NoSchedule taint, on nodes with ``node_labels``;
    the task runs on its family's GPU image (:func:`use_gpu_image`)."""
    from kfp import kubernetes

    _check_count(count)
    use_gpu_image(task)
    task.set_accelerator_type(NVIDIA_GPU_RESOURCE).set_accelerator_limit(count)
    kubernetes.add_toleration(task, key=NVIDIA_GPU_RESOURCE, operator="Exists", effect="NoSchedule")
    for key, value in (node_labels or {}).items():
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    return task


def use_gke_gpu(task: Any, gpu_type: str = "nvidia-tesla-t4", count: int = 1) -> Any:
    """Kubeflow on GKE: ``count`` GPUs of ``gpu_type`` (a ``GKE_GPUS`` node label value)."""
    _check_name("GKE GPU type", gpu_type, GKE_GPUS)
    return use_nvidia_gpu(task, count, {GKE_GPU_LABEL: gpu_type})


def use_gke_tpu(task: Any, tpu_type: str = "tpu-v5-lite-podslice", topology: str = "2x2") -> Any:
    """Kubeflow on GKE: a single-host TPU slice of ``tpu_type`` (a ``GKE_TPUS`` key) with
    ``topology`` (e.g. ``2x2``, ``2x4``, ``2x2x1``); requests all of its chips."""
    from kfp import kubernetes

    _check_name("GKE TPU type", tpu_type, GKE_TPUS)
    if not _TOPOLOGY.match(topology):
        raise ValueError(f"TPU topology must look like 2x2 or 2x2x1, not {topology!r}")
    chips = math.prod(int(d) for d in topology.split("x"))
    if chips > GKE_TPUS[tpu_type]:
        raise ValueError(
            f"TPU topology {topology} has {chips} chips, more than one {tpu_type} host "
            f"({GKE_TPUS[tpu_type]}); multi-host slices are not supported"
        )
    task.set_accelerator_type(TPU_RESOURCE).set_accelerator_limit(chips)
    kubernetes.add_node_selector(task, label_key=GKE_TPU_LABEL, label_value=tpu_type)
    kubernetes.add_node_selector(task, label_key=GKE_TPU_TOPOLOGY_LABEL, label_value=topology)
    kubernetes.add_toleration(task, key=TPU_RESOURCE, operator="Exists", effect="NoSchedule")
    return task


def use_vertex_accelerator(
    task: Any, accelerator_type: str = "NVIDIA_TESLA_T4", count: int = 1
) -> Any:
    """Vertex AI Pipelines: ``count`` accelerators of ``accelerator_type`` (a
    ``VERTEX_ACCELERATORS`` name); Vertex picks a machine type that can hold them."""
    _check_name("Vertex AI accelerator type", accelerator_type, VERTEX_ACCELERATORS)
    _check_count(count)
    if accelerator_type.startswith("NVIDIA_"):
        use_gpu_image(task)
    return task.set_accelerator_type(accelerator_type).set_accelerator_limit(count)
