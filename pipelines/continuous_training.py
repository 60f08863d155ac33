"""Continuous training, for scheduled runs: one data window a run; retrain only when needed.

Each run takes the newest window (``source_table``: one BigQuery table per window, named by
the schedule, e.g. ``project.dataset.employment_2016``; ``window`` labels it), splits and
validates it, and compares its statistics with the previous window's (drift) and with the
training data of the model in production (skew), both kept in a state folder
(``state_uri``). ``retrain_decision`` then decides: retrain when no model is in production,
a feature moved beyond its threshold, or the production model reached a maximum age; the
decision and its reasons are an artifact of every run, and the window's statistics are kept
as the next window's baseline. With ``serving_logs``, the traffic the production model
served (``monitor_serving``: skew from its training data) is a reason too; the monitoring
step always runs (no traffic: it says so), so the decision reads it on every platform
without ``dsl.OneOf``. Only under ``dsl.If(retrain)`` does the run tune, train,
evaluate against the production model, register, publish and push (the training pipeline's chain,
:mod:`kfpkit.pipelines.model_chain`); a pushed model becomes the production model of the
state folder, its window's statistics the skew baseline of the windows after it. Every
registered version (blessed or not) is recorded for its window as soon as the registry
answers: a re-run of that window trains and registers nothing, while a run that failed
before registering left no version, so its window trains again.
"""

from kfp import dsl

from kfpkit.components import (
    LoadWindowStateOp,
    RetrainDecisionOp,
    SaveWindowStateOp,
    TfdvValidateOp,
)
from kfpkit.pipelines import defaults
from kfpkit.pipelines.model_chain import (
    ChainParameters,
    monitor_served_traffic,
    outcome_recorder,
    split_and_validate,
    tune_train_evaluate_push,
    validation_thresholds,
)

