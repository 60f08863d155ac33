"""KFP definition of tfdv_validate_splits: a thin container component around its launcher."""

from kfp import dsl

from kfpkit import images


@dsl.container_component
def tfdv_validate_splits(
    train: dsl.Input[dsl.Dataset],
    validation: dsl.Input[dsl.Dataset],
    train_statistics: dsl.Output[dsl.Artifact],
    validation_statistics: dsl.Output[dsl.Artifact],
    test_statistics: dsl.Output[dsl.Artifact],
    schema: dsl.Output[dsl.Artifact],
    summary: dsl.Output[dsl.Markdown],
    anomalies: dsl.Output[dsl.Artifact],
    report: dsl.Output[dsl.HTML],
    metrics: dsl.Output[dsl.Metrics],
    valid: dsl.OutputPath(bool),  # type: ignore[valid-type]  # kfp's own idiom
    test: dsl.Input[dsl.Dataset] = None,
    user_schema: dsl.Input[dsl.Artifact] = None,
    default_categorical_drift_threshold: float = 0.0,
    default_numeric_drift_threshold: float = 0.0,
    drift_thresholds: dict = {},  # noqa: B006 - KFP needs a literal default
    fail_on_anomalies: bool = False,
    infer_feature_shape: bool = True,
    max_string_domain_size: int = 100,
    coded_strings_as_categories: bool = True,
    serving_excluded_features: list = [],  # noqa: B006
    slice_features: list = [],  # noqa: B006
    beam_pipeline_args: list = [],  # noqa: B006
):
    """Validates a split's datasets in one step: statistics of every split in one Beam
    pipeline, a schema from the train split, and the validation (and test) split checked
    against it with drift against train.

    The same work as ``tfdv_statistics`` (once per split), ``tfdv_schema`` and
    ``tfdv_validate`` (the way TFX's StatisticsGen, SchemaGen and ExampleValidator share one
    pass over an ExampleGen's splits), in one container: TFDV is imported and Beam started
    once instead of four times. The outputs have the layouts of those components, so
    ``tfdv_validate`` can later compare new data (or serving logs) with these statistics.

    Args:
        train: The train split (Parquet or CSV, as ``bigquery_split`` exports it); its
            statistics are the schema's source and the drift baseline.
        validation: The validation split; validated against the schema.
        test: The test split, optional; validated like ``validation`` when given.
        user_schema: A curated schema (``schema.pbtxt``) used as is instead of inference.
        default_categorical_drift_threshold: L-infinity drift threshold of every categorical
            feature of validation/test against train (0 turns it off).
        default_numeric_drift_threshold: Jensen-Shannon drift threshold of numeric features.
        drift_thresholds: Feature name -> drift threshold, overriding the defaults (0 turns
            one feature off, e.g. an id or a time column that differs by construction).
        fail_on_anomalies: Fail the step, listing every anomaly of every split, when any is
            found.
        infer_feature_shape: As ``tfdv_schema``'s.
        max_string_domain_size: As ``tfdv_schema``'s.
        coded_strings_as_categories: As ``tfdv_schema``'s.
        serving_excluded_features: As ``tfdv_schema``'s (features serving data lacks).
        slice_features: As ``tfdv_statistics``'s (validation uses ``All Examples``).
        beam_pipeline_args: As ``tfdv_statistics``'s, for the one statistics pipeline.

    Returns:
        train_statistics: ``FeatureStats.pb`` of train (``tfdv_statistics``' layout).
        validation_statistics: The same, of validation.
        test_statistics: The same, of test; metadata ``absent: true`` without a test input.
        schema: ``schema.pbtxt`` (``tfdv_schema``'s layout).
        summary: A Markdown table of the schema's features.
        anomalies: ``<split>/anomalies.pbtxt`` per validated split; metadata
            ``anomaly_count`` and ``anomalies`` (split -> one line each).
        report: One self-contained HTML page: anomalies and drift per validated split, then
            every split's feature statistics.
        metrics: ``anomaly_count`` (all splits) and, per validated split,
            ``<split>_anomaly_count``, ``<split>_features_over_threshold`` and
            ``<split>_drift_<feature>``.
        valid: True when no split has an anomaly.

    Raises (the step fails and writes no outputs):
        A missing, empty or corrupt input file; thresholds that are negative or name
        features not in the schema; a user schema that does not parse; any anomaly when
        ``fail_on_anomalies`` is set.
    """
    return dsl.ContainerSpec(
        image=images.component_image(__name__),
        command=["python3", "-m", "kfpkit.components.tfdv_validate_splits.launcher"],
        args=["--executor_input", "{{$}}"],
    )
