"""Which variant of a model answers a request: fixed weights, sticky A/B, or a bandit.

Pure (numpy, pyarrow and the project's key hash, :mod:`kfpkit.splitting`); the server holds
one :class:`Router` and asks it for a variant once a request (a request with several rows goes
whole to one variant: one model call, one answer, and A/B units stay whole), then reports each
row's feedback to it.

Policies:

- ``fixed``: a variant drawn at random in proportion to the weights, request by request.
- ``ab``: sticky. The variant is a function of the unit (a user id from a request field or
  header) only: :func:`assign_variant`, the bucket ``MOD(FARM_FINGERPRINT(key), 1000000)`` that
  ``bigquery_split`` uses (:mod:`kfpkit.splitting`: FarmHash Fingerprint64 and its buckets),
  split into consecutive ranges by the weights, in the order the variants are given. The key is
  ``salt|unit``; the server's salt defaults to the model name, so a variant's users are not
  the users a split with the same key column put in one split (a salt of "" hashes the unit
  alone, exactly as the split does). Offline, ``assign_variant(unit, variants, weights, salt)``
  gives what the server gave (:func:`assign_variants` for a whole column of units), and
  BigQuery gives it with
  ``MOD(MOD(FARM_FINGERPRINT(CONCAT(salt, '|', unit)), 1000000) + 1000000, 1000000)``.
- ``bandit``: the weights move with the feedback. Each variant has a Beta posterior of its
  binary reward (prior Beta(1, 1); a reward r in [0, 1] adds r successes and 1 - r failures).
  ``thompson``: the variant with the highest draw from its posterior; ``epsilon-greedy``: the
  highest posterior mean, ties broken at random, and a uniformly random variant with
  probability ``epsilon``. No variant is starved: before any feedback every posterior is the
  same, so traffic is uniform; and Thompson sends a uniformly random variant with probability
  ``floor * len(variants)``, so each keeps at least ``floor`` of the traffic however the
  posteriors move (epsilon-greedy's floor is ``epsilon / len(variants)``).

The state (per variant: requests routed, feedback rows, successes, failures) is kept for every
policy and is what survives a restart (:meth:`Router.state` / :meth:`Router.restore`).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from kfpkit.splitting.farmhash import fingerprint64
from kfpkit.splitting.keys import BUCKETS, KEY_SEPARATOR, buckets

POLICIES = ("fixed", "ab", "bandit")
BANDITS = ("thompson", "epsilon-greedy")
STATE_FORMAT = 1
VARIANT_NAME = re.compile(r"^[A-Za-z0-9][-_.A-Za-z0-9]{0,62}\Z")
# draws of every posterior when the bandit's current traffic shares are reported
SHARE_DRAWS = 4000


@dataclass(frozen=True)
class VariantSpec:
    """One ``--variant NAME=MODEL_DIR[:WEIGHT]``."""

    name: str
    model_dir: str
    weight: float = 1.0


def check_variant_name(name: str) -> str:
    if not isinstance(name, str) or not VARIANT_NAME.match(name):
        raise ValueError(
            f"variant name {name!r} must be 1-63 letters, digits, '-', '_' or '.', starting with "
            "a letter or digit"
        )
    return name


def parse_variant(text: str) -> VariantSpec:
    """``NAME=MODEL_DIR[:WEIGHT]``; the weight is what follows the last ``:`` when it is a
    number (a folder whose name ends in ``:<number>`` needs an explicit weight)."""
    name, sep, rest = text.partition("=")
    if not sep or not rest:
        raise ValueError(f"--variant {text!r}: expected NAME=MODEL_DIR[:WEIGHT]")
    check_variant_name(name)
    model_dir, weight = rest, 1.0
    head, colon, tail = rest.rpartition(":")
    if colon and head:
        try:
            weight = float(tail)
            model_dir = head
        except ValueError:
            pass  # a ':' in the folder's name
    return VariantSpec(name, model_dir, weight)


def check_variants(specs: Sequence[VariantSpec]) -> None:
    names = [s.name for s in specs]
    if not names:
        raise ValueError("no variant to serve")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"variant name(s) {twice} given more than once")


def probabilities(variants: Sequence[str], weights: Sequence[float]) -> np.ndarray:
    """Weights as traffic shares; ValueError naming them unless they are finite, >= 0 and sum
    to a positive number."""
    if len(variants) != len(weights) or not variants:
        raise ValueError(
            f"{len(variants)} variant(s) {list(variants)} but {len(weights)} weight(s)"
        )
    shown = dict(zip(variants, weights, strict=True))
    for name, w in shown.items():
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w < 0:
            raise ValueError(f"weight of variant {name!r} must be a finite number >= 0, got {w!r}")
    total = float(sum(weights))
    if total <= 0:
        raise ValueError(
            f"variant weights {shown} sum to {total}: they must sum to a positive number"
        )
    return np.asarray(weights, dtype=np.float64) / total


def unit_key(value: Any) -> str:
    """A unit's value as the text that is hashed: what BigQuery's ``CAST(x AS STRING)`` gives
    for a STRING, INT64 or BOOL column (``bigquery_split``'s key types). A float is accepted
    only when it is a whole number (JSON has one number type): 42.0 hashes as "42"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    raise ValueError(
        f"unit value {value!r} must be a string, an integer or a boolean (what a split key can be)"
    )


def bucket_bounds(shares: np.ndarray) -> np.ndarray:
    """Upper bucket of each variant: consecutive ranges of the split's buckets by share."""
    bounds = np.round(np.cumsum(shares) * BUCKETS).astype(np.int64)
    bounds[-1] = BUCKETS
    return bounds


def assign_variant(
    unit_value: Any, variants: Sequence[str], weights: Sequence[float], salt: str = ""
) -> str:
    """The variant a unit sees under ``ab`` routing, computed anywhere (numpy and pyarrow).

    ``salt`` is the server's ``--unit-salt`` (its default: the model name).
    """
    return assign_variants([unit_value], variants, weights, salt)[0]


def assign_variants(
    unit_values: Sequence[Any], variants: Sequence[str], weights: Sequence[float], salt: str = ""
) -> list[str]:
    """:func:`assign_variant` of many units at once (e.g. a column of logged user ids)."""
    bounds = bucket_bounds(probabilities(variants, weights))
    return [variants[i] for i in _sticky_indices(unit_values, bounds, salt)]


def _sticky_indices(unit_values: Sequence[Any], bounds: np.ndarray, salt: str) -> np.ndarray:
    prefix = f"{salt}{KEY_SEPARATOR}" if salt else ""
    keys = [prefix + unit_key(v) for v in unit_values]
    if len(keys) == 1:  # a request's unit: the C library, 1 us (the numpy path costs ms)
        fingerprints = np.array([_fingerprint_one(keys[0])], dtype=np.int64)
    else:
        fingerprints = fingerprint64(pa.array(keys, type=pa.string()))
    # bounds are increasing: the first whose upper bound is above the bucket
    return np.searchsorted(bounds, buckets(fingerprints), side="right")


def _fingerprint_one(key: str) -> int:
    """FarmHash Fingerprint64 of one key, signed: pyfarmhash (in the train image) when it is
    installed, else kfpkit.splitting's numpy version (tests/test_splitting.py checks that
    both are FarmHash's own)."""
    try:
        import farmhash
    except ImportError:
        return int(fingerprint64(pa.array([key], type=pa.string()))[0])
    fp = int(farmhash.fingerprint64(key))
    return fp - (1 << 64) if fp >= (1 << 63) else fp


@dataclass
class Arm:
    """What is known of one variant."""

    requests: int = 0  # requests routed to it
    feedback: int = 0  # feedback rows (rewards) received
    successes: float = 0.0
    failures: float = 0.0

    @property
    def mean_reward(self) -> float | None:
        return self.successes / self.feedback if self.feedback else None


class Router:
    """Chooses a variant a request and learns from rewards; thread-safe."""

    def __init__(
        self,
        variants: Sequence[str],
        weights: Sequence[float],
        policy: str = "fixed",
        bandit: str = "thompson",
        epsilon: float = 0.1,
        floor: float = 0.05,
        salt: str = "",
        seed: int | None = None,
    ):
        if policy not in POLICIES:
            raise ValueError(f"routing policy {policy!r}: expected one of {list(POLICIES)}")
        if bandit not in BANDITS:
            raise ValueError(f"bandit {bandit!r}: expected one of {list(BANDITS)}")
        for name in variants:
            check_variant_name(name)
        self.variants = list(variants)
        k = len(self.variants)
        self.shares = probabilities(self.variants, weights)  # validates the weights
        if policy == "bandit":
            if not 0 <= epsilon <= 1 or not math.isfinite(epsilon):
                raise ValueError(f"--epsilon must be in [0, 1], got {epsilon}")
            if not 0 <= floor * k <= 1 or not math.isfinite(floor):
                raise ValueError(
                    f"--bandit-floor {floor} for {k} variants: floor x variants must be in [0, 1]"
                )
        self.policy, self.bandit = policy, bandit
        self.epsilon, self.floor, self.salt = epsilon, floor, salt
        self._bounds = bucket_bounds(self.shares)
        self._cumulative = np.cumsum(self.shares)
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self.arms = {name: Arm() for name in self.variants}

    @property
    def needs_unit(self) -> bool:
        return self.policy == "ab"

    def choose(self, unit_value: Any = None) -> str:
        """The variant of one request; ``ab`` needs the unit's value (ValueError if unusable)."""
        if self.policy == "ab":
            index = int(_sticky_indices([unit_value], self._bounds, self.salt)[0])
        else:
            with self._lock:
                index = self._fixed_index() if self.policy == "fixed" else self._bandit_index()
        name = self.variants[index]
        with self._lock:
            self.arms[name].requests += 1
        return name

    def _fixed_index(self) -> int:
        index = int(np.searchsorted(self._cumulative, self._rng.random(), side="right"))
        return min(index, len(self.variants) - 1)  # rounding of the last cumulative share

    def _bandit_index(self) -> int:
        k = len(self.variants)
        explore = self.epsilon if self.bandit == "epsilon-greedy" else self.floor * k
        if self._rng.random() < explore:
            return int(self._rng.integers(k))
        alpha, beta = self._posteriors()
        if self.bandit == "thompson":
            scores = self._rng.beta(alpha, beta)
        else:
            scores = alpha / (alpha + beta)
        best = np.flatnonzero(scores == scores.max())
        return int(best[0] if len(best) == 1 else self._rng.choice(best))

    def _posteriors(self) -> tuple[np.ndarray, np.ndarray]:
        arms = [self.arms[n] for n in self.variants]
        return (
            np.array([1.0 + a.successes for a in arms]),
            np.array([1.0 + a.failures for a in arms]),
        )

    def reward(self, variant: str, value: float) -> None:
        """One row's reward in [0, 1] (1: success) for the variant that answered it."""
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"a reward must be in [0, 1] for the bandit, got {value}")
        with self._lock:
            arm = self.arms[variant]
            arm.feedback += 1
            arm.successes += value
            arm.failures += 1.0 - value

    def traffic_shares(self) -> dict[str, float]:
        """The share of requests each variant gets now (expected; ``ab``: of units)."""
        if self.policy != "bandit":
            return dict(zip(self.variants, self.shares.tolist(), strict=True))
        k = len(self.variants)
        with self._lock:
            alpha, beta = self._posteriors()
            rng = np.random.default_rng(0)  # a stable report, not the routing stream
        if self.bandit == "thompson":
            draws = rng.beta(alpha, beta, size=(SHARE_DRAWS, k))
            best = np.bincount(draws.argmax(axis=1), minlength=k) / SHARE_DRAWS
            explore = self.floor * k
        else:
            means = alpha / (alpha + beta)
            top = means == means.max()
            best = top / top.sum()
            explore = self.epsilon
        shares = explore / k + (1 - explore) * best
        return dict(zip(self.variants, shares.tolist(), strict=True))

    def state(self) -> dict[str, Any]:
        """What ``policy.json`` holds (JSON-ready)."""
        shares = self.traffic_shares()
        with self._lock:
            arms = {
                name: {
                    "requests": a.requests,
                    "feedback": a.feedback,
                    "successes": a.successes,
                    "failures": a.failures,
                    "mean_reward": a.mean_reward,
                    "traffic_share": shares[name],
                }
                for name, a in self.arms.items()
            }
        return {
            "format": STATE_FORMAT,
            "policy": self.policy,
            "bandit": self.bandit if self.policy == "bandit" else None,
            "epsilon": self.epsilon,
            "floor": self.floor,
            "salt": self.salt,
            "variants": list(self.variants),
            "weights": dict(zip(self.variants, self.shares.tolist(), strict=True)),
            "arms": arms,
        }

    def restore(self, state: Mapping[str, Any], source: str = "policy state") -> None:
        """Takes the counts of a saved state; ValueError if it names other variants.

        The policy may change between runs (the counts mean the same under each); the variants
        may not: a posterior of a variant that is gone, or none for a new one, would be wrong.
        """
        try:
            if state.get("format") != STATE_FORMAT:
                raise ValueError(f"format {state.get('format')!r}, expected {STATE_FORMAT}")
            saved = list(state["variants"])
            arms = state["arms"]
            restored = {}
            for name in saved:
                a = arms[name]
                restored[name] = Arm(
                    int(a["requests"]),
                    int(a["feedback"]),
                    float(a["successes"]),
                    float(a["failures"]),
                )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ValueError(f"{source} is not a kfpkit routing state: {e}") from None
        if sorted(saved) != sorted(self.variants):
            raise ValueError(
                f"{source} is the state of variants {sorted(saved)}, but this server serves "
                f"{sorted(self.variants)}: start with the same variants, or move the file away "
                "to start the policy afresh"
            )
        with self._lock:
            self.arms = {name: restored[name] for name in self.variants}
