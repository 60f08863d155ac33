"""Launcher of train: parses the executor input, trains, records the outputs.

Run inside the train image as
``python3 -m kfpkit.components.train.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

import os
import sys

import keras
import tensorflow as tf

from kfpkit.components.train import multiworker
from kfpkit.components.train.curve import training_curve_html
from kfpkit.hyperparameters import hyperparameters_dict, parse_hyperparameters
from kfpkit.runtime.executor import Executor, main
from kfpkit.runtime.model_versions import FIRST_VERSION
from kfpkit.training import run as training
from kfpkit.training import trainer
from kfpkit.training.objective_metrics import metric_lines


def _whole_number(executor: Executor, name: str, default: int) -> int:
    value = executor.param(name, default)
    if isinstance(value, bool) or not float(value).is_integer():
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    return int(value)


def request_from(executor: Executor) -> trainer.TrainRequest:
    schema = executor.input("schema")
    return trainer.TrainRequest(
        train_path=executor.required_input("train_data").path,
        validation_path=executor.required_input("validation_data").path,
        model_dir=executor.output("model").path,
        label_column=executor.required_param("label_column"),
        hyperparameters=parse_hyperparameters(executor.json_param("hyperparameters")),
        schema_path=schema.path if schema is not None else None,
        feature_columns=executor.string_list_param("feature_columns"),
        exclude_columns=executor.string_list_param("exclude_columns"),
        model_version=_whole_number(executor, "model_version", FIRST_VERSION),
        mixed_precision=bool(
            executor.param("mixed_precision", trainer.TrainRequest.mixed_precision)
        ),
        worker_timeout=_seconds(executor, "worker_timeout", trainer.TrainRequest.worker_timeout),
    )


def _seconds(executor: Executor, name: str, default: float) -> float:
    value = executor.param(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number of seconds > 0, not {value!r}")
    return float(value)


def run(executor: Executor) -> None:
    distribution = multiworker.parse_distribution(executor.json_param("distribution"))
    if distribution is not None:  # the workers of a job train; this step waits for them
        multiworker.launch(executor, distribution)
        return
    request = request_from(executor)
    result = training.train(request)
    model = executor.output("model")
    model.metadata.update(
        {
            "framework": "tensorflow",
            "framework_version": tf.__version__,
            "keras_version": keras.__version__,
            "format": "SavedModel",
            "model_version": request.model_version,
            "serving_signature": "serving_default",
            "features": {s.name: s.kind for s in result.features},
            "label": request.label_column,
            "hyperparameters": hyperparameters_dict(request.hyperparameters),
            "strategy": result.strategy.name,
            "precision_policy": result.strategy.precision_policy,
        }
    )
    metrics = executor.output("metrics")
    metrics.metadata.update(result.metrics)
    metrics.metadata.update(
        {
            "strategy": result.strategy.name,
            "replicas": result.replicas,
            "precision_policy": result.strategy.precision_policy,
        }
    )
    if result.strategy.note:
        metrics.metadata["strategy_note"] = result.strategy.note
    curve_path = executor.output("training_curve").path
    os.makedirs(os.path.dirname(curve_path) or ".", exist_ok=True)
    title = f"Training curve: model version {request.model_version} ({result.strategy.name})"
    with open(curve_path, "w", encoding="utf-8") as f:
        f.write(training_curve_html(result.history, title))
    # Printed last as `name=value` lines: Katib's StdOut metrics collector reads these.
    print("\n".join(metric_lines(result.metrics)))
    sys.stdout.flush()


if __name__ == "__main__":
    main(run)
