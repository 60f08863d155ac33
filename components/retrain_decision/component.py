"""KFP definition of retrain_decision: a thin container component around its launcher."""

from kfp import dsl

from kfpkit import images


@dsl.container_component
def retrain_decision(
    anomalies: dsl.Input[dsl.Artifact],
    state: dsl.Input[dsl.Artifact],
    decision: dsl.Output[dsl.Artifact],
    retrain: dsl.OutputPath(bool),  # type: ignore[valid-type]  # kfp's own idiom
    reasons: dsl.OutputPath(list),  # type: ignore[valid-type]
    max_model_age_windows: int = 0,
    max_model_age_days: float = 0.0,
    retrain_on_skew: bool = True,
    ignored_features: list = ["id", "year"],  # noqa: B006 - KFP needs a literal default
):
    """Decides whether a continuous-training run retrains, and records why (or why not).

    Reads the distances ``tfdv_validate`` measured (drift: the new window against the
    previous one; skew: against the production model's training data) with their thresholds,
    and the window state (``load_window_state``). Retrains when no model is in production,
    when any counted distance is over its threshold, or when the production model reached a
    maximum age; otherwise the decision says why not (the largest distances against their
    thresholds, the model's age against the limits). Branch on ``retrain`` with ``dsl.If``.

    Args:
        anomalies: ``tfdv_validate``'s anomalies (``anomalies.pbtxt``, its drift/skew
            measurements).
        state: ``load_window_state``'s state.
        max_model_age_windows: Retrain when the production model was trained this many
            windows ago (0: never for age).
        max_model_age_days: Retrain when the production model was pushed this many days ago
            (wall clock; 0: never for age).
        retrain_on_skew: Count skew against the production model's training data.
        ignored_features: Never count these features (``id`` and ``year`` differ between
            windows by construction); give them a threshold of 0 in ``tfdv_validate`` too.

    Returns:
        decision: ``decision.json`` (``window``, ``retrain``, ``reasons``, ``drifted`` and
            ``skewed`` (feature, measure, distance, threshold), every counted measurement,
            the model's age); the same in the artifact's metadata.
        retrain: True when the run should retrain.
        reasons: The reasons, one line each.

    Limits:
        A distance without its baseline (the first window has no previous window; no
        production model, no skew) is not counted, whatever its value.
    """
    return dsl.ContainerSpec(
        image=images.image("tfdv"),
        command=["python3", "-m", "kfpkit.components.retrain_decision.launcher"],
        args=["--executor_input", "{{$}}"],
    )
