"""KFP definition of trigger_pipeline: a thin container component around its launcher."""

from kfp import dsl

from kfpkit import images

# the defaults are the runtime's own (one place), not restated here
from kfpkit.components.trigger_pipeline.trigger import Target


@dsl.container_component
def trigger_pipeline(
    pipeline_spec_uri: str,
    triggered_run: dsl.Output[dsl.Artifact],
    triggered: dsl.OutputPath(bool),  # type: ignore[valid-type]  # kfp's own idiom
    run_id: dsl.OutputPath(str),  # type: ignore[valid-type]
    target: str = Target.kind,
    parameters: dict = {},  # noqa: B006 - KFP needs a literal default
    run_name: str = "",
    enabled: bool = True,
    reason: str = "",
    host: str = "",
    namespace: str = "",
    experiment: str = "",
    project: str = "",
    location: str = Target.location,
    api_endpoint: str = "",
    pipeline_root: str = "",
    service_account: str = "",
):
    """Starts a run of another compiled pipeline on Kubeflow Pipelines or Vertex AI: an
    event-triggered run (e.g. retraining after a monitoring alert).

    Idempotent: the run is named ``<run_name>-<hash of this step's identity>`` (inputs and
    output URIs, which name the calling run and task), so a restarted step finds the run
    its previous attempt started; every calling run starts its own. Wire a decision in with
    ``enabled`` / ``reason`` (or branch with ``dsl.If``); disabled, it starts nothing and
    says why.

    Args:
        pipeline_spec_uri: The compiled pipeline (YAML/JSON from ``kfpkit compile``): a path
            in the container or a ``gs://`` URI (read through the ``/gcs/`` mount).
        target: ``kubeflow`` (the v2beta1 REST API, plain HTTP) or ``vertex`` (a Vertex AI
            PipelineJob through its v1 REST API).
        parameters: The run's parameter values, checked against the pipeline's declared
            parameters (names and types) before anything is started.
        run_name: Prefix of the run's name (``[a-z][a-z0-9-]``, at most 50 characters);
            default the pipeline's name.
        enabled: False: start nothing (``triggered`` is False).
        reason: Why (from the decision): the Kubeflow run's description and in the outputs.
        host: Kubeflow: the KFP API (default ``$KF_PIPELINES_ENDPOINT``, else the in-cluster
            service ``ml-pipeline.kubeflow:8888``). The pod's KFP service-account token
            (``/var/run/secrets/kubeflow/pipelines/token``) or ``$KF_PIPELINES_TOKEN``
            authenticates.
        namespace: Kubeflow, multi-user: the profile namespace.
        experiment: Kubeflow: the run's experiment (created when missing); default KFP's.
        project: Vertex AI: the project (required).
        location: Vertex AI: the region.
        api_endpoint: Vertex AI: another API endpoint (tests, private endpoints).
        pipeline_root: Vertex AI: required ``gs://`` root; Kubeflow: optional.
        service_account: The run's service account.

    Returns:
        triggered_run: ``run.json`` (``triggered``, ``reason``, ``target``, ``run_name``,
            ``run_id``, ``created``, ``pipeline``, ``parameters``); the same in metadata.
        triggered: True when a run was started or found.
        run_id: The Kubeflow run id, or the Vertex AI job's resource name ("" if none).

    Limits:
        Starts the run and returns; it does not wait for the run to finish.
    """
    return dsl.ContainerSpec(
        image=images.component_image(__name__),
        command=["python3", "-m", "kfpkit.components.trigger_pipeline.launcher"],
        args=["--executor_input", "{{$}}"],
    )
