"""The tune -> train -> evaluate -> publish -> push chain both pipelines run (one definition).

:func:`tune_train_evaluate_push` adds the steps to the pipeline being defined, from split
and validation outputs; the training pipeline calls it on every run, the continuous-training
pipeline inside ``dsl.If(retrain)``. A plain function rather than a nested ``@dsl.pipeline``:
the steps stay in their caller's graph, with the same task names and display names in
compiled YAML and in kfp.local's run folders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kfp import dsl

from kfpkit import targets
from kfpkit.components import (
    BigquerySplitOp,
    EvaluateOp,
    KatibTuneOp,
    KservePushOp,
    MonitorServingOp,
    PublishModelOp,
    RecordOutcomeOp,
    RegisterModelOp,
    TfdvValidateSplitsOp,
    TrainOp,
)


def outcome_recorder(pipeline_name: str) -> Any:
    """The exit handler's task: ``with dsl.ExitHandler(outcome_recorder(NAME)):`` around a
    pipeline's steps records how each run ended (record_outcome), whatever happened."""
    outcome = RecordOutcomeOp(
        pipeline_name=pipeline_name, run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER
    )
    outcome.set_display_name("record-outcome")
    outcome.set_caching_options(False)
    return outcome


def split_and_validate(
    *,
    source_table: Any,
    key_columns: Any,
    split_ratios: Any,
    destination_dataset: Any,
    project: Any,
    location: Any,
    bigquery_endpoint: Any,
    categorical_drift_threshold: Any,
    numeric_drift_threshold: Any,
    drift_thresholds: Any,
    fail_on_anomalies: Any = None,
    label_column: Any = None,
) -> tuple[Any, Any]:
    """The split (Parquet exported) and the one-step TFDV validation of its splits, as both
    pipelines start; returns the two tasks. ``source_table``: a BigQuery table, or Parquet/CSV
    data that the split's embedded engine splits alike. ``fail_on_anomalies`` None: the
    default; ``label_column`` None: the split does not check a label."""
    label = {} if label_column is None else {"label_column": label_column}
    split = BigquerySplitOp(
        source_table=source_table,
        key_columns=key_columns,
        split_ratios=split_ratios,
        destination_dataset=destination_dataset,
        project=project,
        location=location,
        bigquery_endpoint=bigquery_endpoint,
        export_format="parquet",
        **label,
    )
    split.set_display_name("split")
    options = {} if fail_on_anomalies is None else {"fail_on_anomalies": fail_on_anomalies}
    validation = TfdvValidateSplitsOp(
        train=split.outputs["train"],
        validation=split.outputs["validation"],
        test=split.outputs["test"],
        default_categorical_drift_threshold=categorical_drift_threshold,
        default_numeric_drift_threshold=numeric_drift_threshold,
        drift_thresholds=drift_thresholds,
        **options,
    )
    validation.set_display_name("validate-data")
    return split, validation


def validation_thresholds(
    *,
    categorical_drift_threshold: Any,
    numeric_drift_threshold: Any,
    drift_thresholds: Any,
    categorical_skew_threshold: Any,
    numeric_skew_threshold: Any,
    skew_thresholds: Any,
) -> dict[str, Any]:
    """A pipeline's drift and skew thresholds as tfdv_validate and monitor_serving take them
    (``default_*`` for the two per-kind defaults): built once, passed to each step."""
    return {
        "default_categorical_drift_threshold": categorical_drift_threshold,
        "default_numeric_drift_threshold": numeric_drift_threshold,
        "drift_thresholds": drift_thresholds,
        "default_categorical_skew_threshold": categorical_skew_threshold,
        "default_numeric_skew_threshold": numeric_skew_threshold,
        "skew_thresholds": skew_thresholds,
    }


def monitor_served_traffic(
    *,
    logs: Any,
    start: Any,
    end: Any,
    training_statistics: Any,
    previous_statistics: Any,
    thresholds: dict[str, Any],
    **options: Any,
) -> Any:
    """monitor_serving over ``[start, end)`` of the served traffic under ``logs``, with the
    data validation's ``thresholds`` (:func:`validation_thresholds`), as both the
    continuous-training and the monitoring pipeline run it; ``options``: its other arguments
    (reference_metrics, max_decay, ...); a baseline None is not connected."""
    baselines = {"training_statistics": training_statistics,
                 "previous_statistics": previous_statistics}  # fmt: skip
    monitor = MonitorServingOp(
        logs=logs,
        start=start,
        end=end,
        **{name: given for name, given in baselines.items() if given is not None},
        **thresholds,
        **options,
    )
    monitor.set_display_name("monitor-serving")
    monitor.set_caching_options(False)  # reads the log folder, which grows under one name
    return monitor


@dataclass
class ModelChain:
    tune: Any
    trained: Any
    evaluation: Any


