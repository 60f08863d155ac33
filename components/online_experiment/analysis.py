"""The experiment's statistics and decision: pure (a pyarrow table in, plain data out).

Per variant: traffic, accuracy / AUC / log loss on labelled rows, mean reward, latency p50 /
p99 and error rate, each with a confidence interval (scipy). Per treatment
against the control: guardrails, then a mixture sequential probability ratio test (mSPRT)
on the chosen metric, valid however often it is looked at. See README.md for the choices.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats

from kfpkit.components.online_experiment import defaults

PROMOTE, ROLLBACK, CONTINUE = "promote", "rollback", "continue"
# metric -> whether higher is better
METRICS = {"accuracy": True, "auc": True, "log_loss": False, "reward": True}
# Per-row metrics test a difference of means at every labelled row; AUC is not a mean of rows:
# it is tested at this many looks (geometric in the labelled count), with a bootstrap variance.
AUC_LOOKS = 10
# Bootstrap of AUC on at most this many rows per class (a seeded subsample beyond).
AUC_BOOTSTRAP_ROWS = 3_000
AUC_RESAMPLES = 200
# Points of the evidence chart in the report.
CHART_POINTS = 60
_VARIANT_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")


@dataclass(frozen=True)
class Settings:
    """What to compare and how to decide (the component's parameters)."""

    control: str
    treatments: tuple[str, ...] = ()  # empty: every other variant with traffic
    metric: str = defaults.METRIC
    alpha: float = defaults.ALPHA
    min_labelled_rows: int = defaults.MIN_LABELLED_ROWS
    mixture_sd: float = defaults.MIXTURE_SD
    threshold: float = defaults.THRESHOLD
    max_latency_p99_ms: float = defaults.MAX_LATENCY_P99_MS
    max_error_rate: float = defaults.MAX_ERROR_RATE
    confidence: float = defaults.CONFIDENCE
    seed: int = 0

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {sorted(METRICS)}, not {self.metric!r}")
        for name in (self.control, *self.treatments):
            if not _VARIANT_NAME.match(name):
                raise ValueError(f"variant name {name!r} is not 1-128 letters, digits or _.:-")
        if self.control in self.treatments:
            raise ValueError(f"control_variant {self.control!r} is also a treatment")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), not {self.alpha}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), not {self.confidence}")
        if self.min_labelled_rows < 2:
            raise ValueError(f"min_labelled_rows must be >= 2, not {self.min_labelled_rows}")
        if self.mixture_sd < 0 or not math.isfinite(self.mixture_sd):
            raise ValueError(f"mixture_sd must be >= 0 (0: automatic), not {self.mixture_sd}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), not {self.threshold}")
        for name in ("max_latency_p99_ms", "max_error_rate"):
            value = getattr(self, name)
            if value < 0 or not math.isfinite(value):
                raise ValueError(f"{name} must be >= 0 (0: no guardrail), not {value}")
        if self.max_error_rate > 1:
            raise ValueError(f"max_error_rate is a share in [0, 1], not {self.max_error_rate}")


@dataclass(frozen=True)
class Estimate:
    """A value with its confidence interval (None where there is nothing to measure)."""

    value: float | None = None
    low: float | None = None
    high: float | None = None
    n: int = 0


@dataclass(frozen=True)
class VariantStats:
    variant: str
    rows: int
    requests: int
    share: float  # of the window's rows
    labelled_rows: int
    accuracy: Estimate
    auc: Estimate
    log_loss: Estimate
    reward: Estimate
    latency_p50_ms: Estimate
    latency_p99_ms: Estimate
    error_rate: Estimate


@dataclass(frozen=True)
class Guardrail:
    name: str  # latency_p99_ms / error_rate
    limit: float
    value: float | None
    low: float | None
    high: float | None
    breached: bool  # the interval's lower end is above the limit


@dataclass(frozen=True)
class Look:
    """The test at one look: after ``labelled_rows`` labelled rows (both arms together)."""

    labelled_rows: int
    difference: float  # treatment - control, in the metric's units
    low: float  # the always-valid confidence sequence at 1 - alpha
    high: float
    log_likelihood_ratio: float


@dataclass(frozen=True)
class SequentialTest:
    metric: str
    alpha: float
    mixture_sd: float
    control_rows: int
    treatment_rows: int
    current: Look | None  # at the end of the window
    crossed: Look | None  # the first look whose likelihood ratio reached 1 / alpha
    crossed_at: str | None  # its time (when the deciding label arrived)
    looks: list[Look] = field(default_factory=list)  # for the chart


