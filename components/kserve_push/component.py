"""KFP definition of kserve_push: a thin container component around its launcher."""

from kfp import dsl

from kfpkit import images
from kfpkit.components.kserve_push import defaults


@dsl.container_component
def kserve_push(
    model_name: str,
    deployment: dsl.Output[dsl.Artifact],
    infra_validation: dsl.Output[dsl.Metrics],
    summary: dsl.Output[dsl.Markdown],
    endpoint_url: dsl.OutputPath(str),  # type: ignore[valid-type]  # kfp's own idiom
    model: dsl.Input[dsl.Model] = None,
    test_data: dsl.Input[dsl.Dataset] = None,
    action: str = defaults.ACTION,
    backend: str = defaults.BACKEND,
    namespace: str = defaults.NAMESPACE,
    storage_uri: str = "",
    deployment_mode: str = defaults.DEPLOYMENT_MODE,
    runtime: str = defaults.RUNTIME,
    runtime_version: str = "",
    canary_traffic_percent: int = defaults.CANARY_TRAFFIC_PERCENT,
    mirror_percent: float = defaults.MIRROR_PERCENT,
    cpu: str = defaults.CPU,
    memory: str = defaults.MEMORY,
    gpu: int = defaults.GPU,
    min_replicas: int = defaults.MIN_REPLICAS,
    max_replicas: int = defaults.MAX_REPLICAS,
    scale_target: int = defaults.SCALE_TARGET,
    scale_metric: str = "",
    service_account: str = "",
    logger_url: str = "",
    logger_mode: str = defaults.LOGGER_MODE,
    timeout_seconds: float = defaults.TIMEOUT_SECONDS,
    infra_validation_rows: int = defaults.INFRA_VALIDATION_ROWS,
    kubeconfig: str = "",
    experiment_decision: str = "",
    variant_weights: dict = {},  # noqa: B006 - KFP needs a literal default
    sticky: bool = defaults.STICKY,
    served_logs: str = "",
    bandit_floor: float = defaults.BANDIT_FLOOR,
):
    """Proves a SavedModel serves on KServe's own model server, then pushes it to KServe.

    Infra validation first, for every action that deploys a model (apply, canary, shadow):
    the step serves ``model`` with KServe's Python ``ModelServer`` on 127.0.0.1, sends real
    V1 ``:predict`` and V2 ``/infer`` requests built from the first ``infra_validation_rows``
    rows of ``test_data`` (one row a request), checks every answer against the model's own
    in-process prediction (within 1e-5) and records p50/p99 latency. A model that fails is
    never deployed; the step fails and says why.

    Backends: ``local`` (default; for ``make run``) stops after validation and says how to
    serve the model (``kfpkit serve``): a pipeline step cannot keep a server running.
    ``kserve`` writes an ``serving.kserve.io/v1beta1`` InferenceService (built with the
    kserve SDK's models) in ``namespace`` and waits until it is Ready for the new
    generation (``observedGeneration``), within ``timeout_seconds``; when it fails or times
    out it is rolled back (previous spec; a first deployment is deleted) and the step fails
    with KServe's reason. SIGTERM rolls back too.

    Actions (kserve backend): ``apply`` (all traffic to the new model), ``canary``
    (``canary_traffic_percent`` % to it), ``promote`` (all traffic to the canary),
    ``rollback`` (all traffic back), ``shadow`` (the model as ``<model_name>-shadow`` plus
    an Istio VirtualService mirroring ``mirror_percent`` % of production traffic to it; its
    answers never reach clients), ``delete``. In ``Serverless`` mode canaries use
    ``canaryTrafficPercent``; in ``RawDeployment`` mode, which ignores that field, the
    ``spec.canary`` list. Refused: switching a running service's mode, shadow in
    RawDeployment mode (no Istio VirtualService there), touching an InferenceService kfpkit
    did not create.

    Online experiments (kserve backend): ``experiment_decision`` (``online_experiment``'s
    ``decision_value``) replaces ``action``: promote -> ``promote``, rollback ->
    ``rollback``, continue -> nothing changes (the summary says so). ``experiment`` puts
    the InferenceServices named in ``variant_weights`` (each deployed by an earlier
    ``apply``) behind an InferenceGraph ``<model_name>`` whose root ``Splitter`` sends each
    its share (integer percents summing to 100); with ``sticky``, an Istio VirtualService
    ``<model_name>-ab`` sends a request carrying ``x-kfpkit-variant: <variant>`` to that
    variant (the sticky A/B assignment, computed by the caller with
    ``kfpkit.serving.routing.assign_variant``). ``bandit`` rewrites the Splitter's weights to
    Thompson-sampling shares computed from the feedback in ``served_logs`` (each variant
    keeps ``bandit_floor`` at least); schedule it (e.g. hourly) to move traffic.

    Limits: runtime ``tensorflow`` only so far; the cluster path was tested against a real
    kube-apiserver with the InferenceService CRD generated from the SDK's models, the test
    playing KServe's controller, not against a cluster running KServe (see README).

    Args:
        model_name: The InferenceService (and local model) name: a DNS-1035 label of at
            most 45 characters.
        model: A Model with ``<version>/saved_model.pb`` folders (train or publish_model's
            output; for publish_model's the serving directory holding the versions is used).
            Not needed for promote, rollback, delete.
        test_data: Rows to infra-validate with (the test split). Needed for apply, canary,
            shadow.
        action: apply, canary, promote, rollback, shadow, delete, experiment or bandit.
        backend: ``local`` or ``kserve``.
        namespace: Kubernetes namespace of the InferenceService.
        storage_uri: Where KServe reads the model (gs://, s3://, pvc://); default: the
            model artifact's URI.
        deployment_mode: ``Serverless`` or ``RawDeployment`` (written as the
            ``serving.kserve.io/deploymentMode`` annotation).
        runtime: The model format (``tensorflow``).
        runtime_version: The serving runtime's image version; empty: KServe's default.
        canary_traffic_percent: Share of traffic for a canary, 1-99.
        mirror_percent: Share of production traffic mirrored to a shadow, (0, 100].
        cpu: CPU request and limit (a Kubernetes quantity).
        memory: Memory request and limit.
        gpu: NVIDIA GPUs (limit), 0 for none.
        min_replicas: Minimum replicas (0 allows scale to zero in Serverless mode).
        max_replicas: Maximum replicas.
        scale_target: Autoscaling target (per ``scale_metric``); 0: KServe's default.
        scale_metric: concurrency, rps, cpu or memory; empty: KServe's default.
        service_account: Service account of the predictor (storage credentials).
        logger_url: Request logging: KServe's logger sends CloudEvents here (http/https).
        logger_mode: all, request or response.
        timeout_seconds: How long to wait for Ready.
        infra_validation_rows: Test rows sent in the infra validation.
        kubeconfig: A kubeconfig file; empty: the pod's service account (in a cluster).
        experiment_decision: ``online_experiment``'s decision (promote, rollback, continue);
            empty: do ``action``.
        variant_weights: ``experiment``: InferenceService name -> weight (any positive
            scale; written as percents).
        sticky: ``experiment``: also route by the ``x-kfpkit-variant`` header.
        served_logs: ``bandit``: the log folder (or gs:// folder) of the experiment's
            traffic and feedback (``kfpkit serve-sink``'s, for ``<model_name>``).
        bandit_floor: ``bandit``: the least share of traffic each variant keeps.

    Returns:
        deployment: Metadata ``endpoint_url``, ``revision``, ``traffic`` (JSON),
            ``objects`` (JSON), ``serve_command`` (local), ``infra_validation`` (JSON).
        infra_validation: p50/p99 latency (ms) per protocol, maximum difference from the
            in-process predictions, rows, server start time.
        summary: Markdown: validation table, endpoint, revision, traffic split.
        endpoint_url: The endpoint (cluster URL, or the local server's V1 URL).

    Raises (the step fails and writes no outputs):
        Bad settings (named), an action the backend or mode cannot do, a model that fails
        infra validation, an InferenceService that does not become ready.
    """
    return dsl.ContainerSpec(
        image=images.component_image(__name__),
        command=["python3", "-m", "kfpkit.components.kserve_push.launcher"],
        args=["--executor_input", "{{$}}"],
    )
