"""KFP definitions of load_window_state and save_window_state: thin container components."""

from kfp import dsl

from kfpkit import images


@dsl.container_component
def load_window_state(
    state_uri: str,
    window: str,
    current_statistics: dsl.Input[dsl.Artifact],
    previous_statistics: dsl.Output[dsl.Artifact],
    production_statistics: dsl.Output[dsl.Artifact],
    state: dsl.Output[dsl.Artifact],
):
    """Reads what a continuous-training run of ``window`` compares the new data with.

    The state folder (``state_uri``) holds each recorded window's statistics and decision and
    the model in production (see ``save_window_state``). Window labels sort in time order
    (``2016``, ``2016-01-31``); the previous window is the greatest recorded label below
    ``window``; a re-run of a window ignores that window's own record.

    Args:
        state_uri: The state folder (a path under the pipeline root locally, ``gs://...`` on
            a cluster, read through KFP's ``/gcs/`` mount). Empty on the first run is fine.
        window: This run's window label (letters, digits, ``_ . -``).
        current_statistics: Statistics of the new window (``FeatureStats.pb``): copied into
            a baseline output that has nothing to compare with, so the comparison step always
            has an input; such an output has metadata ``fallback: true``.

    Returns:
        previous_statistics: The previous window's statistics (the drift baseline).
        production_statistics: Training statistics of the model in production (the skew
            baseline).
        state: ``state.json``: ``window``, ``previous_window`` (empty on the first window),
            ``recorded_windows``, ``production`` (``window``, ``model_uri``, ``version``,
            ``promoted_at``; null when none), ``windows_since_production``; the same in the
            artifact's metadata.

    Limits:
        The state folder is this pipeline's own record, not a model registry: the model in
        production is the one this pipeline last pushed. Runs of one pipeline must not
        overlap (a schedule with ``max_concurrency`` 1).
    """
    return dsl.ContainerSpec(
        image=images.image("core"),
        command=["python3", "-m", "kfpkit.components.window_state.load_launcher"],
        args=["--executor_input", "{{$}}"],
    )


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
        image=images.image("core"),
        command=["python3", "-m", "kfpkit.components.window_state.save_launcher"],
        args=["--executor_input", "{{$}}"],
    )