@dataclass(frozen=True)
class Comparison:
    treatment: str
    decision: str
    reasons: list[str]
    guardrails: list[Guardrail]
    test: SequentialTest | None


@dataclass(frozen=True)
class Analysis:
    decision: str
    reasons: list[str]
    decided_variant: str | None  # the treatment the decision is about
    rows: int
    labelled_rows: int
    variants: list[VariantStats]
    comparisons: list[Comparison]
    settings: Settings
    window: dict[str, str | None]
    feedback: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- per-variant statistics -----------------------------------------------------------


def wilson(successes: int, n: int, confidence: float) -> Estimate:
    if n == 0:
        return Estimate()
    interval = stats.binomtest(successes, n).proportion_ci(confidence, method="wilson")
    return Estimate(successes / n, float(interval.low), float(interval.high), n)


def mean_interval(values: np.ndarray, confidence: float) -> Estimate:
    """A mean with its t interval (rows are independent; the mean is what is compared)."""
    n = len(values)
    if n == 0:
        return Estimate()
    if n == 1:
        return Estimate(float(values[0]), None, None, 1)
    if np.all((values == 0) | (values == 1)):
        return wilson(int(values.sum()), n, confidence)
    mean, sem = float(values.mean()), float(stats.sem(values))
    if sem == 0:  # every value equal: the interval is the value (scipy refuses a zero scale)
        return Estimate(mean, mean, mean, n)
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return Estimate(mean, float(low), float(high), n)


def quantile_interval(values: np.ndarray, p: float, confidence: float) -> Estimate:
    """A quantile with its distribution-free interval (order statistics: scipy's
    ``quantile_test``)."""
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return Estimate()
    value = float(np.quantile(values, p))
    if len(values) < 2:
        return Estimate(value, None, None, len(values))
    ci = stats.quantile_test(values, q=value, p=p).confidence_interval(confidence)
    low, high = (float(v) if math.isfinite(v) else None for v in (ci.low, ci.high))
    return Estimate(value, low, high, len(values))