PIPELINE_NAME = "kfpkit-continuous-training"
# the features that differ between windows by construction: threshold 0, never compared
NOT_COMPARED = {feature: 0.0 for feature in defaults.NOT_COMPARED_FEATURES}


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Continuous training, one data window a run: split and validate the "
    "window, measure drift against the previous window and skew against the production "
    "model's training data, and retrain (tune, train, evaluate against production, publish, "
    "push) only when the data moved beyond thresholds or the model reached its maximum age; "
    "every run records its decision and reasons.",
)
def continuous_training(
    project: str,
    source_table: str,
    window: str,
    state_uri: str,
    destination_dataset: str,
    serving_model_uri: str,
    key_columns: list = defaults.KEY_COLUMNS,
    split_ratios: dict = defaults.SPLIT_RATIOS,
    location: str = defaults.BIGQUERY_LOCATION,
    bigquery_endpoint: str = "",
    categorical_drift_threshold: float = defaults.WINDOW_THRESHOLD,
    numeric_drift_threshold: float = defaults.WINDOW_THRESHOLD,
    drift_thresholds: dict = NOT_COMPARED,
    categorical_skew_threshold: float = defaults.WINDOW_THRESHOLD,
    numeric_skew_threshold: float = defaults.WINDOW_THRESHOLD,
    skew_thresholds: dict = NOT_COMPARED,
    max_model_age_windows: int = 2,
    max_model_age_days: float = 0.0,
    retrain_on_skew: bool = True,
    ignored_features: list = defaults.NOT_COMPARED_FEATURES,
    serving_logs: str = "",
    serving_start: str = "",
    serving_end: str = "",
    label_column: str = defaults.LABEL_COLUMN,
    hyperparameters: dict = defaults.HYPERPARAMETERS,
    tuning_trials: int = defaults.TUNING_TRIALS,
    tuning_parallel_trials: int = defaults.TUNING_PARALLEL_TRIALS,
    tuning_algorithm: str = defaults.TUNING_ALGORITHM,
    tuning_search_space: list = defaults.TUNING_SEARCH_SPACE,
    tuning_backend: str = defaults.TUNING_BACKEND,
    tuning_namespace: str = defaults.TUNING_NAMESPACE,
    slice_columns: list = ["SEX"],  # noqa: B006 - KFP needs a literal default
    min_auc: float = defaults.MIN_AUC,
    max_auc_regression: float = defaults.MAX_AUC_REGRESSION,
    bootstrap_resamples: int = defaults.BOOTSTRAP_RESAMPLES,
    confidence: float = defaults.CONFIDENCE,
    min_lower_bound: float = defaults.MIN_LOWER_BOUND,
    require_noninferiority: bool = defaults.REQUIRE_NONINFERIORITY,
    noninferiority_margin: float = defaults.NONINFERIORITY_MARGIN,
    slice_thresholds: dict = defaults.SLICE_THRESHOLDS,
    serving_model_name: str = defaults.MODEL_NAME,
    serving_backend: str = defaults.SERVING_BACKEND,
    serving_namespace: str = defaults.SERVING_NAMESPACE,
    push_action: str = defaults.PUSH_ACTION,
    canary_traffic_percent: int = defaults.CANARY_TRAFFIC_PERCENT,
    registry_backend: str = defaults.REGISTRY_BACKEND,
    registry_uri: str = "",
    registry_location: str = defaults.REGISTRY_LOCATION,
    registry_server_address: str = "",
):
    """Continuous-training pipeline (one window a run).

    Args:
        project: Project running the BigQuery jobs.
        source_table: ``project.dataset.table`` holding the new window's examples.
        window: The window's label; labels sort in time order (``2016``, ``2016-01-31``).
        state_uri: Folder of the pipeline's state: each window's statistics and decision,
            and the production model's record (``gs://...`` on a cluster).
        destination_dataset: Dataset receiving one table per split.
        serving_model_uri: Versioned serving directory (see the training pipeline); its
            newest version is the production model new candidates are evaluated against.
        key_columns: Columns whose hash decides each row's split.
        split_ratios: Split name -> fraction.
        location: BigQuery location.
        bigquery_endpoint: The emulator's URL for local runs; empty on BigQuery.
        categorical_drift_threshold: L-infinity distance of a categorical feature's value
            frequencies from the previous window's above which it drifted (0: off).
        numeric_drift_threshold: Jensen-Shannon divergence threshold of numeric features.
        drift_thresholds: Feature -> drift threshold overriding the defaults; ``id`` and
            ``year`` are 0 (not compared: they differ by construction). Keep them at 0 when
            overriding.
        categorical_skew_threshold: As the drift one, against the production model's
            training data.
        numeric_skew_threshold: As the drift one, for skew.
        skew_thresholds: As ``drift_thresholds``, for skew.
        max_model_age_windows: Retrain when the production model was trained this many
            windows ago (0: never for age).
        max_model_age_days: Retrain when the production model was pushed this many days ago
            (0: never for age).
        retrain_on_skew: Whether skew over threshold retrains.
        ignored_features: Features never counted by the decision and never used as model
            features (``id``, ``year``: constant within a window, new in the next one).
        serving_logs: The production model's served traffic (a log folder, ``gs://`` or
            ``bq://project.dataset.table``; see monitor_serving); "": no served traffic.
            Served skew from the production model's training data beyond the skew
            thresholds retrains (with ``retrain_on_skew``).
        serving_start: Start of the served window (ISO 8601; "": the log's beginning).
        serving_end: End of the served window (exclusive; "": everything logged so far).
        label_column: The binary label.
        hyperparameters: Training hyperparameters (see the training pipeline).
        tuning_trials: Trial budget of the tune step (0: no tuning).
        tuning_parallel_trials: Trials at a time.
        tuning_algorithm: katib_tune's algorithm.
        tuning_search_space: katib_tune's search space.
        tuning_backend: ``local`` (Optuna in the step) or ``katib``.
        tuning_namespace: The Katib Experiment's namespace.
        slice_columns: Features the evaluation reports per value of.
        min_auc: Test AUC a model needs to be blessed.
        max_auc_regression: How much lower than the production model's AUC on this
            window's test split a new model's may be.
        bootstrap_resamples: Paired bootstrap resamples behind evaluate's intervals (see
            the training pipeline).
        confidence: Level of the intervals, in [0.5, 1).
        min_lower_bound: Lowest acceptable lower bound of the test AUC's interval (0: none).
        require_noninferiority: Bless only if the new model is not worse than the
            production model at ``confidence``: the lower bound of the paired AUC difference
            on this window's test rows >= -``noninferiority_margin``.
        noninferiority_margin: How much worse than the production model that bound may be.
        slice_thresholds: ``{"column=value": floor}``: per-slice AUC floors.
        serving_model_name: Name of the served model.
        serving_backend: ``local`` or ``kserve`` (see the training pipeline).
        serving_namespace: Kubernetes namespace of the InferenceService.
        push_action: ``apply`` or ``canary``.
        canary_traffic_percent: Share of traffic the canary gets.
        registry_backend: Where every evaluated model is registered, with lineage (as the
            training pipeline's): ``mlflow``, ``vertex`` or ``kubeflow``.
        registry_uri: mlflow: a path (SQLite), a database URI or an MLflow server's URL.
        registry_location: vertex: the Vertex AI region.
        registry_server_address: kubeflow: the Model Registry's ``http(s)://host:port``.
    """
    parameters = locals()  # the steps take this pipeline's parameters by name (model_chain)
    # Runs last, whatever happened inside the handler: the run's outcome as an artifact.
    with dsl.ExitHandler(outcome_recorder(PIPELINE_NAME), name="continuous-training"):
        split, validation = split_and_validate(parameters)
        # the window itself: its statistics, and its splits against each other
        window_statistics = validation.outputs["train_statistics"]

        state = LoadWindowStateOp(
            state_uri=state_uri, window=window, current_statistics=window_statistics
        )
        state.set_display_name("load-state")
        state.set_caching_options(False)  # reads the state folder, which no input names

        thresholds = validation_thresholds(parameters)
        # drift against the previous window, skew against the production model's data
        comparison = TfdvValidateOp(
            statistics=window_statistics,
            schema=validation.outputs["schema"],
            baseline_statistics=state.outputs["previous_statistics"],
            serving_statistics=state.outputs["production_statistics"],
            **thresholds,
        )
        comparison.set_display_name("compare-windows")

        # what the production model served: skew from its training data, drift from the
        # previous window ("" or an empty window: no traffic, no reason)
        served = monitor_served_traffic(
            logs=serving_logs,
            start=serving_start,
            end=serving_end,
            training_statistics=state.outputs["production_statistics"],
            previous_statistics=state.outputs["previous_statistics"],
            thresholds=thresholds,
        )

        decision = RetrainDecisionOp(
            anomalies=comparison.outputs["anomalies"],
            state=state.outputs["state"],
            monitoring=served.outputs["monitoring"],
            max_model_age_windows=max_model_age_windows,
            max_model_age_days=max_model_age_days,
            retrain_on_skew=retrain_on_skew,
            ignored_features=ignored_features,
        )
        decision.set_display_name("decide")

        def save_state(display_name: str, **record):  # type: ignore[no-untyped-def]
            """One record of this window in the state folder (never from the cache)."""
            saved = SaveWindowStateOp(
                state_uri=state_uri, window=window, statistics=window_statistics, **record
            )
            saved.set_display_name(display_name)
            saved.set_caching_options(False)
            return saved

        # this window's statistics: the next window's drift baseline (retrained or not)
        save_state("record-window", decision=decision.outputs["decision"])

        def record_production(publish, push):  # type: ignore[no-untyped-def]
            promoted = save_state(
                "record-production", published_model=publish.outputs["published_model"]
            )
            promoted.after(push)

        def record_registration(registered):  # type: ignore[no-untyped-def]
            # the guard against a second version from this window's data (load_window_state's
            # window_registered_before), written as soon as the registry answered; losing the
            # record would lose the guard
            recorded = save_state(
                "record-registration", registered_model=registered.outputs["registered_model"]
            )
            recorded.set_retry(num_retries=3)

        with dsl.If(decision.outputs["retrain"] == True, name="retrain"):  # noqa: E712
            tune_train_evaluate_push(
                ChainParameters.of(parameters),
                train_data=split.outputs["train"],
                validation_data=split.outputs["validation"],
                test_data=split.outputs["test"],
                schema=validation.outputs["schema"],
                training_statistics=window_statistics,
                after=decision,
                # constant within a window, new in the next: never a feature
                exclude_columns=ignored_features,
                when_pushed=record_production,
                when_registered=record_registration,
            )
