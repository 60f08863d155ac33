"""The tune -> train -> evaluate -> publish -> push chain both pipelines run (one definition).

:func:`tune_train_evaluate_push` adds the steps to the pipeline being defined, from split
and validation outputs; the training pipeline calls it on every run, the continuous-training
pipeline inside ``dsl.If(retrain)``. A plain function rather than a nested ``@dsl.pipeline``:
the steps stay in their caller's graph, with the same task names and display names in
compiled YAML and in kfp.local's run folders. The helpers take a pipeline's parameters by
their names from its ``locals()`` (:func:`pipeline_parameters`), so that no pipeline restates
a long keyword call; defaults shared by pipelines are in :mod:`kfpkit.pipelines.defaults`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
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


def pipeline_parameters(scope: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """The parameters ``names`` of the pipeline being defined, from its ``locals()``: the
    helpers below take a pipeline's parameters by their names rather than each pipeline
    restating them one keyword at a time."""
    missing = [name for name in names if name not in scope]
    if missing:
        raise ValueError(f"the pipeline has no parameter(s) {missing}")
    return {name: scope[name] for name in names}


# bigquery_split's pipeline parameters, as split_and_validate passes them
SPLIT_PARAMETERS = ("source_table", "key_columns", "split_ratios", "destination_dataset",
                    "project", "location", "bigquery_endpoint")  # fmt: skip


def _thresholds(pipeline: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The pipeline's ``kind`` (``drift`` or ``skew``) thresholds under the names of
    tfdv_validate and monitor_serving: ``default_*`` for the two per-kind defaults."""
    categorical, numeric = f"categorical_{kind}_threshold", f"numeric_{kind}_threshold"
    per_feature = f"{kind}_thresholds"
    given = pipeline_parameters(pipeline, (categorical, numeric, per_feature))
    return {
        f"default_{categorical}": given[categorical],
        f"default_{numeric}": given[numeric],
        per_feature: given[per_feature],
    }


def split_and_validate(
    pipeline: Mapping[str, Any], *, fail_on_anomalies: Any = None, label_column: Any = None
) -> tuple[Any, Any]:
    """The split (Parquet exported) and the one-step TFDV validation of its splits, as both
    pipelines start; returns the two tasks. ``pipeline``: the pipeline's ``locals()``, with
    :data:`SPLIT_PARAMETERS` and the drift thresholds; ``source_table`` is a BigQuery
    table, or Parquet/CSV data that the split's embedded engine splits alike.
    ``fail_on_anomalies`` None: the default; ``label_column`` None: the split does not check
    a label."""
    label = {} if label_column is None else {"label_column": label_column}
    split = BigquerySplitOp(
        **pipeline_parameters(pipeline, SPLIT_PARAMETERS), export_format="parquet", **label
    )
    split.set_display_name("split")
    options = {} if fail_on_anomalies is None else {"fail_on_anomalies": fail_on_anomalies}
    validation = TfdvValidateSplitsOp(
        train=split.outputs["train"],
        validation=split.outputs["validation"],
        test=split.outputs["test"],
        **_thresholds(pipeline, "drift"),
        **options,
    )
    validation.set_display_name("validate-data")
    return split, validation


def validation_thresholds(pipeline: Mapping[str, Any]) -> dict[str, Any]:
    """A pipeline's drift and skew thresholds (its parameters ``categorical_drift_threshold``,
    ..., ``skew_thresholds``, from its ``locals()``) as tfdv_validate and monitor_serving take
    them: built once, passed to each step."""
    return _thresholds(pipeline, "drift") | _thresholds(pipeline, "skew")


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


@dataclass(frozen=True)
class ChainParameters:
    """The pipeline parameters the chain reads, under the pipelines' own names (documented
    in pipelines/training.py); :meth:`of` takes them from a pipeline's ``locals()``."""

    label_column: Any
    hyperparameters: Any
    tuning_trials: Any
    tuning_parallel_trials: Any
    tuning_algorithm: Any
    tuning_search_space: Any
    tuning_backend: Any
    tuning_namespace: Any
    slice_columns: Any
    min_auc: Any
    max_auc_regression: Any
    # evaluate's interval-based blessing (its parameters of the same names)
    bootstrap_resamples: Any
    confidence: Any
    min_lower_bound: Any
    require_noninferiority: Any
    noninferiority_margin: Any
    slice_thresholds: Any
    serving_model_uri: Any
    serving_model_name: Any
    serving_backend: Any
    serving_namespace: Any
    push_action: Any
    canary_traffic_percent: Any
    registry_backend: Any
    registry_uri: Any
    project: Any
    registry_location: Any
    registry_server_address: Any

    @classmethod
    def of(cls, pipeline: Mapping[str, Any]) -> ChainParameters:
        """The chain's parameters of the pipeline being defined (its ``locals()``)."""
        return cls(**pipeline_parameters(pipeline, [field.name for field in fields(cls)]))


