"""KFP definition of online_experiment: a thin container component around its launcher."""

from kfp import dsl

from kfpkit import images
from kfpkit.components.online_experiment import defaults


@dsl.container_component
def online_experiment(
    logs: str,
    control_variant: str,
    decision: dsl.Output[dsl.Artifact],
    report: dsl.Output[dsl.HTML],
    metrics: dsl.Output[dsl.Metrics],
    decision_value: dsl.OutputPath(str),  # type: ignore[valid-type]  # kfp's own idiom
    treatment_variant: str = "",
    start: str = "",
    end: str = "",
    metric: str = defaults.METRIC,
    alpha: float = defaults.ALPHA,
    min_labelled_rows: int = defaults.MIN_LABELLED_ROWS,
    mixture_sd: float = defaults.MIXTURE_SD,
    threshold: float = defaults.THRESHOLD,
    max_latency_p99_ms: float = defaults.MAX_LATENCY_P99_MS,
    max_error_rate: float = defaults.MAX_ERROR_RATE,
    confidence: float = defaults.CONFIDENCE,
    bigquery_endpoint: str = "",
):
    """Decides an online experiment (A/B test, canary) on served traffic and its feedback.

    Reads the request log and the feedback sent back (``kfpkit.serving.served_logs``) over
    ``[start, end)``, reports every variant (traffic, accuracy / AUC / log loss on labelled
    rows, mean reward, latency p50/p99, error rate, each with its confidence interval) and
    tests each treatment against the control with a mixture sequential probability ratio
    test (mSPRT): its error rate stays within ``alpha`` however often the step runs (hourly,
    say), and the decision is the test's first crossing, so a later run over a longer
    window repeats a decision instead of revisiting it. Branch on ``decision_value``
    (``kserve_push`` takes it: promote or roll back the canary).

    Decision, per treatment: ``rollback`` when a guardrail is breached (the whole interval
    of the treatment's p99 latency or error rate is above its limit), whatever the metric;
    ``continue`` while either arm has fewer than ``min_labelled_rows`` outcomes; then
    ``promote`` / ``rollback`` when the test shows the treatment better / worse; otherwise
    ``continue``. With several treatments: any rollback first, else the best promotion,
    else continue (alpha is split between them).

    Args:
        logs: The served traffic: a log folder (``<log_dir>/<model_name>``, local or KFP's
            ``/gcs/`` mount), ``gs://bucket/folder``, or ``bq://project.dataset.table`` (a
            Vertex AI endpoint's request-response logging table; deployed model ids are
            the variants).
        control_variant: The variant the others are compared with (the production model).
        treatment_variant: The variant to decide on; empty: every other variant.
        start: Start of the window (ISO-8601, inclusive); empty: the log's start.
        end: End of the window (exclusive); empty: the log's end.
        metric: ``accuracy``, ``auc``, ``log_loss`` (on feedback labels 0/1) or ``reward``
            (the feedback's reward).
        alpha: The test's error rate over every look (false promotion or rollback).
        min_labelled_rows: Outcomes each arm needs before the test may decide.
        mixture_sd: The mSPRT's mixing standard deviation in the metric's units (the effect
            size it is most sensitive to); 0: 0.1 x the control's per-row standard deviation
            (AUC: 0.02).
        threshold: A prediction at or above it counts as class 1 (accuracy).
        max_latency_p99_ms: Guardrail: the treatment's p99 request latency, absolute; 0: none.
        max_error_rate: Guardrail: the treatment's share of non-2xx requests; 0: none.
        confidence: Level of the per-variant intervals and the guardrail checks.
        bigquery_endpoint: BigQuery API endpoint for a ``bq://`` source (the emulator).

    Returns:
        decision: ``decision.json``: the decision, its reasons, every variant's statistics,
            each comparison (guardrails, the test's current and first-crossing looks), the
            settings and window; the headline in the metadata.
        report: One self-contained HTML page (no script, no fetches).
        metrics: ``<variant>/<statistic>``, ``<treatment>/difference`` (and its interval,
            the log-likelihood ratio, ``outcomes_to_decision``).
        decision_value: ``promote``, ``rollback`` or ``continue``.

    Raises (the step fails, writes no outputs):
        Variant names absent from a non-empty window (the message lists those present),
        log files of two incompatible schemas (both named), labels outside {0, 1} for the
        label metrics, bad settings. An empty window or no outcomes yet is ``continue``.

    Limits:
        Reads the whole window into memory (about 100 bytes a row plus features). The
        guardrails are checked at each run without correction for repeated looks. Rows of
        a ``bq://`` table are parsed in Python (its JSON payloads).
    """
    return dsl.ContainerSpec(
        image=images.component_image(__name__),
        command=["python3", "-m", "kfpkit.components.online_experiment.launcher"],
        args=["--executor_input", "{{$}}"],
    )
