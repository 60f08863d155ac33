"""Chooses the tf.distribute strategy from the hardware the step landed on.

The choice is a pure function of a :class:`Devices` inventory, so it is tested with fake
inventories; only :func:`detect_devices` and :func:`make_strategy` touch TensorFlow.

Order: TPU > several workers in ``TF_CONFIG`` > several GPUs > one GPU > CPU.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any

_log = logging.getLogger("kfpkit")

TPU = "TPUStrategy"
MULTI_WORKER = "MultiWorkerMirroredStrategy"
MIRRORED = "MirroredStrategy"
ONE_GPU = "OneDeviceStrategy(GPU)"
CPU = "DefaultStrategy(CPU)"

# Hints that a TPU may be attached; without one the resolver is not tried, because on a
# machine that is not a TPU VM it may wait on the GCE metadata server.
_TPU_ENV_HINTS = ("TPU_NAME", "TPU_WORKER_HOSTNAMES", "KUBE_GOOGLE_CLOUD_TPU_ENDPOINTS")
_TPU_DEVICE_HINTS = ("/dev/accel0", "/dev/vfio/0")


@dataclass(frozen=True)
class Devices:
    """What the step can use: a TPU, GPUs on this machine, workers in the cluster."""

    tpu: bool = False
    gpus: int = 0
    workers: int = 1
    is_chief: bool = True


@dataclass(frozen=True)
class StrategyChoice:
    name: str
    precision_policy: str  # Keras dtype policy: float32, mixed_float16 or mixed_bfloat16
    note: str = ""


def choose_strategy(devices: Devices, mixed_precision: bool) -> StrategyChoice:
    """The strategy and Keras precision policy for ``devices``.

    Mixed precision is float16 on GPUs and bfloat16 on TPUs; on CPU it would be slower, not
    faster, so a request for it is declined (noted, not an error: the same pipeline runs on
    any node).
    """
    if devices.tpu:
        name = TPU
    elif devices.workers > 1:
        name = MULTI_WORKER
    elif devices.gpus > 1:
        name = MIRRORED
    elif devices.gpus == 1:
        name = ONE_GPU
    else:
        name = CPU
    policy, note = "float32", ""
    if mixed_precision:
        if name == TPU:
            policy = "mixed_bfloat16"
        elif devices.gpus > 0:
            policy = "mixed_float16"
        else:
            note = "mixed_precision declined: no GPU or TPU"
    return StrategyChoice(name, policy, note)


def workers_in(tf_config: str | None) -> tuple[int, bool]:
    """Number of workers (chief included) in a TF_CONFIG, and whether this task is the chief
    (the one that writes outputs)."""
    if not tf_config:
        return 1, True
    try:
        config = json.loads(tf_config)
        cluster = config.get("cluster", {})
        task = config.get("task", {})
    except (json.JSONDecodeError, AttributeError) as e:
        raise ValueError(f"TF_CONFIG is not a JSON object: {tf_config!r}") from e
    workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    kind, index = task.get("type", "chief"), int(task.get("index", 0))
    chief = kind == "chief" or (kind == "worker" and index == 0 and not cluster.get("chief"))
    return max(workers, 1), chief


def _tpu_resolver() -> Any | None:
    hinted = any(os.environ.get(k) for k in _TPU_ENV_HINTS) or any(
        os.path.exists(p) for p in _TPU_DEVICE_HINTS
    )
    if not hinted:
        return None
    import tensorflow as tf

    try:
        return tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=os.environ.get("TPU_NAME", "local")
        )
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        _log.info("No TPU: %s", e)
        return None


def detect_devices() -> tuple[Devices, Any | None]:
    """The devices of this step, and the TPU cluster resolver when a TPU answered."""
    import tensorflow as tf

    resolver = _tpu_resolver()
    workers, chief = workers_in(os.environ.get("TF_CONFIG"))
    gpus = len(tf.config.list_physical_devices("GPU"))
    return Devices(tpu=resolver is not None, gpus=gpus, workers=workers, is_chief=chief), resolver


def make_strategy(choice: StrategyChoice, tpu_resolver: Any | None = None) -> Any:
    import tensorflow as tf

    if choice.name == TPU:
        tf.config.experimental_connect_to_cluster(tpu_resolver)
        tf.tpu.experimental.initialize_tpu_system(tpu_resolver)
        return tf.distribute.TPUStrategy(tpu_resolver)
    if choice.name == MULTI_WORKER:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if choice.name == MIRRORED:
        return tf.distribute.MirroredStrategy()
    if choice.name == ONE_GPU:
        return tf.distribute.OneDeviceStrategy("/gpu:0")
    return tf.distribute.get_strategy()