def log_losses(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Per-row log loss: minus the Bernoulli log-likelihood of the label (clipped at 1e-15)."""
    p = np.clip(predictions, 1e-15, 1 - 1e-15)
    return -stats.bernoulli.logpmf(labels.astype(np.int64), p)


def _auc_statistic(positives: np.ndarray, negatives: np.ndarray, axis: int = -1) -> np.ndarray:
    # AUC is the Mann-Whitney U of the positives' scores over the negatives', normalised
    u = stats.mannwhitneyu(positives, negatives, axis=axis, method="asymptotic").statistic
    return u / (positives.shape[axis] * negatives.shape[axis])


def auc_with_error(
    labels: np.ndarray,
    predictions: np.ndarray,
    confidence: float,
    seed: int,
    resamples: int = AUC_RESAMPLES,
) -> tuple[Estimate, float | None]:
    """AUC with a bootstrap interval and standard error (scipy's ``bootstrap``, resampling
    each class apart). Beyond :data:`AUC_BOOTSTRAP_ROWS` rows in a class, a seeded subsample
    is bootstrapped, its standard error scaled to the whole sample, and the interval is the
    normal one with that error (a percentile interval of the subsample would be too wide)."""
    positives, negatives = predictions[labels == 1], predictions[labels == 0]
    if len(positives) == 0 or len(negatives) == 0:
        return Estimate(n=len(labels)), None
    value = float(_auc_statistic(positives, negatives))
    if len(positives) < 2 or len(negatives) < 2:
        return Estimate(value, None, None, len(labels)), None
    rng = np.random.default_rng(seed)
    sample = [
        rng.choice(x, AUC_BOOTSTRAP_ROWS, replace=False) if len(x) > AUC_BOOTSTRAP_ROWS else x
        for x in (positives, negatives)
    ]
    result = stats.bootstrap(
        tuple(sample),
        _auc_statistic,
        n_resamples=resamples,
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        random_state=rng,
        batch=50,
    )
    subsampled = sum(len(s) for s in sample) < len(labels)
    error = float(result.standard_error) * math.sqrt(sum(len(s) for s in sample) / len(labels))
    if subsampled:
        low, high = stats.norm.interval(confidence, loc=value, scale=max(error, 1e-12))
    else:
        low, high = result.confidence_interval.low, result.confidence_interval.high
    return Estimate(value, float(low), float(high), len(labels)), error


@dataclass
class _Rows:
    """The window's columns as numpy arrays (one conversion, shared by every statistic)."""

    names: list[str]
    variant: np.ndarray  # index into names; -1 for a null variant
    prediction: np.ndarray
    label: np.ndarray
    reward: np.ndarray
    known_at: np.ndarray  # int64 us: when the row's outcome was known (feedback time)
    served_at: np.ndarray

    @classmethod
    def of(cls, table: pa.Table) -> _Rows:
        encoded = table.column("variant").combine_chunks().dictionary_encode()
        indices = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        served = _micros(table.column("timestamp"))
        feedback = table.column("feedback_timestamp")
        known = np.where(
            feedback.is_null().to_numpy(zero_copy_only=False), served, _micros(feedback)
        )
        return cls(
            names=[str(v) for v in encoded.dictionary.to_pylist()],
            variant=indices.astype(np.int64),
            prediction=_floats(table.column("prediction")),
            label=_floats(table.column("label")),
            reward=_floats(table.column("reward")),
            known_at=known,
            served_at=served,
        )


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    return column.cast(pa.float64()).fill_null(np.nan).to_numpy()


def _micros(column: pa.ChunkedArray) -> np.ndarray:
    return column.cast(pa.int64()).fill_null(0).to_numpy()


def _requests(table: pa.Table) -> pa.Table:
    """One row per (variant, request): its latency (the whole request's) and worst status."""
    if (pc.max(table.column("row")).as_py() or 0) == 0:  # one row a request: no grouping
        return table.select(["variant", "request_id", "latency_ms", "status"]).rename_columns(
            ["variant", "request_id", "latency_ms_max", "status_max"]
        )
    return table.group_by(["variant", "request_id"]).aggregate(
        [("latency_ms", "max"), ("status", "max")]
    )


def variant_stats(
    table: pa.Table, rows: _Rows, requests: pa.Table, settings: Settings, name: str
) -> tuple[VariantStats, float | None]:
    """One variant's statistics, and its AUC standard error (the AUC test's variance)."""
    index = rows.names.index(name)
    mine = rows.variant == index
    binary = (rows.label == 0) | (rows.label == 1)  # other labels: only a reward metric
    labelled = mine & binary & np.isfinite(rows.prediction)
    labels, predictions = rows.label[labelled], rows.prediction[labelled]
    correct = (predictions >= settings.threshold) == (labels == 1)
    rewards = rows.reward[mine & np.isfinite(rows.reward)]
    own = requests.filter(pc.equal(requests.column("variant"), name))
    latency = _floats(own.column("latency_ms_max"))
    status = own.column("status_max").fill_null(200).to_numpy()
    errors = int(np.count_nonzero((status < 200) | (status >= 300)))
    auc, auc_error = auc_with_error(labels, predictions, settings.confidence, settings.seed)
    result = VariantStats(
        variant=name,
        rows=int(mine.sum()),
        requests=own.num_rows,
        share=float(mine.sum() / max(table.num_rows, 1)),
        labelled_rows=int(labelled.sum()),
        accuracy=wilson(int(correct.sum()), len(labels), settings.confidence),
        auc=auc,
        log_loss=mean_interval(log_losses(labels, predictions), settings.confidence),
        reward=mean_interval(rewards, settings.confidence),
        latency_p50_ms=quantile_interval(latency, 0.50, settings.confidence),
        latency_p99_ms=quantile_interval(latency, 0.99, settings.confidence),
        error_rate=wilson(errors, own.num_rows, settings.confidence),
    )
    return result, auc_error


# --- the sequential test --------------------------------------------------------------


def mixture_log_likelihood_ratio(
    difference: np.ndarray, variance: np.ndarray, mixture_sd: float
) -> np.ndarray:
    """log of the mSPRT statistic for "difference = 0": the estimate's likelihood with the
    true difference drawn from N(0, mixture_sd^2) (its marginal: N(0, variance + sd^2))
    over its likelihood at 0 (N(0, variance)) (Johari et al., "Always valid inference")."""
    spread = np.sqrt(variance + mixture_sd**2)
    return stats.norm.logpdf(difference, scale=spread) - stats.norm.logpdf(
        difference, scale=np.sqrt(variance)
    )


def sequence_radius(variance: float, mixture_sd: float, alpha: float) -> float:
    """Half-width of the always-valid confidence sequence: the distance from the estimate at
    which :func:`mixture_log_likelihood_ratio` reaches log(1 / alpha). Solved in closed form
    (the ratio is a Gaussian in the distance; tests check it against the scipy ratio)."""
    total = variance + mixture_sd**2
    return math.sqrt(
        2
        * variance
        * total
        / mixture_sd**2
        * (math.log(1 / alpha) + 0.5 * math.log(total / variance))
    )


def _per_row_values(rows: _Rows, settings: Settings, labelled: np.ndarray) -> np.ndarray:
    if settings.metric == "accuracy":
        return ((rows.prediction >= settings.threshold) == (rows.label == 1)).astype(float)
    if settings.metric == "log_loss":
        out = np.full(len(rows.label), np.nan)
        out[labelled] = log_losses(rows.label[labelled], rows.prediction[labelled])
        return out
    return rows.reward


def _outcome_mask(rows: _Rows, settings: Settings) -> np.ndarray:
    if settings.metric == "reward":
        return np.isfinite(rows.reward)
    return np.isfinite(rows.label) & np.isfinite(rows.prediction)


def mean_test(rows: _Rows, settings: Settings, treatment: str) -> SequentialTest:
    """The mSPRT of a difference of means, at every labelled row in the order outcomes
    arrived: the decision is the first crossing, so a later look (the next hourly run over a
    longer window) repeats it rather than revisiting it."""
    c, t = rows.names.index(settings.control), rows.names.index(treatment)
    has = _outcome_mask(rows, settings)
    mine = has & ((rows.variant == c) | (rows.variant == t))
    values = _per_row_values(rows, settings, has)[mine]
    arm_t = rows.variant[mine] == t
    order = np.argsort(rows.known_at[mine], kind="stable")
    values, arm_t, known = values[order], arm_t[order], rows.known_at[mine][order]
    n_t, n_c = np.cumsum(arm_t), np.cumsum(~arm_t)
    sums = [np.cumsum(np.where(arm, values, 0.0)) for arm in (arm_t, ~arm_t)]
    squares = [np.cumsum(np.where(arm, values**2, 0.0)) for arm in (arm_t, ~arm_t)]
    counts = [n_t, n_c]
    with np.errstate(divide="ignore", invalid="ignore"):
        means = [sums[i] / counts[i] for i in range(2)]
        # unbiased variance of each arm's rows, floored so that a constant prefix is not certain
        variances = [
            np.maximum((squares[i] - counts[i] * means[i] ** 2) / (counts[i] - 1), 1e-4)
            for i in range(2)
        ]
        variance = variances[0] / n_t + variances[1] / n_c
    difference = means[0] - means[1]
    ready = (n_t >= settings.min_labelled_rows) & (n_c >= settings.min_labelled_rows)
    sd = settings.mixture_sd or _auto_mixture_sd(values[~arm_t], settings.min_labelled_rows)
    llr = np.full(len(values), -np.inf)
    llr[ready] = mixture_log_likelihood_ratio(difference[ready], variance[ready], sd)
    return _test(
        settings,
        sd,
        int(n_c[-1]) if len(n_c) else 0,
        int(n_t[-1]) if len(n_t) else 0,
        difference,
        variance,
        llr,
        known,
    )


def _auto_mixture_sd(control_values: np.ndarray, first: int) -> float:
    """0.1 x the standard deviation of the control's first ``first`` per-row values: fixed
    once those are in, so every later look uses the same mixture."""
    head = control_values[:first]
    return max(0.1 * float(np.std(head, ddof=1)) if len(head) > 1 else 0.0, 1e-3)


def auc_test(rows: _Rows, settings: Settings, treatment: str) -> SequentialTest:
    """The mSPRT of a difference of AUCs at :data:`AUC_LOOKS` looks (geometric in the
    labelled count), each arm's variance from a bootstrap at that look."""
    c, t = rows.names.index(settings.control), rows.names.index(treatment)
    has = _outcome_mask(rows, settings)
    mine = has & ((rows.variant == c) | (rows.variant == t))
    order = np.argsort(rows.known_at[mine], kind="stable")
    arm_t = (rows.variant[mine] == t)[order]
    labels, predictions = rows.label[mine][order], rows.prediction[mine][order]
    known = rows.known_at[mine][order]
    total = len(labels)
    n_t, n_c = np.cumsum(arm_t), np.cumsum(~arm_t)
    ready = np.flatnonzero(
        (n_t >= settings.min_labelled_rows) & (n_c >= settings.min_labelled_rows)
    )
    ends = (
        np.unique(np.geomspace(ready[0] + 1, total, AUC_LOOKS).astype(int))
        if len(ready)
        else np.array([], int)
    )
    difference = np.full(total, np.nan)
    variance = np.full(total, np.nan)
    sd = settings.mixture_sd or 0.02
    for end in ends:
        estimates: list[tuple[float, float]] = []
        for arm in (arm_t[:end], ~arm_t[:end]):
            est, error = auc_with_error(
                labels[:end][arm], predictions[:end][arm], 0.95, settings.seed, resamples=100
            )
            if est.value is not None and error is not None:
                estimates.append((est.value, error))
        if len(estimates) < 2:
            continue
        (auc_t, error_t), (auc_c, error_c) = estimates
        difference[end - 1] = auc_t - auc_c
        variance[end - 1] = max(error_t**2 + error_c**2, 1e-10)
    llr = np.full(total, -np.inf)
    at = np.isfinite(difference)
    llr[at] = mixture_log_likelihood_ratio(difference[at], variance[at], sd)
    return _test(
        settings,
        sd,
        int(n_c[-1]) if total else 0,
        int(n_t[-1]) if total else 0,
        difference,
        variance,
        llr,
        known,
    )


def _test(
    settings: Settings,
    sd: float,
    control_rows: int,
    treatment_rows: int,
    difference: np.ndarray,
    variance: np.ndarray,
    llr: np.ndarray,
    known: np.ndarray,
) -> SequentialTest:
    looked = np.flatnonzero(np.isfinite(llr))

    def look(i: int) -> Look:
        radius = sequence_radius(float(variance[i]), sd, settings.alpha)
        d = float(difference[i])
        return Look(int(i + 1), d, d - radius, d + radius, float(llr[i]))

    if not len(looked):
        return SequentialTest(
            settings.metric, settings.alpha, sd, control_rows, treatment_rows, None, None, None
        )
    crossing = np.flatnonzero(llr >= math.log(1 / settings.alpha))
    crossed = look(int(crossing[0])) if len(crossing) else None
    crossed_at = (
        np.datetime64(int(known[crossing[0]]), "us").astype(str) + "Z" if len(crossing) else None
    )
    picks = looked[np.unique(np.linspace(0, len(looked) - 1, CHART_POINTS).astype(int))]
    return SequentialTest(
        settings.metric,
        settings.alpha,
        sd,
        control_rows,
        treatment_rows,
        current=look(int(looked[-1])),
        crossed=crossed,
        crossed_at=crossed_at,
        looks=[look(int(i)) for i in picks],
    )


# --- guardrails and the decision ------------------------------------------------------


def guardrails(treatment: VariantStats, settings: Settings) -> list[Guardrail]:
    """Absolute limits on the treatment, breached only when the whole interval is above."""
    checks = []
    for name, limit, estimate in (
        ("latency_p99_ms", settings.max_latency_p99_ms, treatment.latency_p99_ms),
        ("error_rate", settings.max_error_rate, treatment.error_rate),
    ):
        if limit == 0:  # no guardrail
            continue
        breached = estimate.low is not None and estimate.low > limit
        checks.append(Guardrail(name, limit, estimate.value, estimate.low, estimate.high, breached))
    return checks


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def compare(
    rows: _Rows, stats_by_name: dict[str, VariantStats], settings: Settings, treatment: str
) -> Comparison:
    t_stats, c_stats = stats_by_name[treatment], stats_by_name[settings.control]
    checks = guardrails(t_stats, settings)
    breached = [g for g in checks if g.breached]
    if settings.metric == "auc":
        test = auc_test(rows, settings, treatment)
    else:
        test = mean_test(rows, settings, treatment)
    if breached:
        reasons = [
            f"guardrail {g.name}: {treatment}'s {_fmt(g.value)} (interval {_fmt(g.low)} "
            f"to {_fmt(g.high)}) is above the limit {_fmt(g.limit)}"
            for g in breached
        ]
        return Comparison(treatment, ROLLBACK, reasons, checks, test)
    short = [
        f"{s.variant} {n}"
        for s, n in ((c_stats, test.control_rows), (t_stats, test.treatment_rows))
        if n < settings.min_labelled_rows
    ]
    if short:
        return Comparison(
            treatment,
            CONTINUE,
            [
                f"waiting for outcomes: {settings.metric} rows {', '.join(short)} < "
                f"min_labelled_rows {settings.min_labelled_rows}"
            ],
            checks,
            test,
        )
    if test.crossed is not None:
        better = (test.crossed.difference > 0) == METRICS[settings.metric]
        verb = "better" if better else "worse"
        reason = (
            f"{treatment} is {verb} than {settings.control} on {settings.metric}: "
            f"difference {test.crossed.difference:+.4g} (always-valid "
            f"{1 - settings.alpha:.0%} interval {test.crossed.low:+.4g} to "
            f"{test.crossed.high:+.4g}) after {test.crossed.labelled_rows} outcomes"
            f" ({test.crossed_at}); mSPRT log-likelihood ratio "
            f"{test.crossed.log_likelihood_ratio:.3g} >= log(1/alpha) "
            f"{math.log(1 / settings.alpha):.3g}"
        )
        return Comparison(treatment, PROMOTE if better else ROLLBACK, [reason], checks, test)
    current = test.current
    assert current is not None  # both arms have min_labelled_rows outcomes
    return Comparison(
        treatment,
        CONTINUE,
        [
            f"no difference shown yet on {settings.metric}: {current.difference:+.4g} "
            f"(always-valid {1 - settings.alpha:.0%} interval {current.low:+.4g} to "
            f"{current.high:+.4g}, which holds 0) after {current.labelled_rows} outcomes"
        ],
        checks,
        test,
    )


def analyse(
    table: pa.Table,
    settings: Settings,
    window: dict[str, str | None] | None = None,
    feedback: dict[str, int] | None = None,
) -> Analysis:
    """Per-variant statistics, each treatment against the control, and the decision.

    Raises ValueError for variant names absent from a non-empty window (naming those
    present) and for labels outside {0, 1} when the metric needs them. An empty window, or
    a treatment without outcomes yet, is a ``continue`` with its reason.
    """
    window = window or {"start": None, "end": None}
    feedback = feedback or {}
    if table.num_rows == 0:
        return Analysis(
            CONTINUE,
            ["no served rows in the window"],
            None,
            0,
            0,
            [],
            [],
            settings,
            window,
            feedback,
        )
    rows = _Rows.of(table)
    present = sorted(rows.names)
    for role, name in [
        ("control_variant", settings.control),
        *(("treatment_variant", t) for t in settings.treatments),
    ]:
        if name not in rows.names:
            raise ValueError(
                f"{role} {name!r} has no rows in the window; variants present: {present}"
            )
    if settings.metric != "reward":
        _check_labels(rows.label)
    requests = _requests(table)
    computed = {n: variant_stats(table, rows, requests, settings, n) for n in present}
    by_name = {n: s for n, (s, _) in computed.items()}
    treatments = settings.treatments or tuple(n for n in present if n != settings.control)
    # several treatments share alpha (Bonferroni): the chance that any false one is declared
    # stays within alpha
    per_test = replace(settings, alpha=settings.alpha / max(len(treatments), 1))
    comparisons = [compare(rows, by_name, per_test, t) for t in treatments]
    labelled = int(np.count_nonzero(np.isfinite(rows.label)))
    decision, reasons, decided = overall(comparisons, settings)
    return Analysis(
        decision,
        reasons,
        decided,
        table.num_rows,
        labelled,
        [by_name[n] for n in present],
        comparisons,
        settings,
        window,
        feedback,
    )


def _check_labels(labels: np.ndarray) -> None:
    known = labels[np.isfinite(labels)]
    bad = known[(known != 0) & (known != 1)]
    if len(bad):
        raise ValueError(
            f"{len(bad)} feedback labels are not 0 or 1 (e.g. "
            f"{sorted(set(bad.tolist()))[:5]}); the metric needs binary labels"
        )


def overall(
    comparisons: Sequence[Comparison], settings: Settings
) -> tuple[str, list[str], str | None]:
    """One decision for the experiment: a rollback of any treatment first (a breached or
    worse canary must go), else the promotion of the best promoted treatment, else continue."""
    if not comparisons:
        return CONTINUE, [f"no variant besides the control {settings.control!r} has traffic"], None
    for c in comparisons:
        if c.decision == ROLLBACK:
            return ROLLBACK, [f"{c.treatment}: {r}" for r in c.reasons], c.treatment
    promoted = [c for c in comparisons if c.decision == PROMOTE]
    if promoted:
        sign = 1 if METRICS[settings.metric] else -1
        best = max(promoted, key=lambda c: sign * c.test.crossed.difference)  # type: ignore[union-attr]
        return PROMOTE, [f"{best.treatment}: {r}" for r in best.reasons], best.treatment
    decided = comparisons[0].treatment if len(comparisons) == 1 else None
    return CONTINUE, [f"{c.treatment}: {r}" for c in comparisons for r in c.reasons], decided
