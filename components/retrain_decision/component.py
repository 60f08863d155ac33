"""KFP definition of retrain_decision: a thin container component around its launcher."""

from kfp import dsl

from kfpkit import images

# the defaults are the runtime's own (one place), not restated here
from kfpkit.components.retrain_decision.decision import Policy


@dsl.container_component
def retrain_decision(
    decision: dsl.Output[dsl.Artifact],
    retrain: dsl.OutputPath(bool),  # type: ignore[valid-type]  # kfp's own idiom
    reasons: dsl.OutputPath(list),  # type: ignore[valid-type]
    anomalies: dsl.Input[dsl.Artifact] = None,
    state: dsl.Input[dsl.Artifact] = None,
    monitoring: dsl.Input[dsl.Artifact] = None,
    max_model_age_windows: int = Policy.max_model_age_windows,
    max_model_age_days: float = Policy.max_model_age_days,
    retrain_on_skew: bool = Policy.retrain_on_skew,
    ignored_features: list = list(Policy.ignored_features),  # noqa: B006, B008 - KFP takes a list
):
    """Decides whether a continuous-training run retrains, and records why (or why not).

    Reads the distances ``tfdv_validate`` measured (drift: the new window against the
    previous one; skew: against the production model's training data) with their thresholds,
    and the window state (``load_window_state``). Retrains when no model is in production,
    when any counted distance is over its threshold, or when the production model reached a
    maximum age; otherwise the decision says why not (the largest distances against their
    thresholds, the model's age against the limits). A re-run of a window never retrains
    when a model was already trained on it (the production model's window or an earlier one,
    or a window an earlier run registered a version from, blessed or not; a run that failed
    before registering created none, and its window decides afresh): the reasons say what
    would have retrained it. With ``monitoring`` (monitor_serving's,
    a step that always runs, so no ``dsl.OneOf`` is needed on any platform) served skew from
    the training data and performance decay on feedback labels are reasons too. Branch on
    ``retrain`` with ``dsl.If``.

    Args:
        anomalies: ``tfdv_validate``'s anomalies (``anomalies.pbtxt``, its drift/skew
            measurements); absent: no data distances.
        state: ``load_window_state``'s state; absent (a monitoring pipeline without a
            state folder): no production model, age or previous window is known, and only
            the distances and the served traffic count.
        monitoring: ``monitor_serving``'s monitoring of the served traffic: served skew
            over threshold (with ``retrain_on_skew``) and performance decay beyond its
            ``max_decay`` retrain; absent, empty or without traffic it changes nothing.
        max_model_age_windows: Retrain when the production model was trained this many
            windows ago (0: never for age).
        max_model_age_days: Retrain when the production model was pushed this many days ago
            (wall clock; 0: never for age).
        retrain_on_skew: Count skew against the production model's training data.
        ignored_features: Never count these features (default none; e.g. an id and the
            window's own column, which differ between windows by construction); give them a
            threshold of 0 in ``tfdv_validate`` too.

    Returns:
        decision: ``decision.json`` (``window``, ``retrain``, ``reasons``, ``drifted`` and
            ``skewed`` (feature, measure, distance, threshold), every counted measurement,
            the model's age, ``served``: rows, skewed and measured served features,
            performance, ``window_registered_before``: the version an earlier run of the
            window registered, "" when none); the same in the artifact's metadata.
        retrain: True when the run should retrain.
        reasons: The reasons, one line each.

    Limits:
        A distance without its baseline (the first window has no previous window; no
        production model, no skew) is not counted, whatever its value.
    """
    return dsl.ContainerSpec(
        image=images.component_image(__name__),
        command=["python3", "-m", "kfpkit.components.retrain_decision.launcher"],
        args=["--executor_input", "{{$}}"],
    )
