"""KFP definition of evaluate: a thin container component around its launcher."""

from kfp import dsl

from kfpkit import images
from kfpkit.components.evaluate import defaults


@dsl.container_component
def evaluate(
    model: dsl.Input[dsl.Model],
    test_data: dsl.Input[dsl.Dataset],
    metrics: dsl.Output[dsl.Metrics],
    classification_metrics: dsl.Output[dsl.ClassificationMetrics],
    report: dsl.Output[dsl.Markdown],
    explanation: dsl.Output[dsl.Artifact],
    blessed: dsl.OutputPath(bool),  # type: ignore[valid-type]  # kfp's own idiom
    label_column: str,
    baseline_model: dsl.Input[dsl.Model] = None,
    baseline_model_dir: str = defaults.BASELINE_MODEL_DIR,
    slice_columns: list = [],  # noqa: B006 - KFP needs a literal default
    slice_bins: dict = {},  # noqa: B006 - KFP needs a literal default
    metric: str = defaults.METRIC,
    absolute_threshold: float = defaults.ABSOLUTE_THRESHOLD,
    max_regression: float = defaults.MAX_REGRESSION,
    min_improvement: float = defaults.MIN_IMPROVEMENT,
    bootstrap_resamples: int = defaults.BOOTSTRAP_RESAMPLES,
    seed: int = defaults.SEED,
    confidence: float = defaults.CONFIDENCE,
    min_lower_bound: float = defaults.MIN_LOWER_BOUND,
    require_noninferiority: bool = defaults.REQUIRE_NONINFERIORITY,
    noninferiority_margin: float = defaults.NONINFERIORITY_MARGIN,
    slice_thresholds: dict = {},  # noqa: B006 - KFP needs a literal default
    explain_rows: int = defaults.EXPLAIN_ROWS,
    attribution_method: str = defaults.ATTRIBUTION_METHOD,
):
    """Evaluates a SavedModel on a test split, overall and per slice, and decides whether
    it is good enough to deploy ("blessed"), against a baseline model when there is one.

    Both models are called through their ``serving_default`` signature on raw features, as
    KServe's TensorFlow runtime calls them, so what is evaluated is what would be served.
    A row is predicted positive when its probability is >= 0.5.

    Blessing: always ``metric >= absolute_threshold``; with a baseline, also
    ``metric - baseline_metric >= min_improvement`` when ``min_improvement`` > 0, else
    ``>= -max_regression``. With no baseline (a first run) only the absolute threshold
    applies, and the report says so.

    Args:
        model: The candidate, as train writes it: SavedModel version folders under the
            artifact; the highest version is evaluated.
        test_data: Parquet files under the artifact (e.g. bigquery_split's ``test``) with
            the label, every input column of both models and the slice columns. Streamed
            (read and scored in batches); per row only the label, scores and slice values
            are kept.
        baseline_model: Optional model to compare with (e.g. the one now deployed).
        baseline_model_dir: Or the serving directory of the deployed model (publish_model's
            ``destination``): its newest version is the baseline. While it holds no version
            (the first run of a continuous-training pipeline) there is no baseline, and the
            report says so. Not together with ``baseline_model``.
        label_column: Binary 0/1 label column; no nulls. Required (set by the pipeline).
        slice_columns: Columns whose values each get their metrics (the 50 most frequent
            values per column), e.g. ``["SEX", "year"]``.
        slice_bins: Numeric columns sliced into bands at the given increasing edges, e.g.
            ``{"AGEP": [25, 45, 65]}`` gives the slices ``AGEP=<25``, ``AGEP=25-45`` (25 <=
            AGEP < 45), ``AGEP=45-65`` and ``AGEP=>=65`` (nulls: ``AGEP=missing``); the column
            need not be in ``slice_columns``.
        metric: Blessing metric: ``auc``, ``accuracy``, ``precision`` or ``recall``.
        absolute_threshold: Lowest acceptable value of ``metric``, in [0, 1].
        max_regression: How much worse than the baseline ``metric`` may be, in [0, 1].
        min_improvement: How much better than the baseline ``metric`` must be, in [0, 1];
            set this or ``max_regression``, not both.
        bootstrap_resamples: Bootstrap resamples of the test rows (> 0) for the confidence
            interval of every metric, overall and per slice; candidate and baseline are
            resampled on the same rows (paired), which gives the interval of their difference,
            overall and per slice (the slices' from the same resamples as the overall ones).
            A slice of fewer than 30 rows or one class gets no interval (reported, no error).
        seed: Seed of the resampling: the same seed, data and models give the same intervals.
        confidence: Level of the percentile intervals, in [0.5, 1).
        min_lower_bound: The lower bound of ``metric``'s interval must reach this (0: no check).
        require_noninferiority: Bless only if the candidate is not worse than the baseline at
            ``confidence``: the lower bound of the paired difference >= -noninferiority_margin.
        noninferiority_margin: How much worse than the baseline the interval may reach; at
            0 the candidate must be significantly better, so set it (e.g. 0.001 AUC).
        slice_thresholds: ``{"column=value": floor}``: that slice's ``metric`` must reach its
            floor (e.g. ``{"SEX=2": 0.8}``, ``{"AGEP=<25": 0.7}`` for a band of
            ``slice_bins``); the column must be in ``slice_columns`` or ``slice_bins``.
        explain_rows: Feature attributions of the candidate on this many test rows drawn at
            random (``seed``; 0: none), from a baseline row of their medians and most
            frequent values, on the served signature (``kfpkit.explain``). Sampled Shapley
            costs rows x 10 x (features - 1) model rows: seconds for 1,000 rows.
        attribution_method: ``auto`` (integrated gradients when every input is numeric,
            else sampled Shapley), ``integrated_gradients`` or ``sampled_shapley``.

    Returns:
        metrics: count, positives, accuracy, precision, recall, auc, log_loss; the same
            prefixed ``baseline_``; per slice ``<column>=<value>/count|accuracy|auc``;
            ``blessed``; interval bounds ``<metric>_low|_high`` (also ``baseline_``,
            ``difference_`` and ``<column>=<value>/auc_low|_high``); with a baseline, per
            slice ``<column>=<value>/baseline_<metric>`` and the paired interval
            ``<column>=<value>/difference_<metric>_low|_high``; per slice column
            ``<column>/demographic_parity_difference``, ``true_positive_rate_gap``,
            ``false_positive_rate_gap``, ``equalized_odds_difference``;
            ``expected_calibration_error``; per feature ``attribution/<feature>``, its mean
            |attribution|.
        classification_metrics: Confusion matrix (rows: actual class, columns: predicted)
            and ROC curve at thresholds 0.00 to 1.00 in KFP's layout.
        report: Markdown: the decision with every check and its outcome, what the data can
            and cannot tell apart, metrics and intervals against the baseline, a table per
            slice column with the change to the baseline and its interval (with a chart), its
            fairness gaps, the calibration curve (inline SVG), and the
            mean |attribution| per feature, overall and per slice value.
        explanation: ``explanation.json``: attribution method and settings, the baseline row
            and its prediction, the features, the completeness gap, the importance overall
            and per slice (register_model's ``explanation`` input for Vertex AI).
        blessed: Whether the candidate passed (an output parameter for ``dsl.If``).

    Raises (the step fails with exit code 2 and writes no outputs):
        A model folder with no SavedModel version; test data lacking a model input, the
        label or a slice column, empty, or with a label that is not binary; an unknown
        metric or thresholds outside [0, 1]; bootstrap_resamples <= 0; a slice threshold
        on a slice that was not evaluated (named, with the slices present); slice_bins on a
        column that is not in the data or not numeric, or with edges that are empty, not
        numbers or not increasing (named); explain_rows < 0
        or an unknown attribution method (integrated gradients on a model with string inputs,
        named).
    """
    return dsl.ContainerSpec(
        image=images.component_image(__name__),
        command=["python3", "-m", "kfpkit.components.evaluate.launcher"],
        args=["--executor_input", "{{$}}"],
    )
