"""KFP definition of tfdv_validate: a thin container component around its launcher."""

from kfp import dsl

from kfpkit import images


@dsl.container_component
def tfdv_validate(
    statistics: dsl.Input[dsl.Artifact],
    schema: dsl.Input[dsl.Artifact],
    anomalies: dsl.Output[dsl.Artifact],
    report: dsl.Output[dsl.HTML],
    metrics: dsl.Output[dsl.Metrics],
    valid: dsl.OutputPath(bool),  # type: ignore[valid-type]  # kfp's own idiom
    baseline_statistics: dsl.Input[dsl.Artifact] = None,
    serving_statistics: dsl.Input[dsl.Artifact] = None,
    default_categorical_drift_threshold: float = 0.0,
    default_numeric_drift_threshold: float = 0.0,
    drift_thresholds: dict = {},  # noqa: B006 - KFP needs a literal default
    default_categorical_skew_threshold: float = 0.0,
    default_numeric_skew_threshold: float = 0.0,
    skew_thresholds: dict = {},  # noqa: B006
    fail_on_anomalies: bool = False,
    environment: str = "",
):
    """Validates statistics against a schema; optionally drift against a baseline and skew
    against serving data. Branch on ``valid`` or fail the step on anomalies.

    Drift compares ``statistics`` with ``baseline_statistics`` (e.g. today's data with the
    training data); skew compares them with ``serving_statistics``. Categorical features
    (strings, and integers whose schema domain is categorical) use the L-infinity distance
    of value frequencies; numeric features use the Jensen-Shannon divergence of histograms.
    A threshold of 0 turns the comparison off. Only the ``All Examples`` slice is compared.

    Args:
        statistics: Statistics to validate (``tfdv_statistics``).
        schema: The schema to validate against (``tfdv_schema``).
        baseline_statistics: Statistics to measure drift against.
        serving_statistics: Serving statistics to measure training/serving skew against.
        default_categorical_drift_threshold: L-infinity drift threshold of every categorical
            feature.
        default_numeric_drift_threshold: Jensen-Shannon drift threshold of every numeric
            feature.
        drift_thresholds: Feature name -> drift threshold, overriding the defaults.
        default_categorical_skew_threshold: As the drift one, for skew.
        default_numeric_skew_threshold: As the drift one, for skew.
        skew_thresholds: Feature name -> skew threshold, overriding the defaults.
        fail_on_anomalies: Fail the step, listing every anomaly, when any is found.
        environment: Schema environment the statistics come from, e.g. ``SERVING`` for
            serving data without the label (see tfdv_schema's ``serving_excluded_features``);
            empty: every feature of the schema is expected.

    Returns:
        anomalies: ``anomalies.pbtxt`` (an Anomalies text proto) under the artifact; metadata
            ``anomaly_count`` and ``anomalies`` (one line each).
        report: A self-contained HTML table of anomalies and of every drift/skew value
            measured against its threshold.
        metrics: ``anomaly_count``, ``features_over_threshold``, and ``drift_<feature>`` /
            ``skew_<feature>`` for each measured feature.
        valid: True when no anomaly was found.

    Raises (the step fails and writes no outputs):
        Thresholds that are negative or name features not in the schema, thresholds without
        the statistics to compare with, unreadable inputs, and any anomaly when
        ``fail_on_anomalies`` is set.
    """
    return dsl.ContainerSpec(
        image=images.component_image(__name__),
        command=["python3", "-m", "kfpkit.components.tfdv_validate.launcher"],
        args=["--executor_input", "{{$}}"],
    )
