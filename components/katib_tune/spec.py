"""The tuning spec of katib_tune: one search space, objective and algorithm for both backends.

Pure (no kfp, no TensorFlow, no Optuna, no Kubernetes). :func:`parse_spec` turns the
component's inputs into a :class:`TuneSpec` and refuses, with a ValueError naming the value,
everything Katib's admission webhook and its suggestion services would refuse (counts,
objective, parameter types and feasible spaces, algorithm settings, grid without steps,
CMA-ES in fewer than two continuous dimensions, medianstop settings) plus what only this
component knows (metric names the trainer never prints, log scales over non-positive values,
a name both fixed and tuned). Nothing is created before this check passes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kfpkit.training.objective_metrics import OBJECTIVE_METRICS

DOUBLE, INT, CATEGORICAL, DISCRETE = "double", "int", "categorical", "discrete"
PARAMETER_TYPES = (DOUBLE, INT, CATEGORICAL, DISCRETE)
OBJECTIVE_TYPES = ("maximize", "minimize")
BACKENDS = ("local", "katib")
# The step's run settings, read by the component and the launcher alike.
DEFAULT_BACKEND = "local"
DEFAULT_NAMESPACE = "kubeflow"
POLL_INTERVAL = 30.0  # seconds between two looks at the Katib Experiment
TIMEOUT = 6 * 3600.0  # seconds the tuning as a whole may take

# Algorithm -> the settings its Katib suggestion service accepts (the service Katib's default
# katib-config runs for it), with a check of each value.
_NON_NEGATIVE_INT = "non-negative integer"
_POSITIVE_FLOAT = "positive number"
ALGORITHM_SETTINGS: dict[str, dict[str, str | tuple[str, ...]]] = {
    "random": {"random_state": _NON_NEGATIVE_INT},  # hyperopt
    "grid": {"random_state": _NON_NEGATIVE_INT},  # optuna
    "tpe": {  # hyperopt (n_startup_trials: Katib's optuna service, when configured for tpe)
        "random_state": _NON_NEGATIVE_INT,
        "n_startup_trials": _NON_NEGATIVE_INT,
        "n_EI_candidates": _NON_NEGATIVE_INT,
        "gamma": _POSITIVE_FLOAT,
        "prior_weight": _POSITIVE_FLOAT,
    },
    "multivariate-tpe": {  # optuna
        "random_state": _NON_NEGATIVE_INT,
        "n_startup_trials": _NON_NEGATIVE_INT,
        "n_ei_candidates": _NON_NEGATIVE_INT,
    },
    "cmaes": {  # goptuna
        "random_state": _NON_NEGATIVE_INT,
        "sigma": _POSITIVE_FLOAT,
        "restart_strategy": ("none", "ipop", "bipop"),
    },
    "sobol": {"random_state": _NON_NEGATIVE_INT},  # goptuna
    "bayesianoptimization": {  # skopt
        "random_state": _NON_NEGATIVE_INT,
        "n_initial_points": _NON_NEGATIVE_INT,
        "base_estimator": ("GP", "RF", "ET", "GBRT"),
        "acq_func": ("gp_hedge", "LCB", "EI", "PI", "EIps", "PIps"),
        "acq_optimizer": ("auto", "sampling", "lbfgs"),
    },
}
ALGORITHMS = tuple(ALGORITHM_SETTINGS)
EARLY_STOPPING = ("", "medianstop")
MEDIANSTOP_DEFAULTS = {"min_trials_required": 3, "start_step": 4}
_GRID_LIMIT = 100_000  # combinations a grid may enumerate


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    min: float | None = None
    max: float | None = None
    step: float | None = None
    log: bool = False
    values: tuple[Any, ...] = ()

    @property
    def continuous(self) -> bool:
        return self.type in (DOUBLE, INT)

    def grid_values(self) -> list[Any]:
        """Every value a grid search visits (min, min+step, ... up to max)."""
        if not self.continuous:
            return list(self.values)
        assert self.min is not None and self.max is not None
        if self.type == INT and self.step is None:
            return list(range(int(self.min), int(self.max) + 1))
        if self.step is None:
            raise ValueError(f"search_space[{self.name!r}]: a grid over a double needs a step")
        count = int(math.floor((self.max - self.min) / self.step + 1e-9)) + 1
        if count > _GRID_LIMIT:
            raise ValueError(f"search_space[{self.name!r}]: the grid has over {_GRID_LIMIT} values")
        values = [round(self.min + i * self.step, 12) for i in range(count)]
        return [int(round(v)) for v in values] if self.type == INT else values

    def typed(self, value: Any) -> Any:
        """A value of this parameter (a Katib assignment is text) as the trainer takes it."""
        if self.type == INT:
            return int(round(float(value)))
        if self.type == DOUBLE:
            return float(value)
        if self.type == DISCRETE:
            number = float(value)
            return int(number) if all(isinstance(v, int) for v in self.values) else number
        text = str(value)
        for v in self.values:
            if str(v) == text:
                return v
        raise ValueError(f"search_space[{self.name!r}]: {value!r} is not one of {self.values}")


@dataclass(frozen=True)
class TuneSpec:
    parameters: tuple[Parameter, ...]
    objective_metric: str = "validation-auc"
    objective_type: str = "maximize"
    objective_goal: float | None = None
    additional_metrics: tuple[str, ...] = ()
    algorithm: str = "tpe"
    algorithm_settings: dict[str, str] = field(default_factory=dict)
    early_stopping: str = ""
    early_stopping_settings: dict[str, str] = field(default_factory=dict)
    max_trial_count: int = 12
    parallel_trial_count: int = 1
    max_failed_trial_count: int = 3
    fixed_hyperparameters: dict[str, Any] = field(default_factory=dict)

    @property
    def maximize(self) -> bool:
        return self.objective_type == "maximize"

    @property
    def tuning(self) -> bool:
        """False for max_trial_count 0: no trials, the fixed hyperparameters are the answer."""
        return self.max_trial_count > 0

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def hyperparameters(self, assignment: Mapping[str, Any]) -> dict[str, Any]:
        """The dict ``train`` takes: the fixed hyperparameters, then the trial's values."""
        tuned = {name: self.parameter(name).typed(value) for name, value in assignment.items()}
        return {**self.fixed_hyperparameters, **tuned}

    def setting(self, name: str, default: Any = None) -> Any:
        return self.algorithm_settings.get(name, default)

    def medianstop(self) -> dict[str, int]:
        return {
            k: int(self.early_stopping_settings.get(k, v)) for k, v in MEDIANSTOP_DEFAULTS.items()
        }

    def grid_size(self) -> int:
        return math.prod(len(p.grid_values()) for p in self.parameters)


