"""Whether a continuous-training run retrains, and why. Pure: no kfp, no TFDV, no files.

A run retrains when any of these holds (each one is a reason, all are recorded):
- no model is in production (the first window);
- a feature's distance from the previous window (drift) is over its threshold;
- a feature's distance from the production model's training data (skew) is over its
  threshold (off with ``retrain_on_skew=False``);
- the production model is ``max_model_age_windows`` windows or ``max_model_age_days`` days
  old (0 turns either off).
None of these retrains a re-run of the production model's own window (or of an earlier one):
that would register a second version from data a model was already trained on.
Otherwise it records why not: the largest distance of each comparison against its threshold,
and the model's age against the limits. Features in ``ignored_features`` (``id`` and
``year`` by default: they differ between windows by construction) never count, whatever was
measured; the pipeline also gives them a threshold of 0, so TFDV does not measure them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from kfpkit.components.load_window_state.state import WindowState

DRIFT = "drift"
SKEW = "skew"
DEFAULT_IGNORED = ("id", "year")


@dataclass(frozen=True)
class Distance:
    """One measured distance (TFDV's drift/skew measurement) and its threshold."""

    feature: str
    kind: str  # drift or skew
    measure: str  # L_INFINITY or JENSEN_SHANNON_DIVERGENCE
    value: float
    threshold: float

    @property
    def over(self) -> bool:
        return self.value > self.threshold


@dataclass(frozen=True)
class Policy:
    max_model_age_windows: int = 0
    max_model_age_days: float = 0.0
    retrain_on_skew: bool = True
    ignored_features: tuple[str, ...] = DEFAULT_IGNORED

    def __post_init__(self) -> None:
        for name in ("max_model_age_windows", "max_model_age_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")


@dataclass
class Decision:
    window: str
    retrain: bool
    reasons: list[str]  # why it retrains, or why it does not
    previous_window: str
    production_window: str
    model_age_windows: int
    model_age_days: float | None
    drifted: list[dict[str, Any]] = field(default_factory=list)  # over threshold
    skewed: list[dict[str, Any]] = field(default_factory=list)
    measured: list[dict[str, Any]] = field(default_factory=list)  # every counted distance
    ignored_features: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(d: Distance) -> str:
    return f"{d.feature} {d.value:.4g} > {d.threshold:g} ({d.measure})"


def _largest(distances: Sequence[Distance]) -> str:
    top = max(distances, key=lambda d: d.value / d.threshold if d.threshold else d.value)
    return f"largest {top.feature} {top.value:.4g} <= {top.threshold:g}"


def decide(
    state: WindowState,
    distances: Iterable[Distance],
    policy: Policy = Policy(),
    now: datetime | None = None,
) -> Decision:
    """The decision for ``state.window`` from TFDV's measured distances."""
    ignored = set(policy.ignored_features)
    counted = [d for d in distances if d.feature not in ignored and d.threshold > 0]
    for d in counted:
        if d.kind not in (DRIFT, SKEW):
            raise ValueError(f"distance of {d.feature!r} has kind {d.kind!r}, not drift or skew")
    production = state.production
    # a comparison without its baseline (first window, no production model) measured nothing
    drift = [d for d in counted if d.kind == DRIFT] if state.previous_window else []
    skew = [d for d in counted if d.kind == SKEW] if production else []
    age_days = production.age_days(now) if production else None
    reasons: list[str] = []
    if production is None:
        reasons.append("no model in production")
    drifted = sorted((d for d in drift if d.over), key=lambda d: -d.value)
    if drifted:
        reasons.append(
            f"drift from window {state.previous_window}: " + ", ".join(map(_fmt, drifted))
        )
    skewed = sorted((d for d in skew if d.over), key=lambda d: -d.value)
    if skewed and policy.retrain_on_skew:
        reasons.append(
            f"skew from the production model's training data (window {production.window}): "  # type: ignore[union-attr]
            + ", ".join(map(_fmt, skewed))
        )
    if (
        production
        and policy.max_model_age_windows
        and (state.windows_since_production >= policy.max_model_age_windows)
    ):
        reasons.append(
            f"model age {state.windows_since_production} windows >= max_model_age_windows "
            f"{policy.max_model_age_windows} (trained on window {production.window})"
        )
    if age_days is not None and policy.max_model_age_days and age_days >= policy.max_model_age_days:
        reasons.append(
            f"model age {age_days:.1f} days >= max_model_age_days {policy.max_model_age_days:g}"
        )
    if reasons and production is not None and state.window <= production.window:
        # a re-run of the production model's window (or of an earlier one): retraining would
        # register a second version from data a model has already been trained on
        reasons = [
            f"not retrained: the production model was trained on window {production.window}, "
            f"at or after window {state.window} (a re-run never trains on the same data "
            f"again); would have retrained for: " + "; ".join(reasons)
        ]
        retrain = False
    else:
        retrain = bool(reasons)
        if not retrain:
            reasons.append(_why_not(state, drift, skew, skewed, policy, age_days))
    return Decision(
        window=state.window,
        retrain=retrain,
        reasons=reasons,
        previous_window=state.previous_window,
        production_window=production.window if production else "",
        model_age_windows=state.windows_since_production,
        model_age_days=None if age_days is None else round(age_days, 4),
        drifted=[asdict(d) for d in drifted],
        skewed=[asdict(d) for d in skewed],
        measured=[asdict(d) for d in sorted(drift + skew, key=lambda d: (d.kind, d.feature))],
        ignored_features=sorted(ignored),
    )


def _why_not(
    state: WindowState,
    drift: Sequence[Distance],
    skew: Sequence[Distance],
    skewed: Sequence[Distance],
    policy: Policy,
    age_days: float | None,
) -> str:
    parts = []
    if not state.previous_window:
        parts.append("no previous window to measure drift against")
    elif drift:
        parts.append(f"no feature drifted beyond its threshold ({_largest(drift)})")
    else:
        parts.append("no drift threshold set")
    if skewed:  # over threshold, but skew does not retrain under this policy
        parts.append("skew over threshold ignored (retrain_on_skew is off): "
                     + ", ".join(map(_fmt, skewed)))  # fmt: skip
    elif skew:
        parts.append(f"no feature skewed beyond its threshold ({_largest(skew)})")
    age = f"model age {state.windows_since_production} windows"
    if policy.max_model_age_windows:
        age += f" < max_model_age_windows {policy.max_model_age_windows}"
    if age_days is not None and policy.max_model_age_days:
        age += f", {age_days:.1f} days < max_model_age_days {policy.max_model_age_days:g}"
    parts.append(age)
    return "not retrained: " + "; ".join(parts)
