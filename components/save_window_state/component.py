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
    registered_model: dsl.Input[dsl.Artifact] = None,
):
    """Records a window in the state folder, the model now in production, or the model
    version registered from the window.

    With ``decision``: the window's statistics (the next window's drift baseline) and its
    ``decision.json``. With ``published_model`` (after a push): the model trained on this
    window becomes the production model, ``statistics`` its training statistics (the next
    windows' skew baseline). With ``registered_model`` (after ``register_model``, blessed or
    not): the version registered from this window's data (``registration.json``), so a
    re-run of the window trains and registers nothing; a run that failed before registering
    wrote none, and its window trains again. Exactly one of the three is given. Files are
    written under temporary names and renamed into place; a restarted step writes them again
    (the registration record holds only the registry's answer: the same file).

    Args:
        state_uri: The state folder (see ``load_window_state``).
        window: This run's window label.
        statistics: Statistics of the window's train split (``FeatureStats.pb``).
        decision: ``retrain_decision``'s decision artifact.
        published_model: ``publish_model``'s output (metadata ``published_uri``, ``version``).
        registered_model: ``register_model``'s ``registered_model`` (metadata ``name``,
            ``version``, ``uri``, ``aliases``, ``created_at``).

    Returns:
        record: Metadata ``recorded`` (``window``, ``production`` or ``registration``) and
            what was written.

    Raises (the step fails and writes no outputs):
        An invalid window label, a state URI that is a file, not exactly one of
        ``decision``, ``published_model`` and ``registered_model`` given, a registered model
        without a version.
    """
    return dsl.ContainerSpec(
        image=images.component_image(__name__),
        command=["python3", "-m", "kfpkit.components.save_window_state.launcher"],
        args=["--executor_input", "{{$}}"],
    )