def _number(value: Any, what: str, integer: bool = False) -> float:
    if isinstance(value, bool) or value is None or value == "":
        raise ValueError(f"{what} must be a number, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be finite, not {value!r}")
    if integer and number != int(number):
        raise ValueError(f"{what} must be a whole number, not {value!r}")
    return number


def _count(value: Any, what: str, low: int) -> int:
    number = int(_number(value, what, integer=True))
    if number < low:
        raise ValueError(f"{what} must be >= {low}, not {value!r}")
    return number


_PARAMETER_KEYS = {"name", "type", "min", "max", "step", "log", "values"}


def parse_parameter(raw: Any, known: Collection[str] | None) -> Parameter:
    if not isinstance(raw, Mapping):
        raise ValueError(f"search_space entries must be objects, not {raw!r}")
    name = raw.get("name")
    if not isinstance(name, str) or not name or "{" in name or "}" in name:
        raise ValueError(
            f"search_space: parameter name {name!r} must be a non-empty string without '{{' or '}}'"
        )
    where = f"search_space[{name!r}]"
    unknown = sorted(set(raw) - _PARAMETER_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(_PARAMETER_KEYS)}")
    if known is not None and name not in known:
        raise ValueError(
            f"{where}: {name!r} is not a hyperparameter of train; known: {sorted(known)}"
        )
    kind = raw.get("type")
    if kind not in PARAMETER_TYPES:
        raise ValueError(f"{where}: type {kind!r} is not one of {PARAMETER_TYPES}")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise ValueError(f"{where}: log must be true or false, not {log!r}")
    if kind in (CATEGORICAL, DISCRETE):
        extra = [k for k in ("min", "max", "step") if raw.get(k) is not None]
        if extra:
            raise ValueError(f"{where}: {kind} takes a list of values, not {extra}")
        if log:
            raise ValueError(f"{where}: log scale needs a double or int range, not {kind}")
        values = raw.get("values")
        if not isinstance(values, list | tuple) or not values:
            raise ValueError(f"{where}: {kind} needs a non-empty list of values, not {values!r}")
        if kind == DISCRETE:
            for v in values:
                _number(v, f"{where} value")
            numbers = [float(v) for v in values]
            whole = all(
                n.is_integer() and not isinstance(v, float)
                for n, v in zip(numbers, values, strict=True)
            )
            values = [int(n) for n in numbers] if whole else numbers
        elif not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in values):
            raise ValueError(f"{where}: categorical values must be strings or numbers: {values!r}")
        if len({str(v) for v in values}) != len(values):
            raise ValueError(f"{where}: duplicate values in {values!r}")
        return Parameter(name, kind, values=tuple(values))
    if raw.get("values") is not None:
        raise ValueError(f"{where}: a {kind} parameter takes min/max, not a list of values")
    integer = kind == INT
    low = _number(raw.get("min"), f"{where} min", integer)
    high = _number(raw.get("max"), f"{where} max", integer)
    if low > high:
        raise ValueError(f"{where}: min {raw.get('min')!r} > max {raw.get('max')!r}")
    step = None
    if raw.get("step") is not None:
        step = _number(raw.get("step"), f"{where} step", integer)
        if step <= 0:
            raise ValueError(f"{where}: step must be > 0, not {raw.get('step')!r}")
        if log:
            raise ValueError(f"{where}: step and log scale cannot be combined")
    if log and low <= 0:
        raise ValueError(f"{where}: a log scale needs min > 0, not {raw.get('min')!r}")
    return Parameter(name, kind, low, high, step, log)


