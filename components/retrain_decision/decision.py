"""Whether a continuous-training run retrains, and why. Pure: no kfp, no TFDV, no files.

A run retrains when any of these holds (each one is a reason, all are recorded):
- no model is in production (the first window);
- a feature's distance from the previous window (drift) is over its threshold;
- a feature's distance from the production model's training data (skew) is over its
  threshold (off with ``retrain_on_skew=False``);
- the production model is ``max_model_age_windows`` windows or ``max_model_age_days`` days
  old (0 turns either off);
- served traffic (``monitor_serving``'s monitoring of the window, :class:`Served`) skewed
  from the training data beyond a threshold (with ``retrain_on_skew``), or the served
  model's performance on feedback labels decayed beyond ``max_decay``.
None of these retrains a re-run of the production model's own window (or of an earlier one),
nor a re-run of a window an earlier run registered a model version from (blessed or not: the
state's ``window_registered_before``): that would register a second version from data a
model was already trained on. A run that decided to train and failed before registering
created no version: a re-run of its window decides afresh. Otherwise it records why not: the
largest distance of each comparison against its threshold, and the model's age against the
limits. Features in ``ignored_features`` (none by default; the pipelines name theirs, e.g. an
id and the window's own column, which differ between windows by construction) never count,
whatever was measured; the pipeline also gives them a threshold of 0, so TFDV does not
measure them.
Without a window state (a monitoring pipeline that keeps none) only the distances and the
served traffic count: no production model, age or previous window is known.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from kfpkit.window_state import REGISTRATION_FILE, WindowState

DRIFT = "drift"
SKEW = "skew"


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
    ignored_features: tuple[str, ...] = ()  # data-specific: the pipeline names them

    def __post_init__(self) -> None:
        for name in ("max_model_age_windows", "max_model_age_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")


@dataclass(frozen=True)
class Served:
    """What monitor_serving saw in the served traffic of the window (its ``monitoring.json``)."""

    rows: int
    skew: tuple[Distance, ...] = ()  # served features against the model's training data
    performance: dict[str, Any] = field(default_factory=dict)  # monitor_serving's, as is

    @classmethod
    def from_monitoring(cls, doc: dict[str, Any]) -> Served:
        """From ``monitoring.json``; ValueError naming what is malformed."""
        try:
            rows = int(doc.get("rows", 0))
            skew = tuple(
                Distance(m["feature"], SKEW, m["measure"], float(m["value"]), float(m["threshold"]))
                for m in doc.get("skew", [])
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ValueError(f"monitoring: not monitor_serving's monitoring.json: {e!r}") from e
        performance = doc.get("performance") or {}
        if not isinstance(performance, dict):
            raise ValueError(f"monitoring: performance is not an object: {performance!r}")
        return cls(rows, skew, performance)

    @property
    def decayed(self) -> bool:
        return bool(self.performance.get("over"))


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
    # served traffic: rows, skewed, measured (counted skew), performance; {} without monitoring
    served: dict[str, Any] = field(default_factory=dict)
    # the version an earlier run of the window registered ("": none, this run may train)
    window_registered_before: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(d: Distance) -> str:
    return f"{d.feature} {d.value:.4g} > {d.threshold:g} ({d.measure})"


def _largest(distances: Sequence[Distance]) -> str:
    top = max(distances, key=lambda d: d.value / d.threshold if d.threshold else d.value)
    return f"largest {top.feature} {top.value:.4g} <= {top.threshold:g}"


def _served_reasons(served: Served, counted: list[Distance], policy: Policy) -> list[str]:
    reasons = []
    skewed = sorted((d for d in counted if d.over), key=lambda d: -d.value)
    if skewed and policy.retrain_on_skew:
        reasons.append("served traffic skewed from the model's training data: "
                       + ", ".join(map(_fmt, skewed)))  # fmt: skip
    if served.decayed:
        p = served.performance
        metric = p.get("metric", "")
        reasons.append(
            f"served performance decayed: {metric} {p.get(metric, float('nan')):.4f} on "
            f"{p.get('labelled_rows')} labelled rows, {p.get('decay', float('nan')):.4f} below "
            f"the model's {p.get('reference', float('nan')):.4f} (max_decay "
            f"{p.get('max_decay', float('nan')):g})"
        )
    return reasons


def _served_record(served: Served | None, counted: list[Distance]) -> dict[str, Any]:
    if served is None:
        return {}
    return {
        "rows": served.rows,
        "skewed": [asdict(d) for d in sorted(counted, key=lambda d: -d.value) if d.over],
        "measured": [asdict(d) for d in sorted(counted, key=lambda d: d.feature)],
        "performance": dict(served.performance),
    }


def decide(
    state: WindowState | None,
    distances: Iterable[Distance],
    policy: Policy = Policy(),
    now: datetime | None = None,
    served: Served | None = None,
) -> Decision:
    """The decision for ``state.window`` from TFDV's measured distances and, when given,
    the served traffic's monitoring. ``state`` None: no window state is kept (only the
    distances and the served traffic count)."""
    ignored = set(policy.ignored_features)
    counted = [d for d in distances if d.feature not in ignored and d.threshold > 0]
    for d in counted:
        if d.kind not in (DRIFT, SKEW):
            raise ValueError(f"distance of {d.feature!r} has kind {d.kind!r}, not drift or skew")
    served_counted = [d for d in (served.skew if served else ())
                      if d.feature not in ignored and d.threshold > 0]  # fmt: skip
    if state is None:
        return _decide_without_state(counted, served, served_counted, policy)
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
    if served is not None and production is not None:  # what the production model served
        reasons += _served_reasons(served, served_counted, policy)
    if reasons and production is not None and state.window <= production.window:
        # a re-run of the production model's window (or of an earlier one): retraining would
        # register a second version from data a model has already been trained on
        reasons = [
            f"not retrained: the production model was trained on window {production.window}, "
            f"at or after window {state.window} (a re-run never trains on the same data "
            f"again); would have retrained for: " + "; ".join(reasons)
        ]
        retrain = False
    elif reasons and state.window_registered_before:
        # an earlier run registered a version from this window whose model was not promoted
        # (the challenger): a second would be the same data. A run that failed before
        # registering left no record here, and its window trains again.
        reasons = [
            f"not retrained: an earlier run of window {state.window} registered version "
            f"{state.window_registered_before} from its data (windows/{state.window}/"
            f"{REGISTRATION_FILE}, blessed or not); a re-run never registers a second version "
            f"from the same data; would have retrained for: " + "; ".join(reasons)
        ]
        retrain = False
    else:
        retrain = bool(reasons)
        if not retrain:
            reasons.append(_why_not(state, drift, skew, skewed, policy, age_days)
                           + _served_why_not(served, served_counted))  # fmt: skip
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
        served=_served_record(served, served_counted),
        window_registered_before=state.window_registered_before,
    )


def _decide_without_state(
    counted: list[Distance], served: Served | None, served_counted: list[Distance],
    policy: Policy,
) -> Decision:  # fmt: skip
    drift = [d for d in counted if d.kind == DRIFT]
    skew = [d for d in counted if d.kind == SKEW]
    drifted = sorted((d for d in drift if d.over), key=lambda d: -d.value)
    skewed = sorted((d for d in skew if d.over), key=lambda d: -d.value)
    reasons = []
    if drifted:
        reasons.append("drift: " + ", ".join(map(_fmt, drifted)))
    if skewed and policy.retrain_on_skew:
        reasons.append("skew: " + ", ".join(map(_fmt, skewed)))
    if served is not None:
        reasons += _served_reasons(served, served_counted, policy)
    retrain = bool(reasons)
    if not retrain:
        parts = [f"no feature drifted beyond its threshold ({_largest(drift)})"] if drift else []
        parts += [f"no feature skewed beyond its threshold ({_largest(skew)})"] if skew else []
        if not served or not served.rows:
            parts.append("no served traffic" if served else "nothing measured")
        text = "not retrained: " + "; ".join(parts)
        reasons.append(text + _served_why_not(served, served_counted))
    return Decision(
        window="", retrain=retrain, reasons=reasons, previous_window="", production_window="",
        model_age_windows=0, model_age_days=None,
        drifted=[asdict(d) for d in drifted], skewed=[asdict(d) for d in skewed],
        measured=[asdict(d) for d in sorted(drift + skew, key=lambda d: (d.kind, d.feature))],
        ignored_features=sorted(policy.ignored_features),
        served=_served_record(served, served_counted),
    )  # fmt: skip


def _served_why_not(served: Served | None, counted: Sequence[Distance]) -> str:
    """The served traffic's part of a "not retrained" reason ("" without monitoring, or
    without traffic: then nothing changes)."""
    if served is None or served.rows == 0:
        return ""
    parts = []
    skewed = [d for d in counted if d.over]
    if skewed:  # over threshold, but skew does not retrain under this policy
        parts.append("served skew over threshold ignored (retrain_on_skew is off): "
                     + ", ".join(map(_fmt, skewed)))  # fmt: skip
    elif counted:
        parts.append(f"no served feature skewed beyond its threshold ({_largest(counted)})")
    p = served.performance
    if p.get("note"):
        parts.append(f"served performance: {p['note']}")
    elif "decay" in p:
        parts.append(f"served {p.get('metric')} decay {p['decay']:.4f} "
                     f"<= max_decay {p.get('max_decay', 0):g}")  # fmt: skip
    return "; " + "; ".join(parts) if parts else ""


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
