"""The end-to-end training pipeline: split, validate the data, tune, train, evaluate, publish
if blessed.

Stages are added as steps of :func:`training`; every step's outputs are named so that the
next stage (validation, training, evaluation, push) can take them without reshaping.
"""

from kfp import dsl

from kfpkit.pipelines import defaults
from kfpkit.pipelines.model_chain import (
    ChainParameters,
    outcome_recorder,
    split_and_validate,
    tune_train_evaluate_push,
)

PIPELINE_NAME = "kfpkit-training"


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Split a BigQuery table (or Parquet/CSV data, split alike in the step) by a "
    "repeatable key hash, validate the splits with TFDV "
    "in one step (statistics, schema, anomalies, drift), tune (Optuna locally or a Katib "
    "Experiment) and train a Keras model, evaluate it on "
    "the test split, and "
    "publish it to the serving directory when it is blessed, then push it (KServe's model "
    "server proves it serves first). An exit handler records the run's outcome.",
)
def training(
    source_table: str,
    serving_model_uri: str,
    project: str = "",
    destination_dataset: str = "",
    key_columns: list = defaults.KEY_COLUMNS,
    split_ratios: dict = defaults.SPLIT_RATIOS,
    location: str = defaults.BIGQUERY_LOCATION,
    bigquery_endpoint: str = "",
    categorical_drift_threshold: float = 0.1,
    numeric_drift_threshold: float = 0.1,
    drift_thresholds: dict = {},  # noqa: B006 - KFP needs a literal default
    fail_on_anomalies: bool = False,
    label_column: str = defaults.LABEL_COLUMN,
    exclude_columns: list = ["id"],  # noqa: B006
    hyperparameters: dict = defaults.HYPERPARAMETERS,
    tuning_trials: int = defaults.TUNING_TRIALS,
    tuning_parallel_trials: int = defaults.TUNING_PARALLEL_TRIALS,
    tuning_algorithm: str = defaults.TUNING_ALGORITHM,
    tuning_search_space: list = defaults.TUNING_SEARCH_SPACE,
    tuning_backend: str = defaults.TUNING_BACKEND,
    tuning_namespace: str = defaults.TUNING_NAMESPACE,
    slice_columns: list = ["SEX", "year"],  # noqa: B006
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
    """Training pipeline.

    Args:
        source_table: The examples: a BigQuery table ``project.dataset.table``, or
            Parquet/CSV data (a file or folder: path or ``gs://`` URI) that the split step
            splits itself, assigning every row as BigQuery would (no BigQuery needed).
        serving_model_uri: Versioned serving directory a blessed model is published to
            (``gs://bucket/models/<name>``; a path under the pipeline root locally).
        project: Project running the BigQuery jobs (and the Vertex AI registry's); not
            needed for Parquet/CSV data.
        destination_dataset: Dataset receiving one table per split (BigQuery sources).
        key_columns: Columns whose hash decides each row's split.
        split_ratios: Split name -> fraction.
        location: BigQuery location.
        bigquery_endpoint: Set to the emulator's URL for local runs; empty on BigQuery.
        categorical_drift_threshold: L-infinity drift threshold of the validation split's
            categorical features against the train split (0 turns it off).
        numeric_drift_threshold: Jensen-Shannon drift threshold of numeric features.
        drift_thresholds: Feature -> drift threshold, overriding the two defaults (0 turns a
            feature off, e.g. an id or time column that differs by construction).
        fail_on_anomalies: Stop the run when the validation split has anomalies.
        label_column: The binary label (the split checks it exists; for Parquet/CSV data
            also that it has two values and no NULLs).
        exclude_columns: Columns never used as features (ids, the key columns).
        hyperparameters: Training hyperparameters (JSON dict; see the train component): the
            fixed ones of every tuning trial, and the rest of the final training's.
        tuning_trials: Trial budget of the tune step; 0 trains with ``hyperparameters`` as
            they are (no trial runs).
        tuning_parallel_trials: Trials at a time.
        tuning_algorithm: katib_tune's algorithm (``tpe``, ``random``, ``grid``, ...).
        tuning_search_space: katib_tune's search space (``train`` hyperparameters).
        tuning_backend: ``local`` (Optuna in the step) or ``katib`` (an Experiment).
        tuning_namespace: The Katib Experiment's namespace.
        slice_columns: Features the evaluation reports per value of.
        min_auc: Test AUC a model needs to be blessed and published.
        max_auc_regression: How much lower than the model last published under
            ``serving_model_uri`` (the baseline) the test AUC may be; the first run has no
            baseline.
        bootstrap_resamples: Paired bootstrap resamples of the test rows behind evaluate's
            confidence intervals (candidate, baseline, their difference, per slice).
        confidence: Level of the intervals, in [0.5, 1).
        min_lower_bound: Bless only if the lower bound of the test AUC's interval reaches
            this (0: no check).
        require_noninferiority: Bless only if the candidate is not worse than the baseline
            at ``confidence``: the lower bound of the paired AUC difference
            >= -``noninferiority_margin``.
        noninferiority_margin: How much worse than the baseline that interval may reach (at
            0 the candidate must be significantly better; e.g. 0.001).
        slice_thresholds: ``{"column=value": floor}``: a slice's AUC below its floor blocks
            the blessing (e.g. ``{"SEX=2": 0.8}``; the column in ``slice_columns``).
        serving_model_name: Name of the served model (the InferenceService on a cluster).
        serving_backend: ``local`` (infra validation on KServe's model server only; serve
            with ``kfpkit serve``) or ``kserve`` (an InferenceService; ``serving_model_uri``
            must then be gs://, s3:// or pvc://).
        serving_namespace: Kubernetes namespace of the InferenceService.
        push_action: ``apply`` (all traffic to the new model) or ``canary`` (kserve only).
        canary_traffic_percent: Share of traffic the canary gets.
        registry_backend: Where every evaluated model is registered (register_model; the
            name is ``serving_model_name``): ``mlflow`` (MLflow's registry; SQLite at
            ``registry_uri``), ``vertex`` (Vertex AI Model Registry in ``project``) or
            ``kubeflow`` (Kubeflow Model Registry at ``registry_server_address``).
        registry_uri: mlflow: a path (SQLite; local runs use ``<pipeline root>/registry/
            mlflow.db``), a database URI or an MLflow server's URL.
        registry_location: vertex: the Vertex AI region.
        registry_server_address: kubeflow: the Model Registry's ``http(s)://host:port``.
    """
    parameters = locals()  # the steps take this pipeline's parameters by name (model_chain)
    # Runs last, whatever happened inside the handler: the run's outcome as an artifact.
    with dsl.ExitHandler(outcome_recorder(PIPELINE_NAME), name="training"):
        split, validation = split_and_validate(
            parameters, fail_on_anomalies=fail_on_anomalies, label_column=label_column
        )
        tune_train_evaluate_push(
            ChainParameters.of(parameters),
            train_data=split.outputs["train"],
            validation_data=split.outputs["validation"],
            test_data=split.outputs["test"],
            schema=validation.outputs["schema"],
            training_statistics=validation.outputs["train_statistics"],
            after=validation,
            exclude_columns=exclude_columns,
        )