def tune_train_evaluate_push(
    pipeline: ChainParameters,
    *,
    train_data: Any,
    validation_data: Any,
    test_data: Any,
    schema: Any,
    training_statistics: Any,
    after: Any,
    exclude_columns: Any,
    when_pushed: Callable[[Any, Any], None] | None = None,
    when_registered: Callable[[Any], None] | None = None,
) -> ModelChain:
    """Tune, train, evaluate against the model under ``serving_model_uri``; when blessed,
    publish and push. ``pipeline``: the pipeline's parameters (:class:`ChainParameters`);
    ``after`` is the data-validation task (nothing trains before it); ``exclude_columns``
    are never features; ``when_pushed(publish, push)`` adds steps inside the blessed
    branch, after the push. Every evaluated model is registered (register_model, with
    ``training_statistics`` for lineage): a blessed one, once published and before it is
    pushed, as ``champion``; one that was not, as ``challenger``. ``when_registered(task)``
    adds steps after each registration (both branches), e.g. recording the version."""
    tune = KatibTuneOp(
        train_data=train_data,
        validation_data=validation_data,
        schema=schema,
        search_space=pipeline.tuning_search_space,
        label_column=pipeline.label_column,
        fixed_hyperparameters=pipeline.hyperparameters,
        algorithm=pipeline.tuning_algorithm,
        max_trial_count=pipeline.tuning_trials,
        parallel_trial_count=pipeline.tuning_parallel_trials,
        # all trials failing still fails the step ("no trial succeeded")
        max_failed_trial_count=pipeline.tuning_trials,
        backend=pipeline.tuning_backend,
        namespace=pipeline.tuning_namespace,
        exclude_columns=exclude_columns,
        trial_image=targets.image("train"),  # Katib's trials: the compile target's train image
    ).after(after)
    tune.set_display_name("tune")

    # several workers where the compile target says so (targets.yaml: distribution.train)
    distribution = targets.distribution("train")
    trained = TrainOp(
        train_data=train_data,
        validation_data=validation_data,
        schema=schema,
        label_column=pipeline.label_column,
        hyperparameters=tune.outputs["best_hyperparameters"],
        exclude_columns=exclude_columns,
        **({"distribution": distribution} if distribution else {}),
    ).after(after)  # data that failed validation (fail_on_anomalies) is not trained on
    trained.set_display_name("train")
    targets.configure(trained, "train")  # the compile target's accelerators, if any
    evaluation = EvaluateOp(
        model=trained.outputs["model"],
        test_data=test_data,
        label_column=pipeline.label_column,
        slice_columns=pipeline.slice_columns,
        metric="auc",
        absolute_threshold=pipeline.min_auc,
        baseline_model_dir=pipeline.serving_model_uri,
        max_regression=pipeline.max_auc_regression,
        bootstrap_resamples=pipeline.bootstrap_resamples,
        confidence=pipeline.confidence,
        min_lower_bound=pipeline.min_lower_bound,
        require_noninferiority=pipeline.require_noninferiority,
        noninferiority_margin=pipeline.noninferiority_margin,
        slice_thresholds=pipeline.slice_thresholds,
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
            model_name=pipeline.serving_model_name,
            train_data=train_data,
            validation_data=validation_data,
            schema=schema,
            pipeline_run=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            pipeline_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            backend=pipeline.registry_backend,
            registry_uri=pipeline.registry_uri,
            project=pipeline.project,
            location=pipeline.registry_location,
            server_address=pipeline.registry_server_address,
            statistics=training_statistics,
        )
        task.set_display_name(display_name)
        task.set_caching_options(False)  # writes to the registry, outside the pipeline root
        if when_registered is not None:
            when_registered(task)
        return task

    with dsl.If(evaluation.outputs["blessed"] == True, name="blessed"):  # noqa: E712
        publish = PublishModelOp(
            model=trained.outputs["model"], destination=pipeline.serving_model_uri
        )
        publish.set_display_name("publish-model")
        publish.set_caching_options(False)  # a side effect outside the pipeline root
        # the champion alias marks what is served: it moves before the push
        champion = register(publish.outputs["published_model"], "register-model")
        # proven to serve on KServe's model server with test rows first, then pushed
        push = KservePushOp(
            model=publish.outputs["published_model"],
            test_data=test_data,
            model_name=pipeline.serving_model_name,
            backend=pipeline.serving_backend,
            namespace=pipeline.serving_namespace,
            action=pipeline.push_action,
            canary_traffic_percent=pipeline.canary_traffic_percent,
        ).after(champion)
        push.set_display_name("push-model")
        push.set_caching_options(False)  # serves what publish just wrote
        if when_pushed is not None:
            when_pushed(publish, push)
    with dsl.Else(name="not-blessed"):  # on record too, with its lineage and metrics
        register(trained.outputs["model"], "register-challenger")
    return ModelChain(tune, trained, evaluation)
