"""The end-to-end training pipeline: split, validate the data, tune, train, evaluate, publish
if blessed.

Stages are added as steps of :func:`training`; every step's outputs are named so that the
next stage (validation, training, evaluation, push) can take them without reshaping.
"""

from kfp import dsl

from kfpkit.components.bigquery_split.sql import DEFAULT_RATIOS
from kfpkit.pipelines.model_chain import (
    outcome_recorder,
    split_and_validate,
    tune_train_evaluate_push,
)

PIPELINE_NAME = "kfpkit-training"
# The demo data's label and the tune step's trial budget: set here once, read by every
# pipeline (the components have no label default; their own defaults are their own).
LABEL_COLUMN = "employed"
TUNING_TRIALS = 3
# What the tune step searches by default: the learning rate and the network's width.
TUNING_SEARCH_SPACE = [
    {"name": "learning_rate", "type": "double", "min": 3e-4, "max": 1e-2, "log": True},
    {"name": "hidden_units", "type": "categorical", "values": ["64,32", "128,64"]},
]
# The served model's name and the evaluation gate a candidate passes, in every pipeline.
MODEL_NAME = "employment"
MIN_AUC = 0.8
MAX_AUC_REGRESSION = 0.005
# Continuous training and monitoring: drift or skew beyond this moved a feature; the demo's
# id and year differ between windows by construction, never compared, never a reason.
WINDOW_THRESHOLD = 0.03
NOT_COMPARED_FEATURES = ["id", "year"]


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
    key_columns: list = ["id"],  # noqa: B006 - KFP needs a literal default
    split_ratios: dict = DEFAULT_RATIOS,  # noqa: B006
    location: str = "US",
    bigquery_endpoint: str = "",
    categorical_drift_threshold: float = 0.1,
    numeric_drift_threshold: float = 0.1,
    drift_thresholds: dict = {},  # noqa: B006
    fail_on_anomalies: bool = False,
    label_column: str = LABEL_COLUMN,
    exclude_columns: list = ["id"],  # noqa: B006
    hyperparameters: dict = {},  # noqa: B006
    tuning_trials: int = TUNING_TRIALS,
    tuning_parallel_trials: int = 1,
    tuning_algorithm: str = "tpe",
    tuning_search_space: list = TUNING_SEARCH_SPACE,  # noqa: B006
    tuning_backend: str = "local",
    tuning_namespace: str = "kubeflow",
    slice_columns: list = ["SEX", "year"],  # noqa: B006
    min_auc: float = MIN_AUC,
    max_auc_regression: float = MAX_AUC_REGRESSION,
    serving_model_name: str = MODEL_NAME,
    serving_backend: str = "local",
    serving_namespace: str = "default",
    push_action: str = "apply",
    canary_traffic_percent: int = 10,
    registry_backend: str = "mlflow",
    registry_uri: str = "",
    registry_location: str = "us-central1",
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
    # Runs last, whatever happened inside the handler: the run's outcome as an artifact.
    with dsl.ExitHandler(outcome_recorder(PIPELINE_NAME), name="training"):
        split, validation = split_and_validate(
            source_table=source_table,
            key_columns=key_columns,
            split_ratios=split_ratios,
            destination_dataset=destination_dataset,
            project=project,
            location=location,
            bigquery_endpoint=bigquery_endpoint,
            categorical_drift_threshold=categorical_drift_threshold,
            numeric_drift_threshold=numeric_drift_threshold,
            drift_thresholds=drift_thresholds,
            fail_on_anomalies=fail_on_anomalies,
            label_column=label_column,
        )

        tune_train_evaluate_push(
            train_data=split.outputs["train"],
            validation_data=split.outputs["validation"],
            test_data=split.outputs["test"],
            schema=validation.outputs["schema"],
            after=validation,
            label_column=label_column,
            exclude_columns=exclude_columns,
            hyperparameters=hyperparameters,
            tuning_trials=tuning_trials,
            tuning_parallel_trials=tuning_parallel_trials,
            tuning_algorithm=tuning_algorithm,
            tuning_search_space=tuning_search_space,
            tuning_backend=tuning_backend,
            tuning_namespace=tuning_namespace,
            slice_columns=slice_columns,
            min_auc=min_auc,
            max_auc_regression=max_auc_regression,
            serving_model_uri=serving_model_uri,
            serving_model_name=serving_model_name,
            serving_backend=serving_backend,
            serving_namespace=serving_namespace,
            push_action=push_action,
            canary_traffic_percent=canary_traffic_percent,
            registry={
                "backend": registry_backend,
                "registry_uri": registry_uri,
                "project": project,
                "location": registry_location,
                "server_address": registry_server_address,
                "statistics": validation.outputs["train_statistics"],
            },
        )
