"""Monitoring of the served model, for scheduled runs: monitor -> decide -> trigger retraining.

Each run finds the model in production (``resolve_model``: the registry's ``champion``,
its evaluation metrics and the training statistics in its lineage), watches the traffic it
served in the last ``window_hours`` (``monitor_serving``: skew from its training data, drift
from the window before, the predictions, performance decay on feedback labels), lets
``retrain_decision`` judge served skew and decay, and hands the decision to
``trigger_pipeline``, which starts a run of the compiled retraining pipeline
(``retrain_pipeline``, e.g. ``compiled/kubeflow/continuous_training.yaml``) on Kubeflow or
Vertex AI when it says retrain, and records that it did not otherwise. Schedule it with
``kfpkit schedule monitoring --cron ...``: its parameters are fixed, its window moves with
the run's time.
"""

from kfp import dsl

from kfpkit.components import ResolveModelOp, RetrainDecisionOp, TriggerPipelineOp
from kfpkit.pipelines import defaults
from kfpkit.pipelines.model_chain import (
    monitor_served_traffic,
    outcome_recorder,
    validation_thresholds,
)

PIPELINE_NAME = "kfpkit-monitoring"


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Monitoring of the served model: the last window of served traffic against "
    "the production model's training data and the window before (skew, drift, predictions, "
    "performance decay on feedback labels); served skew or decay beyond thresholds starts a "
    "run of the retraining pipeline on Kubeflow or Vertex AI.",
)
def monitoring(
    serving_logs: str,
    retrain_pipeline: str,
    window_hours: float = 24.0,
    end: str = "",
    model_name: str = defaults.MODEL_NAME,
    registry_backend: str = defaults.REGISTRY_BACKEND,
    registry_uri: str = "",
    project: str = "",
    registry_location: str = defaults.REGISTRY_LOCATION,
    registry_server_address: str = "",
    categorical_drift_threshold: float = defaults.WINDOW_THRESHOLD,
    numeric_drift_threshold: float = defaults.WINDOW_THRESHOLD,
    drift_thresholds: dict = {},  # noqa: B006 - KFP needs a literal default
    categorical_skew_threshold: float = defaults.WINDOW_THRESHOLD,
    numeric_skew_threshold: float = defaults.WINDOW_THRESHOLD,
    skew_thresholds: dict = {},  # noqa: B006
    metric: str = "auc",
    max_decay: float = 0.02,
    min_labelled_rows: int = 100,
    retrain_on_skew: bool = True,
    ignored_features: list = defaults.NOT_COMPARED_FEATURES,
    bigquery_endpoint: str = "",
    retrain_target: str = "kubeflow",
    retrain_parameters: dict = {},  # noqa: B006
    retrain_run_name: str = "",
    kfp_host: str = "",
    kfp_namespace: str = "",
    kfp_experiment: str = "",
    vertex_location: str = "us-central1",
    vertex_pipeline_root: str = "",
    service_account: str = "",
):
    """Monitoring pipeline (one window of served traffic a run).

    Args:
        serving_logs: The served traffic: a log folder (``<log_dir>/<model_name>``),
            ``gs://`` folder, or ``bq://project.dataset.table`` (Vertex AI request-response
            logging).
        retrain_pipeline: The compiled pipeline to start when the decision is to retrain
            (a path in the step's container or a ``gs://`` URI).
        window_hours: The window: the hours before ``end``; the window before it is the
            drift baseline.
        end: End of the window (ISO 8601); "": the run's time (schedules).
        model_name: The registered model whose ``champion`` serves.
        registry_backend: ``mlflow``, ``vertex`` or ``kubeflow`` (as register_model's).
        registry_uri: mlflow: the registry's path or URI.
        project: vertex: the Google Cloud project (registry and the retraining run).
        registry_location: vertex: the registry's region.
        registry_server_address: kubeflow: the Model Registry's address.
        categorical_drift_threshold: L-infinity drift threshold of categorical features.
        numeric_drift_threshold: Jensen-Shannon drift threshold of numeric features and of
            the predictions.
        drift_thresholds: Feature -> drift threshold overriding the defaults.
        categorical_skew_threshold: As the drift one, against the training data.
        numeric_skew_threshold: As the drift one, against the training data.
        skew_thresholds: Feature -> skew threshold overriding the defaults.
        metric: ``auc`` or ``accuracy``: the metric whose decay is judged against the
            champion's evaluation.
        max_decay: Retrain when ``metric`` on feedback labels fell more than this.
        min_labelled_rows: Fewer labelled rows: no decay is judged.
        retrain_on_skew: Whether served skew over threshold retrains.
        ignored_features: Features never counted by the decision.
        bigquery_endpoint: BigQuery endpoint for a ``bq://`` source (the emulator).
        retrain_target: ``kubeflow`` or ``vertex``: where the retraining run starts.
        retrain_parameters: The retraining run's parameters.
        retrain_run_name: Prefix of the retraining run's name (default its pipeline's).
        kfp_host: Kubeflow: the KFP API (default: in-cluster).
        kfp_namespace: Kubeflow, multi-user: the profile namespace.
        kfp_experiment: Kubeflow: the run's experiment.
        vertex_location: Vertex AI: the region of the retraining run.
        vertex_pipeline_root: Vertex AI: the retraining run's ``gs://`` pipeline root.
        service_account: The retraining run's service account.
    """
    parameters = locals()  # the steps take this pipeline's parameters by name (model_chain)
    with dsl.ExitHandler(outcome_recorder(PIPELINE_NAME), name="monitoring"):
        champion = ResolveModelOp(
            model_name=model_name,
            backend=registry_backend,
            registry_uri=registry_uri,
            project=project,
            location=registry_location,
            server_address=registry_server_address,
        )
        champion.set_display_name("resolve-champion")
        champion.set_caching_options(False)  # the registry changes under one name

        # nothing serves without a champion: nothing to monitor, nothing to trigger
        with dsl.If(champion.outputs["found"] == True, name="champion-found"):  # noqa: E712
            training = dsl.importer(
                artifact_uri=champion.outputs["statistics_uri"], artifact_class=dsl.Artifact
            )
            training.set_display_name("training-statistics")
            served = monitor_served_traffic(
                logs=serving_logs,
                start="",
                end=end,
                window_hours=window_hours,
                training_statistics=training.output,
                previous_statistics=None,
                reference_metrics=champion.outputs["model_version"],
                metric=metric,
                max_decay=max_decay,
                min_labelled_rows=min_labelled_rows,
                bigquery_endpoint=bigquery_endpoint,
                thresholds=validation_thresholds(parameters),
            )
            # no window state: served skew and decay are the reasons
            decision = RetrainDecisionOp(
                monitoring=served.outputs["monitoring"],
                retrain_on_skew=retrain_on_skew,
                ignored_features=ignored_features,
            )
            decision.set_display_name("decide")
            # always runs: a run that did not retrain records why it started nothing
            trigger = TriggerPipelineOp(
                pipeline_spec_uri=retrain_pipeline,
                target=retrain_target,
                parameters=retrain_parameters,
                run_name=retrain_run_name,
                enabled=decision.outputs["retrain"],
                reason="monitoring: served skew or performance decay (see the decision)",
                host=kfp_host,
                namespace=kfp_namespace,
                experiment=kfp_experiment,
                project=project,
                location=vertex_location,
                pipeline_root=vertex_pipeline_root,
                service_account=service_account,
            )
            trigger.set_display_name("trigger-retraining")
            trigger.set_caching_options(False)  # starts a run outside the pipeline
