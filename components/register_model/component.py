"""KFP definition of register_model: a thin container component around its launcher."""

from kfp import dsl

from kfpkit import images


@dsl.container_component
def register_model(
    model: dsl.Input[dsl.Model],
    metrics: dsl.Input[dsl.Metrics],
    model_name: str,
    registered_model: dsl.Output[dsl.Artifact],
    registered_version: dsl.OutputPath(str),  # type: ignore[valid-type]  # kfp's own idiom
    blessed: bool = False,
    train_data: dsl.Input[dsl.Dataset] = None,
    validation_data: dsl.Input[dsl.Dataset] = None,
    statistics: dsl.Input[dsl.Artifact] = None,
    schema: dsl.Input[dsl.Artifact] = None,
    explanation: dsl.Input[dsl.Artifact] = None,
    backend: str = "mlflow",
    registry_uri: str = "",
    project: str = "",
    location: str = "us-central1",
    serving_image: str = "",
    api_endpoint: str = "",
    server_address: str = "",
    pipeline_run: str = "",
    pipeline_run_id: str = "",
):
    """Registers a model as a new version in a model registry, with its lineage and metrics.

    The version points at the model where it is (no copy): publish_model's published
    version folder, or the highest ``<version>/`` folder of train's model. A blessed model
    gets the alias ``champion`` (the previous champion loses it); one that was not blessed is
    registered too, as the ``challenger``, so that every evaluated model stays on record.
    Lineage on every version: the pipeline run (name and id), the source model, the
    evaluation metrics artifact, the train/validation data (and BigQuery table), training
    statistics and schema when given, and whether it was blessed; the overall metrics of
    ``metrics`` (per-slice metrics stay in that artifact). A restarted step (same model, same
    pipeline run) finds the version it registered instead of registering it twice.

    Args:
        model: The model: publish_model's ``published_model`` or train's ``model``.
        metrics: evaluate's ``metrics``.
        model_name: The registered model's name: letters, digits, ``_ . -`` (Vertex AI:
            lowercase letters, digits, ``_ -``, at most 63, starting with a letter).
        blessed: evaluate's ``blessed``: ``champion`` when true, ``challenger`` when not.
        train_data: Optional: the training split (lineage).
        validation_data: Optional: the validation split (lineage).
        statistics: Optional: the training statistics (lineage; what drift is measured from).
        schema: Optional: the schema the model was trained with (lineage).
        explanation: Optional: evaluate's ``explanation``. vertex: the version is uploaded
            with Vertex AI's ``explanationSpec`` (the same method, settings and baseline as
            evaluate's attributions), so an endpoint serving it answers ``:explain``; other
            backends ignore it. An evaluation without attributions adds no spec.
        backend: ``mlflow`` (MLflow's model registry; SQLite at ``registry_uri``, no server),
            ``vertex`` (Vertex AI Model Registry) or ``kubeflow`` (Kubeflow Model Registry).
        registry_uri: mlflow: a path (SQLite there, e.g. ``<pipeline root>/registry/mlflow.db``
            for local runs), a database URI or an MLflow server's ``http(s)://`` URL.
        project: vertex: the Google Cloud project.
        location: vertex: the region.
        serving_image: vertex: the serving container of the uploaded version (default
            Vertex's prebuilt TensorFlow 2 CPU image).
        api_endpoint: vertex: an API endpoint override (REST), empty for Vertex AI's own.
        server_address: kubeflow: ``http(s)://host:port`` of the Model Registry's REST API.
        pipeline_run: ``dsl.PIPELINE_JOB_NAME_PLACEHOLDER`` (lineage).
        pipeline_run_id: ``dsl.PIPELINE_JOB_ID_PLACEHOLDER`` (lineage; with the model's URI,
            what makes a re-registration find its version).

    Returns:
        registered_model: Metadata ``name``, ``version``, ``uri``, ``aliases``,
            ``created_at``, ``lineage``, ``metrics``, ``backend``, ``resource_name``; the same
            in ``model_version.json``.
        registered_version: The version (``1``, ``2``, ...).

    Raises (the step fails with exit code 2 and writes no outputs):
        An invalid model name or setting, a model without a SavedModel version folder,
        lineage values over 5000 characters. Registry failures exit 1 after bounded retries
        of transient errors.
    """
    return dsl.ContainerSpec(
        image=images.component_image(__name__),
        command=["python3", "-m", "kfpkit.components.register_model.launcher"],
        args=["--executor_input", "{{$}}"],
    )
