"""Launcher of kserve_push: parses the executor input, validates and pushes, records outputs.

Run inside the train image as
``python3 -m kfpkit.components.kserve_push.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

import json
import logging

from kfpkit.components.kserve_push import defaults, isvc
from kfpkit.components.kserve_push.runner import PushRequest, push, storage_uri
from kfpkit.runtime.executor import (
    Executor,
    main,
    uri_to_path,
    write_text_artifact,
)
from kfpkit.runtime.identity import executor_identity, step_key

_log = logging.getLogger("kfpkit")


def _int(executor: Executor, name: str, default: int) -> int:
    value = executor.number_param(name, default)
    if value != int(value):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    return int(value)


def request_from(executor: Executor) -> PushRequest:
    model = executor.input("model")
    test_data = executor.input("test_data")
    # the folder of version folders: the artifact's, or the serving directory publish_model
    # published into (its output names the version folder in ``published_uri``)
    serving_dir = storage_uri(model.uri, model.metadata) if model is not None and model.uri else ""
    uri = executor.param("storage_uri", "") or serving_dir
    settings = isvc.ServingSettings(
        name=executor.param("model_name", ""),
        namespace=executor.param("namespace", "") or defaults.NAMESPACE,
        storage_uri=uri,
        runtime=executor.param("runtime", defaults.RUNTIME),
        runtime_version=executor.param("runtime_version", ""),
        deployment_mode=executor.param("deployment_mode", defaults.DEPLOYMENT_MODE),
        cpu=str(executor.param("cpu", defaults.CPU)),
        memory=str(executor.param("memory", defaults.MEMORY)),
        gpu=_int(executor, "gpu", defaults.GPU),
        min_replicas=_int(executor, "min_replicas", defaults.MIN_REPLICAS),
        max_replicas=_int(executor, "max_replicas", defaults.MAX_REPLICAS),
        scale_target=_int(executor, "scale_target", defaults.SCALE_TARGET),
        scale_metric=executor.param("scale_metric", ""),
        service_account=executor.param("service_account", ""),
        logger_url=executor.param("logger_url", ""),
        logger_mode=executor.param("logger_mode", defaults.LOGGER_MODE),
    )
    return PushRequest(
        action=executor.param("action", defaults.ACTION),
        backend=executor.param("backend", defaults.BACKEND),
        settings=settings,
        model_path=uri_to_path(serving_dir) if serving_dir else None,
        test_path=test_data.path if test_data is not None and test_data.uri else None,
        canary_traffic_percent=_int(
            executor, "canary_traffic_percent", defaults.CANARY_TRAFFIC_PERCENT
        ),
        mirror_percent=executor.number_param("mirror_percent", defaults.MIRROR_PERCENT),
        timeout_seconds=executor.number_param("timeout_seconds", defaults.TIMEOUT_SECONDS),
        infra_validation_rows=_int(
            executor, "infra_validation_rows", defaults.INFRA_VALIDATION_ROWS
        ),
        owner=step_key(executor_identity(executor.raw)),
        kubeconfig=executor.param("kubeconfig", ""),
        experiment_decision=executor.param("experiment_decision", ""),
        variant_weights=_weights(executor),
        sticky=bool(executor.param("sticky", defaults.STICKY)),
        served_logs=executor.param("served_logs", ""),
        bandit_floor=executor.number_param("bandit_floor", defaults.BANDIT_FLOOR),
    )


def _weights(executor: Executor) -> dict[str, float]:
    value = executor.json_param("variant_weights", {}) or {}
    if not isinstance(value, dict):
        raise ValueError(f"variant_weights must be a mapping variant: weight, not {value!r}")
    for variant, weight in value.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise ValueError(f"variant_weights: the weight of {variant!r} must be a number, "
                             f"not {weight!r}")  # fmt: skip
    return {str(k): float(v) for k, v in value.items()}


def run(executor: Executor) -> None:
    result = push(request_from(executor))
    executor.output("deployment").metadata.update(
        {
            k: (v if isinstance(v, str | int | float | bool) else json.dumps(v))
            for k, v in result.metadata().items()
        }  # fmt: skip
    )
    if result.validation is not None:
        executor.output("infra_validation").metadata.update(result.validation.metrics())
    write_text_artifact(executor.output("summary").path, result.summary)
    executor.set_output_param("endpoint_url", result.endpoint_url)


if __name__ == "__main__":
    main(run)
