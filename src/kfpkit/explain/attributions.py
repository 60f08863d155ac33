"""Per-row feature attributions on a model's served signature, against one baseline row.

Two methods, both measured on what a server runs (``serving_default`` on raw features):

- ``integrated_gradients`` (Sundararajan et al. 2017): the gradient of the probability along
  the straight line from the baseline to the row, integrated by Gauss-Legendre quadrature
  over ``steps`` points, times (row - baseline). Needs a gradient at every input, so only for
  models whose inputs are all numeric; completeness (sum = prediction - baseline prediction)
  holds up to the quadrature error (measured: < 1e-6 at 50 steps on the test models). A
  missing (NaN) numeric value runs the path at the baseline value (the model's own
  imputation has no gradient): it gets 0 and the prediction is the filled row's.
- ``sampled_shapley`` (Strumbelj & Kononenko 2014; Vertex AI's method for models without
  gradients): Shapley values of the game "features set to the row's value, the others at the
  baseline", estimated over ``paths`` random feature orders per row (half of them the other
  half reversed: antithetic, lower variance). Each order's marginal contributions sum to
  prediction - baseline prediction, so completeness is exact. Works on any input, strings
  included, and is what the demo (15 categorical of 16 features) gets. Cost: rows x paths x
  (features - 1) model rows, batched.

``auto`` picks integrated gradients when every input is numeric, else sampled Shapley.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kfpkit.explain import baseline as baselines
from kfpkit.tabular import CATEGORICAL, FeatureSpec

INTEGRATED_GRADIENTS = "integrated_gradients"
SAMPLED_SHAPLEY = "sampled_shapley"
METHODS = ("auto", INTEGRATED_GRADIENTS, SAMPLED_SHAPLEY)
DEFAULT_STEPS = 50
DEFAULT_PATHS = 10


@dataclass(frozen=True)
class Settings:
    method: str = "auto"
    steps: int = DEFAULT_STEPS  # integrated gradients: quadrature points on the path
    paths: int = DEFAULT_PATHS  # sampled Shapley: feature orders per row (rounded up to even)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"attribution method {self.method!r} is not one of {list(METHODS)}")
        for name in ("steps", "paths"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"attribution {name} must be a whole number >= 1, not {value!r}")

    def resolved(self, specs: Sequence[FeatureSpec]) -> str:
        """The method used for a model with these inputs; ValueError for integrated gradients
        on a model with string inputs (named)."""
        strings = [s.name for s in specs if s.kind == CATEGORICAL]
        if self.method == "auto":
            return SAMPLED_SHAPLEY if strings else INTEGRATED_GRADIENTS
        if self.method == INTEGRATED_GRADIENTS and strings:
            raise ValueError(f"integrated gradients need a gradient at every input; the "
                             f"categorical input(s) {strings} are strings: use "
                             f"{SAMPLED_SHAPLEY!r} (or 'auto')")  # fmt: skip
        return self.method


@dataclass
class Attributions:
    """``values[i, j]``: feature ``features[j]``'s share of row ``i``'s prediction minus the
    baseline prediction."""

    features: list[str]
    values: np.ndarray  # (rows, features), float64
    predictions: np.ndarray  # (rows,)
    baseline_prediction: float
    method: str
    baseline: baselines.Baseline

    def completeness_gap(self) -> np.ndarray:
        """prediction - baseline prediction - sum of attributions, per row."""
        return self.predictions - self.baseline_prediction - self.values.sum(axis=1)

    def rows(self) -> list[dict[str, float]]:
        """One ``{feature: attribution}`` per row."""
        return [dict(zip(self.features, map(float, row), strict=True)) for row in self.values]

    def importance(self, mask: np.ndarray | None = None) -> dict[str, float]:
        """Global importance: mean |attribution| per feature over the rows (or ``mask``'s),
        largest first."""
        values = self.values if mask is None else self.values[mask]
        if len(values) == 0:
            return {}
        means = np.abs(values).mean(axis=0)
        order = np.argsort(-means, kind="stable")
        return {self.features[j]: float(means[j]) for j in order}


def attribute(
    model: Any,
    features: Mapping[str, np.ndarray],
    baseline: baselines.Baseline,
    settings: Settings = Settings(),  # noqa: B008 - frozen, immutable
) -> Attributions:
    """Attributions of every row of ``features`` (model input arrays, as
    :func:`kfpkit.tabular.feature_arrays` gives them) for ``model``
    (a :class:`kfpkit.tabular.ServingModel`)."""
    specs = list(model.feature_specs)
    method = settings.resolved(specs)
    base = baselines.as_arrays(baselines.check(baseline, specs, "baseline"), specs)
    baseline_prediction = float(model.predict(base)[0])
    if method == INTEGRATED_GRADIENTS:
        unset = [s.name for s in specs if np.isnan(base[s.name]).any()]  # all numeric here
        if unset:
            raise ValueError(f"integrated gradients need a number as the baseline of {unset} "
                             "(a missing value has no path to integrate along)")  # fmt: skip
        values, predictions = _integrated_gradients(model, specs, features, base, settings.steps)
    else:
        values, predictions = _sampled_shapley(
            model, specs, features, base, baseline_prediction, settings.paths, settings.seed
        )
    return Attributions([s.name for s in specs], values, predictions, baseline_prediction,
                        method, dict(baseline))  # fmt: skip


def _integrated_gradients(
    model: Any,
    specs: Sequence[FeatureSpec],
    features: Mapping[str, np.ndarray],
    base: Mapping[str, np.ndarray],
    steps: int,
) -> tuple[np.ndarray, np.ndarray]:
    rows = len(next(iter(features.values())))
    names = [s.name for s in specs]
    start = np.stack([np.repeat(base[n].astype(np.float64), rows) for n in names], axis=1)
    end = np.stack([features[n].astype(np.float64) for n in names], axis=1)
    end = np.where(np.isnan(end), start, end)  # a missing value: the path stays at baseline
    # Gauss-Legendre nodes and weights on [0, 1] (numpy's): exact for polynomials of degree
    # 2 x steps - 1 along the path, where the trapezoidal rule of as many points is exact
    # for degree 1 only (measured on the test models: gap 1e-4 -> 1e-7 at 50 points)
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas, weights = (nodes + 1) / 2, weights / 2
    # every point of every row's path in one batched call: steps x rows
    points = start[None] + alphas[:, None, None] * (end - start)[None]
    flat = points.reshape(-1, len(names)).astype(np.float32)
    _, grads = model.gradients({n: flat[:, j] for j, n in enumerate(names)})
    grad = np.stack([grads[n] for n in names], axis=1).reshape(steps, rows, len(names))
    mean_grad = np.tensordot(weights, grad, axes=1)
    filled = end.astype(np.float32)
    predictions = model.predict({n: filled[:, j] for j, n in enumerate(names)})
    return (end - start) * mean_grad, predictions


def _sampled_shapley(
    model: Any,
    specs: Sequence[FeatureSpec],
    features: Mapping[str, np.ndarray],
    base: Mapping[str, np.ndarray],
    baseline_prediction: float,
    paths: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    rows = len(next(iter(features.values())))
    names = [s.name for s in specs]
    count = len(names)
    rng = np.random.default_rng(seed)
    half = -(-paths // 2)
    # orders[i, p]: the feature order of path p of row i; the second half reverses the first
    first = np.argsort(rng.random((rows, half, count)), axis=2)
    orders = np.concatenate([first, first[:, :, ::-1]], axis=1)
    paths = 2 * half
    position = np.argsort(orders, axis=2)  # position[i, p, j]: when feature j is switched
    # state k of a path (k = 1 .. count-1) has the first k features of its order at the row's
    # value; state 0 (the baseline) and state count (the row) are shared and computed apart
    steps = np.arange(1, count)
    on = position[:, :, None, :] < steps[None, None, :, None]  # (rows, paths, count-1, count)
    inputs = {}
    for j, name in enumerate(names):
        row_values = np.broadcast_to(features[name][:, None, None], on.shape[:3])
        inputs[name] = np.where(on[..., j], row_values, base[name][0]).reshape(-1)
        if specs[j].kind != CATEGORICAL:
            inputs[name] = inputs[name].astype(np.float32)
    predictions = model.predict({n: features[n] for n in names})
    middle = (
        model.predict(inputs).reshape(rows, paths, count - 1)
        if count > 1
        else np.empty((rows, paths, 0))
    )
    states = np.concatenate(
        [
            np.full((rows, paths, 1), baseline_prediction),
            middle,
            np.broadcast_to(predictions[:, None, None], (rows, paths, 1)),
        ],
        axis=2,
    )
    step_gain = np.diff(states, axis=2)  # gain of the k-th switched feature of each path
    # back from "k-th switched" to "feature j": take each feature's step at its position
    gains = np.take_along_axis(step_gain, position, axis=2)
    return gains.mean(axis=1), predictions
