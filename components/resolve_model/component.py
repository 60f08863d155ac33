"""KFP definition of resolve_model: a thin container component around its launcher."""

from kfp import dsl

from kfpkit import images
from kfpkit.registry.base import CHAMPION


@dsl.container_component
def resolve_model(
    model_name: str,
    model_version: dsl.Output[dsl.Artifact],
    found: dsl.OutputPath(bool),  # type: ignore[valid-type]  # kfp's own idiom
    model_uri: dsl.OutputPath(str),  # type: ignore[valid-type]
    created_at: dsl.OutputPath(str),  # type: ignore[valid-type]
    age_days: dsl.OutputPath(float),  # type: ignore[valid-type]
    statistics_uri: dsl.OutputPath(str),  # type: ignore[valid-type]
    alias: str = CHAMPION,
    backend: str = "mlflow",
    registry_uri: str = "",
    project: str = "",
    location: str = "us-central1",
    api_endpoint: str = "",
    server_address: str = "",
):
    """Finds the model version that holds an alias (``champion``: the model in production).

    For continuous training: where the production model is, how old it is, and what it was
    trained on (its training statistics are the baseline for drift). No version under the
    alias (a first run, or a model never registered) is not an error: ``found`` is false,
    the URIs are empty and ``age_days`` is -1.

    Args:
        model_name: The registered model's name.
        alias: The alias to resolve.
        backend: ``mlflow``, ``vertex`` or ``kubeflow`` (as register_model's).
        registry_uri: mlflow: as register_model's (the same path or URI).
        project: vertex: the Google Cloud project.
        location: vertex: the region.
        api_endpoint: vertex: an API endpoint override (REST).
        server_address: kubeflow: the Model Registry's REST address.

    Returns:
        model_version: Metadata ``found`` and, when found, ``name``, ``version``, ``uri``,
            ``aliases``, ``created_at``, ``lineage``, ``metrics``, ``backend``,
            ``resource_name``, ``age_days``; the same in ``model_version.json``.
        found: Whether a version holds the alias.
        model_uri: The version's model URI ("" when none).
        created_at: When it was registered, ISO 8601 UTC ("" when none).
        age_days: Its age in days at this step (-1 when none).
        statistics_uri: Its training statistics' URI from its lineage ("" when none).
    """
    return dsl.ContainerSpec(
        image=images.component_image(__name__),
        command=["python3", "-m", "kfpkit.components.resolve_model.launcher"],
        args=["--executor_input", "{{$}}"],
    )