def tune_train_evaluate_push(
    *,
    train_data: Any,
    validation_data: Any,
    test_data: Any,
    schema: Any,
    after: Any,
    label_column: Any,
    hyperparameters: Any,
    tuning_trials: Any,
    tuning_parallel_trials: Any,
    tuning_algorithm: Any,
    tuning_search_space: Any,
    tuning_backend: Any,
    tuning_namespace: Any,
    slice_columns: Any,
    min_auc: Any,
    max_auc_regression: Any,
    serving_model_uri: Any,
    serving_model_name: Any,
    serving_backend: Any,
    serving_namespace: Any,
    push_action: Any,
    canary_traffic_percent: Any,
    when_pushed: Callable[[Any, Any], None] | None = None,
    exclude_columns: Any = None,
    registry: dict[str, Any] | None = None,
) -> ModelChain:
    """Tune, train, evaluate against the model under ``serving_model_uri``; when blessed,
    publish and push. ``after`` is the data-validation task (nothing trains before it);
    ``when_pushed(publish, push)`` adds steps inside the blessed branch, after the push;
    ``exclude_columns`` (None: the components' default, none) are never features.
    ``registry`` (register_model's backend settings, and optionally ``statistics``: the
    training statistics for lineage) registers every evaluated model: a blessed one, once
    published and before it is pushed, as ``champion``; one that was not, as ``challenger``.
    Arguments are the pipelines' parameters of the same names (see pipelines/training.py)."""
    columns = {} if exclude_columns is None else {"exclude_columns": exclude_columns}
    tune = KatibTuneOp(
        train_data=train_data,
        validation_data=validation_data,
        schema=schema,
        search_space=tuning_search_space,
        label_column=label_column,
        fixed_hyperparameters=hyperparameters,
        algorithm=tuning_algorithm,
        max_trial_count=tuning_trials,
        parallel_trial_count=tuning_parallel_trials,
        # all trials failing still fails the step ("no trial succeeded")
        max_failed_trial_count=tuning_trials,
        backend=tuning_backend,
        namespace=tuning_namespace,
        **columns,
        trial_image=targets.image("train"),  # Katib's trials: the compile target's train image
    ).after(after)
    tune.set_display_name("tune")

    # several workers where the compile target says so (targets.yaml: distribution.train)
    distribution = targets.distribution("train")
    trained = TrainOp(
        train_data=train_data,
        validation_data=validation_data,
        schema=schema,
        label_column=label_column,
        hyperparameters=tune.outputs["best_hyperparameters"],
        **columns,
        **({"distribution": distribution} if distribution else {}),
    ).after(after)  # data that failed validation (fail_on_anomalies) is not trained on
    trained.set_display_name("train")
    targets.configure(trained, "train")  # the compile target's accelerators, if any
    evaluation = EvaluateOp(
        model=trained.outputs["model"],
        test_data=test_data,
        label_column=label_column,
        slice_columns=slice_columns,
        metric="auc",
        absolute_threshold=min_auc,
        baseline_model_dir=serving_model_uri,
        max_regression=max_auc_regression,
    )
    evaluation.set_display_name("evaluate")
    # The baseline is whatever is published under serving_model_uri now, not an input KFP's
    # cache key sees: always evaluate again.
    evaluation.set_caching_options(False)

    def register(model: Any, display_name: str) -> Any:
        task = RegisterModelOp(
            model=model,
            metrics=evaluation.outputs["metrics"],
            blessed=evaluation.outputs["blessed"],
            # Vertex AI: the version explains on an endpoint as evaluate's attributions did
            explanation=evaluation.outputs["explanation"],
            model_name=serving_model_name,
            train_data=train_data,
            validation_data=validation_data,
            schema=schema,
            pipeline_run=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            pipeline_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            **(registry or {}),
        )
        task.set_display_name(display_name)
        task.set_caching_options(False)  # writes to the registry, outside the pipeline root
        return task

    with dsl.If(evaluation.outputs["blessed"] == True, name="blessed"):  # noqa: E712
        publish = PublishModelOp(model=trained.outputs["model"], destination=serving_model_uri)
        publish.set_display_name("publish-model")
        publish.set_caching_options(False)  # a side effect outside the pipeline root
        # the champion alias marks what is served: it moves before the push
        champion = None if registry is None else register(publish.outputs["published_model"],
                                                           "register-model")  # fmt: skip
        # proven to serve on KServe's model server with test rows first, then pushed
        push = KservePushOp(
            model=publish.outputs["published_model"],
            test_data=test_data,
            model_name=serving_model_name,
            backend=serving_backend,
            namespace=serving_namespace,
            action=push_action,
            canary_traffic_percent=canary_traffic_percent,
        )
        push.set_display_name("push-model")
        push.set_caching_options(False)  # serves what publish just wrote
        if champion is not None:
            push.after(champion)
        if when_pushed is not None:
            when_pushed(publish, push)
    if registry is not None:
        with dsl.Else(name="not-blessed"):  # on record too, with its lineage and metrics
            register(trained.outputs["model"], "register-challenger")
    return ModelChain(tune, trained, evaluation)
