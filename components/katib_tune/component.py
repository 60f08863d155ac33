"""KFP definition of katib_tune: a thin container component around its launcher."""

from typing import Optional

from kfp import dsl

from kfpkit import images

# the defaults are the runtime's own (one place), not restated here
from kfpkit.components.katib_tune.spec import (
    DEFAULT_BACKEND,
    DEFAULT_NAMESPACE,
    POLL_INTERVAL,
    TIMEOUT,
    TuneSpec,
)


@dsl.container_component
def katib_tune(
    train_data: dsl.Input[dsl.Dataset],
    validation_data: dsl.Input[dsl.Dataset],
    search_space: list,
    best_hyperparameters: dsl.OutputPath(dict),  # type: ignore[valid-type]  # kfp's own idiom
    metrics: dsl.Output[dsl.Metrics],
    report: dsl.Output[dsl.HTML],
    label_column: str,
    schema: dsl.Input[dsl.Artifact] = None,
    objective_metric: str = TuneSpec.objective_metric,
    objective_type: str = TuneSpec.objective_type,
    objective_goal: Optional[float] = None,  # noqa: UP045 - KFP reads Optional, not "| None"
    additional_metrics: list = [],  # noqa: B006 - KFP needs a literal default
    algorithm: str = TuneSpec.algorithm,
    algorithm_settings: dict = {},  # noqa: B006
    early_stopping: str = "",
    early_stopping_settings: dict = {},  # noqa: B006
    max_trial_count: int = TuneSpec.max_trial_count,
    parallel_trial_count: int = TuneSpec.parallel_trial_count,
    max_failed_trial_count: int = TuneSpec.max_failed_trial_count,
    fixed_hyperparameters: dict = {},  # noqa: B006
    feature_columns: list = [],  # noqa: B006
    exclude_columns: list = [],  # noqa: B006
    backend: str = DEFAULT_BACKEND,
    namespace: str = DEFAULT_NAMESPACE,
    service_account: str = "",
    trial_image: str = images.image("train"),
    poll_interval: float = POLL_INTERVAL,
    timeout: float = TIMEOUT,
    seed: int = 0,
):
    """Tunes ``train``'s hyperparameters: a Katib Experiment on the cluster, or Optuna here.

    One spec, two backends. ``backend="katib"`` creates a ``kubeflow.org/v1beta1``
    Experiment (checked first against the rules of Katib's admission webhook) whose trials
    are batch Jobs running the trainer of the train image on the splits' URIs; the step waits
    for it and reads ``status.currentOptimalTrial``. ``backend="local"`` runs the same search
    with Optuna and the real trainer in this step's container, ``parallel_trial_count``
    worker processes at a time. The experiment name derives from the pipeline run and task:
    a restarted step resumes its experiment, and stopping the run deletes it.

    Args:
        train_data: Parquet split to train on (as ``train`` takes it). Katib trials read it
            from its URI (``gs://``, ``s3://`` or a path on a volume they mount).
        validation_data: Parquet split the objective is measured on.
        search_space: Parameters to tune, each ``{"name": <train hyperparameter>, "type":
            "double"|"int"|"categorical"|"discrete", "min", "max", "step" (optional),
            "log" (optional, needs min > 0, no step), "values" (categorical/discrete)}``.
        schema: Optional TFDV schema, passed to every trial as ``train`` takes it.
        objective_metric: One of the trainer's printed metrics: ``validation-auc``,
            ``validation-accuracy``, ``validation-loss``, ``train-accuracy``, ``train-loss``.
            A trial's value is that of its exported (best-validation-loss) epoch.
        objective_type: ``maximize`` or ``minimize``.
        objective_goal: Stop once a trial reaches this value (optional).
        additional_metrics: Other printed metrics to record per trial.
        algorithm: ``random``, ``grid``, ``bayesianoptimization``, ``tpe``,
            ``multivariate-tpe``, ``cmaes`` or ``sobol``. Locally: Optuna's samplers (see
            README; ``cmaes`` and ``sobol`` need packages the image lacks and are refused
            locally, ``bayesianoptimization`` uses multivariate TPE without torch).
        algorithm_settings: Settings of Katib's suggestion service for the algorithm, e.g.
            ``{"random_state": 1}``; unknown names are an error.
        early_stopping: ``""`` or ``medianstop`` (Optuna's MedianPruner locally, fed per epoch).
        early_stopping_settings: medianstop's ``min_trials_required`` and ``start_step``.
        max_trial_count: Trials to run. 0: no tuning, ``best_hyperparameters`` is
            ``fixed_hyperparameters`` at once (no TensorFlow import, no trial).
        parallel_trial_count: Trials at a time (at most max_trial_count).
        max_failed_trial_count: More failed trials than this fail the step.
        fixed_hyperparameters: ``train`` hyperparameters every trial uses (not tuned).
        label_column: As ``train``'s.
        feature_columns: As ``train``'s.
        exclude_columns: As ``train``'s.
        backend: ``local`` or ``katib``.
        namespace: Katib: the Experiment's namespace (a valid Kubernetes name).
        service_account: Katib: the trials' service account (it needs read access to the
            splits' bucket); empty: the namespace's default.
        trial_image: Katib: the trials' image (the train image of this kfpkit version).
        poll_interval: Katib: seconds between status reads.
        timeout: Seconds the step waits for the tuning as a whole; then the experiment is
            deleted (Katib) or the trials stopped (local) and the step fails.
        seed: Local sampler seed (Katib: set ``random_state`` in algorithm_settings).

    Returns:
        best_hyperparameters: The JSON dict ``train`` takes: fixed_hyperparameters plus the
            best trial's values.
        metrics: Best objective, trial counts by state (succeeded, pruned, failed), the best
            trial and its parameters, the backend.
        report: HTML page: every trial's parameters, objective and state, the best-so-far
            curve (inline SVG, no script, renders offline).

    Raises (the step fails with exit code 2 and writes no outputs, before any trial or
    Experiment is created):
        An unknown algorithm, setting or metric name; an empty search space; min > max; a
        log scale over non-positive values; parallel_trial_count or max_failed_trial_count
        above max_trial_count; a grid over a continuous range without a step; a value
        ``train`` refuses; a namespace or service account that is not a Kubernetes name.
        When more than max_failed_trial_count trials fail (or all do), the step fails
        (exit 1) with the trials' errors or Katib's reason.
    """
    return dsl.ContainerSpec(
        image=images.component_image(__name__),
        command=["python3", "-m", "kfpkit.components.katib_tune.launcher"],
        args=["--executor_input", "{{$}}"],
    )
