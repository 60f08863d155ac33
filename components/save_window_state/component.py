"""KFP definition of save_window_state: a thin container component around its launcher."""

from kfp import dsl

from kfpkit import images


@dsl.container_component
def save_window_state(
    state_uri: str,
    window: str,
    statistics: dsl.Input[dsl.Artifact],
    record: dsl.Output[dsl.Artifact],
    decision: dsl.Input[dsl.Artifact] = None,
    published_model: dsl.Input[dsl.Model] = None,
):
    """Records a window in the state folder, or the model now in production.

    With ``decision``: the window's statistics (the next window's drift baseline) and its
    ``decision.json``. With ``published_model`` (after a push): the model trained on this
    window becomes the production model, ``statistics`` its training statistics (the next
    windows' skew baseline). Files are written under temporary names and renamed into place;
    a restarted step writes them again.

    Args:
        state_uri: The state folder (see ``load_window_state``).
        window: This run's window label.
        statistics: Statistics of the window's train split (``FeatureStats.pb``).
        decision: ``retrain_decision``'s decision artifact.
        published_model: ``publish_model``'s output (metadata ``published_uri``, ``version``).

    Returns:
        record: Metadata ``recorded`` (``window`` or ``production``) and what was written.

    Raises (the step fails and writes no outputs):
        An invalid window label, a state URI that is a file, neither input given.
    """
    return dsl.ContainerSpec(
        image=images.component_image(__name__),
        command=["python3", "-m", "kfpkit.components.save_window_state.launcher"],
        args=["--executor_input", "{{$}}"],
    )