def _settings(raw: Any, what: str) -> dict[str, str]:
    """Katib settings are name -> text; numbers are accepted and kept as text."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, Sequence) and not isinstance(raw, str):  # Katib's [{name, value}] form
        try:
            raw = {s["name"]: s["value"] for s in raw}
        except (KeyError, TypeError):
            raise ValueError(
                f"{what} must be a dict or a list of {{name, value}}: {raw!r}"
            ) from None
    if not isinstance(raw, Mapping):
        raise ValueError(f"{what} must be a dict of name -> value, not {raw!r}")
    return {str(k): str(v) for k, v in raw.items()}


def _check_algorithm_settings(algorithm: str, settings: Mapping[str, str]) -> None:
    allowed = ALGORITHM_SETTINGS[algorithm]
    for name, value in settings.items():
        if name not in allowed:
            raise ValueError(
                f"algorithm_settings: unknown setting {name!r} for {algorithm!r}; "
                f"known: {sorted(allowed)}"
            )
        rule = allowed[name]
        where = f"algorithm_settings[{name!r}]"
        if isinstance(rule, tuple):
            if value not in rule:
                raise ValueError(f"{where} = {value!r} is not one of {rule}")
        elif rule == _NON_NEGATIVE_INT:
            _count(value, where, 0)
        elif _number(value, where) <= 0:
            raise ValueError(f"{where} must be > 0, not {value!r}")


def parse_spec(
    search_space: Any,
    objective_metric: str = TuneSpec.objective_metric,
    objective_type: str = TuneSpec.objective_type,
    objective_goal: Any = None,
    additional_metrics: Sequence[str] = (),
    algorithm: str = TuneSpec.algorithm,
    algorithm_settings: Any = None,
    early_stopping: str = "",
    early_stopping_settings: Any = None,
    max_trial_count: Any = TuneSpec.max_trial_count,
    parallel_trial_count: Any = TuneSpec.parallel_trial_count,
    max_failed_trial_count: Any = TuneSpec.max_failed_trial_count,
    fixed_hyperparameters: Mapping[str, Any] | None = None,
    known_hyperparameters: Collection[str] | None = None,
) -> TuneSpec:
    """Checks every input; ValueError naming the first bad value. ``known_hyperparameters``
    (the trainer's keys) restricts parameter names when given."""
    max_trials = _count(max_trial_count, "max_trial_count", 0)
    parallel = _count(parallel_trial_count, "parallel_trial_count", 1)
    max_failed = _count(max_failed_trial_count, "max_failed_trial_count", 0)
    fixed = dict(fixed_hyperparameters or {})
    if known_hyperparameters is not None:
        unknown = sorted(set(fixed) - set(known_hyperparameters))
        if unknown:
            raise ValueError(
                f"fixed_hyperparameters: unknown key(s) {unknown}; known: "
                f"{sorted(known_hyperparameters)}"
            )
    if objective_metric not in OBJECTIVE_METRICS:
        raise ValueError(
            f"objective_metric {objective_metric!r} is never printed by the trainer; "
            f"it prints {sorted(OBJECTIVE_METRICS)}"
        )
    if objective_type not in OBJECTIVE_TYPES:
        raise ValueError(f"objective_type {objective_type!r} is not one of {OBJECTIVE_TYPES}")
    goal = None
    if objective_goal is not None and objective_goal != "":
        goal = _number(objective_goal, "objective_goal")
    extra = tuple(additional_metrics or ())
    for metric in extra:
        if metric not in OBJECTIVE_METRICS:
            raise ValueError(
                f"additional_metrics: {metric!r} is never printed by the trainer; "
                f"it prints {sorted(OBJECTIVE_METRICS)}"
            )
    if objective_metric in extra:
        raise ValueError(f"additional_metrics must not contain the objective {objective_metric!r}")
    if len(set(extra)) != len(extra):
        raise ValueError(f"additional_metrics has duplicates: {list(extra)}")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm {algorithm!r} is not one of {ALGORITHMS}")
    settings = _settings(algorithm_settings, "algorithm_settings")
    _check_algorithm_settings(algorithm, settings)
    stopping = early_stopping or ""
    if stopping not in EARLY_STOPPING:
        raise ValueError(f"early_stopping {early_stopping!r} is not one of {EARLY_STOPPING}")
    stop_settings = _settings(early_stopping_settings, "early_stopping_settings")
    if stop_settings and not stopping:
        raise ValueError("early_stopping_settings given without early_stopping='medianstop'")
    for name, value in stop_settings.items():
        if name not in MEDIANSTOP_DEFAULTS:
            raise ValueError(
                f"early_stopping_settings: unknown setting {name!r}; known: "
                f"{sorted(MEDIANSTOP_DEFAULTS)}"
            )
        _count(value, f"early_stopping_settings[{name!r}]", 1)

    if not isinstance(search_space, list | tuple):
        raise ValueError(f"search_space must be a list of parameters, not {search_space!r}")
    parameters = tuple(parse_parameter(p, known_hyperparameters) for p in search_space)
    spec = TuneSpec(
        parameters=parameters,
        objective_metric=objective_metric,
        objective_type=objective_type,
        objective_goal=goal,
        additional_metrics=extra,
        algorithm=algorithm,
        algorithm_settings=settings,
        early_stopping=stopping,
        early_stopping_settings=stop_settings,
        max_trial_count=max_trials,
        parallel_trial_count=parallel,
        max_failed_trial_count=max_failed,
        fixed_hyperparameters=fixed,
    )
    if not spec.tuning:  # no trials: the search space is not used, only reported
        return spec
    if not parameters:
        raise ValueError(
            "search_space is empty: name at least one parameter to tune "
            "(or set max_trial_count to 0 to train with the fixed hyperparameters)"
        )
    names = [p.name for p in parameters]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"search_space: duplicate parameter name(s) {duplicates}")
    both = sorted(set(names) & set(fixed))
    if both:
        raise ValueError(f"{both} are both tuned (search_space) and fixed (fixed_hyperparameters)")
    if parallel > max_trials:
        raise ValueError(f"parallel_trial_count {parallel} > max_trial_count {max_trials}")
    if max_failed > max_trials:
        raise ValueError(f"max_failed_trial_count {max_failed} > max_trial_count {max_trials}")
    if algorithm == "grid":
        for p in parameters:
            if p.type == DOUBLE and p.step is None:
                raise ValueError(
                    f"search_space[{p.name!r}]: grid over the continuous range "
                    f"[{p.min:g}, {p.max:g}] needs a step"
                )
            if p.log:
                raise ValueError(
                    f"search_space[{p.name!r}]: grid cannot use a log scale; "
                    "list the values as discrete"
                )
        size = spec.grid_size()
        if max_trials > size:
            raise ValueError(f"max_trial_count {max_trials} > the grid's {size} combinations")
    if algorithm == "cmaes" and sum(p.continuous for p in parameters) < 2:
        raise ValueError(
            f"algorithm 'cmaes' needs at least two double or int parameters (search space: {names})"
        )
    return spec


def grid_combinations(spec: TuneSpec) -> list[dict[str, Any]]:
    """Every grid point, in a fixed order."""
    names = [p.name for p in spec.parameters]
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(p.grid_values() for p in spec.parameters))
    ]
