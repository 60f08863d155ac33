"""KFP definition of monitor_serving: a thin container component around its launcher."""

from kfp import dsl

from kfpkit import images
from kfpkit.components.monitor_serving import defaults


@dsl.container_component
def monitor_serving(
    alert: dsl.OutputPath(bool),  # type: ignore[valid-type]  # kfp's own idiom
    moved_features: dsl.OutputPath(list),  # type: ignore[valid-type]
    statistics: dsl.Output[dsl.Artifact],
    report: dsl.Output[dsl.HTML],
    metrics: dsl.Output[dsl.Metrics],
    monitoring: dsl.Output[dsl.Artifact],
    logs: str = "",
    start: str = "",
    end: str = "",
    window_hours: float = defaults.WINDOW_HOURS,
    training_statistics: dsl.Input[dsl.Artifact] = None,
    previous_statistics: dsl.Input[dsl.Artifact] = None,
    reference_metrics: dsl.Input[dsl.Artifact] = None,
    default_categorical_drift_threshold: float = defaults.THRESHOLD,
    default_numeric_drift_threshold: float = defaults.THRESHOLD,
    drift_thresholds: dict = {},  # noqa: B006 - KFP needs a literal default
    default_categorical_skew_threshold: float = defaults.THRESHOLD,
    default_numeric_skew_threshold: float = defaults.THRESHOLD,
    skew_thresholds: dict = {},  # noqa: B006
    metric: str = defaults.METRIC,
    max_decay: float = defaults.MAX_DECAY,
    min_labelled_rows: int = defaults.MIN_LABELLED_ROWS,
    bigquery_endpoint: str = "",
):
    """Watches one window of served traffic: skew from the training data, drift from the
    previous window, the predictions' distribution, performance decay on feedback labels,
    and values outside the schema's domain; raises ``alert`` with the features that moved.

    Reads the served rows with ``start <= timestamp < end`` (and their feedback) from the
    serving log (``kfpkit serve --log-dir``, KServe's logger sink, or a Vertex AI endpoint's
    request-response logging table). Only answered rows (status 200) count. Skew and drift
    are TFDV's, with the data validation's comparators and thresholds (L-infinity of value
    frequencies for categorical features, Jensen-Shannon divergence for numeric ones; 0
    turns one off); the predictions are part of the window's statistics, so the next window
    measures their drift like a feature's. Always run it (not inside a condition): a window
    without traffic, or ``logs`` empty, is "no traffic" (no alert), never an error, and
    ``retrain_decision`` reads ``monitoring`` whatever happened.

    Args:
        logs: The served traffic: a log folder (``<log_dir>/<model_name>``; ``gs://`` is
            read directly), or ``bq://project.dataset.table``; empty: no served traffic.
        start: Start of the window (ISO 8601, inclusive; UTC when no zone); empty: the log's
            beginning.
        end: End of the window (exclusive); empty: everything logged so far.
        window_hours: > 0: the window is the ``window_hours`` before ``end`` (empty: the
            step's start), and, unless ``previous_statistics`` is given, the drift baseline
            is the window of the same length before it, read from the same log: what a
            schedule needs (fixed parameters, moving windows). Not with ``start``.
        training_statistics: The model's training statistics (``FeatureStats.pb``: from
            ``tfdv_validate_splits``, ``load_window_state``'s ``production_statistics``, or an
            importer of ``resolve_model``'s ``statistics_uri``): the skew baseline.
        previous_statistics: The previous window's statistics (this step's ``statistics`` of
            that window, or ``load_window_state``'s ``previous_statistics``): the drift
            baseline (else, with ``window_hours``, the window before, from the log). One
            marked ``fallback`` by load_window_state, or without examples, counts as absent.
        reference_metrics: The model's evaluation metrics: ``evaluate``'s ``metrics``, or
            ``resolve_model``'s ``model_version`` (its ``metrics``); absent: performance is
            measured but no decay judged.
        default_categorical_drift_threshold: L-infinity drift threshold of every
            categorical feature.
        default_numeric_drift_threshold: Jensen-Shannon drift threshold of every numeric
            feature and of the predictions.
        drift_thresholds: Feature (or ``prediction``) -> drift threshold overriding the
            defaults; names the log does not hold are not used (a pipeline's dicts name
            ``id``, ``year``).
        default_categorical_skew_threshold: As the drift one, against the training data.
        default_numeric_skew_threshold: As the drift one, against the training data.
        skew_thresholds: As ``drift_thresholds``, for skew.
        metric: ``auc`` or ``accuracy``: the metric whose decay is judged.
        max_decay: Alert when ``metric`` on the labelled rows is more than this below the
            reference (absolute, e.g. 0.02).
        min_labelled_rows: Fewer labelled rows: performance is reported, never an alert.
        bigquery_endpoint: BigQuery API endpoint for ``bq://`` (the emulator); empty for
            BigQuery.

    Returns:
        alert: True when a feature skewed or drifted beyond its threshold, the predictions
            drifted, or performance decayed beyond ``max_decay``.
        moved_features: The features that skewed or drifted beyond their thresholds.
        statistics: The window's statistics (``FeatureStats.pb``, features and
            ``prediction``): the next window's ``previous_statistics``. A window without
            traffic gives statistics of 0 examples (metadata ``empty: true``).
        report: An HTML page: verdict and reasons, every distance, the predictions'
            histogram, performance, out-of-domain counts, the window's statistics.
        metrics: ``rows``, ``error_rows``, ``alert``, ``features_moved``, ``labelled_rows``,
            ``skew_<feature>``, ``drift_<feature>``, ``prediction_mean``,
            ``prediction_drift``, ``accuracy``, ``auc``, ``decay``,
            ``out_of_domain_<feature>``.
        monitoring: ``monitoring.json``: all of the above (``alert``, ``reasons``,
            ``moved_features``, ``skew`` and ``drift`` measurements with thresholds,
            ``prediction``, ``performance``, ``out_of_domain``, ``window``): the input of
            ``retrain_decision``.

    Raises (the step fails and writes no outputs):
        A log source that is malformed or missing, times that are not ISO 8601 or
        ``start >= end``, log files of two incompatible schemas, unreadable baselines,
        negative thresholds, an unknown ``metric``.

    Limits:
        Reads the whole window into memory (about 1 GB for 1M rows of 20 features); the
        statistics are computed in the step's process (no Beam). Accuracy and AUC need 0/1
        labels and a score per row (accuracy at 0.5).
    """
    return dsl.ContainerSpec(
        image=images.component_image(__name__),
        command=["python3", "-m", "kfpkit.components.monitor_serving.launcher"],
        args=["--executor_input", "{{$}}"],
    )
