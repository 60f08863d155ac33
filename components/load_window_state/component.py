"""KFP definition of load_window_state: a thin container component around its launcher."""

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
        window: This run's window label (letters, digits, ``_ . -``; a number without
            leading zeros).
        current_statistics: Statistics of the new window (``FeatureStats.pb``): copied into
            a baseline output that has nothing to compare with, so the comparison step always
            has an input; such an output has metadata ``fallback: true``.

    Returns:
        previous_statistics: The previous window's statistics (the drift baseline).
        production_statistics: Training statistics of the model in production (the skew
            baseline).
        state: ``state.json``: ``window``, ``previous_window`` (empty on the first window),
            ``recorded_windows``, ``production`` (``window``, ``model_uri``, ``version``,
            ``promoted_at``; null when none), ``windows_since_production``,
            ``window_registered_before`` (the model version an earlier run registered from
            this window's data, "" when none); the same in the artifact's metadata.

    Limits:
        The state folder is this pipeline's own record, not a model registry: the model in
        production is the one this pipeline last pushed. Runs of one pipeline must not
        overlap (a schedule with ``max_concurrency`` 1).
    """
    return dsl.ContainerSpec(
        image=images.component_image(__name__),
        command=["python3", "-m", "kfpkit.components.load_window_state.launcher"],
        args=["--executor_input", "{{$}}"],
    )
