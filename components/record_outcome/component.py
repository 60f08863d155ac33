"""KFP definition of record_outcome: the exit handler's step, a thin container component."""

from kfp import dsl

from kfpkit import images


@dsl.container_component
def record_outcome(
    status: dsl.PipelineTaskFinalStatus,
    outcome: dsl.Output[dsl.Artifact],
    pipeline_name: str = "",
    run_name: str = "",
):
    """Records how a pipeline run ended: succeeded, or failed and in which step.

    Use it as the exit task of ``dsl.ExitHandler``; it runs after the steps inside the
    handler, whether they succeeded or not, and never fails because a step did::

        outcome = record_outcome(pipeline_name=..., run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER)
        with dsl.ExitHandler(outcome):
            ...  # the pipeline's steps

    The failed steps are read from the error message of the handler's final status (Vertex
    AI and Kubeflow Pipelines list them there). When the message does not name them (local
    runs: kfp.local names only the handler's group), they are found from the run's own
    folder: a failed kfpkit step leaves a failure record (exit code and error) beside the
    executor output it never wrote.

    Args:
        status: Filled in by KFP: the final state of the steps inside the exit handler.
        pipeline_name: Recorded with the outcome.
        run_name: Recorded with the outcome (``dsl.PIPELINE_JOB_NAME_PLACEHOLDER``).

    Returns:
        outcome: ``outcome.json`` (``state``, ``succeeded``, ``failed_steps``,
            ``finished_steps``, ``step_errors`` (step -> error, from the failure records),
            ``error_message``, ``pipeline_name``, ``run_name``,
            ``recorded_at``); the same in the artifact's metadata.

    Limits:
        Supported wherever ``PipelineTaskFinalStatus`` is: Vertex AI Pipelines, Kubeflow
        Pipelines 2.5 and later, and kfp.local 2.17. A step that failed outside the run's
        folder (a cluster whose task folders are not under one run folder, and whose message
        names no task) is reported as failed with ``failed_steps`` empty and the message.
    """
    return dsl.ContainerSpec(
        image=images.component_image(__name__),
        command=["python3", "-m", "kfpkit.components.record_outcome.launcher"],
        args=["--executor_input", "{{$}}"],
    )
