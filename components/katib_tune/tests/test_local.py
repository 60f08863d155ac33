"""The local backend's study loop on a cheap test objective with a known optimum: every
algorithm finds it within a stated number of trials, medianstop prunes bad trials early,
trials run in parallel, failures count against max_failed_trial_count."""

from __future__ import annotations

import importlib.util
import math
import threading
import time

import pytest

from kfpkit.components.katib_tune import local
from kfpkit.components.katib_tune import spec as specs
from kfpkit.jobs.wait import RemoteJobTimeout

# optimum at learning_rate = 0.01 (log scale) and dropout = 0.3: objective 0
SPACE = [
    {"name": "learning_rate", "type": "double", "min": 1e-4, "max": 1.0, "log": True},
    {"name": "dropout", "type": "double", "min": 0.0, "max": 0.6},
]
GRID_SPACE = [
    {"name": "learning_rate", "type": "discrete", "values": [1e-4, 1e-3, 1e-2, 1e-1, 1.0]},
    {"name": "dropout", "type": "double", "min": 0.0, "max": 0.6, "step": 0.1},
]
EPOCHS = 6


def quality(hp: dict) -> float:
    return -((math.log10(hp["learning_rate"]) + 2) ** 2) - 10 * (hp["dropout"] - 0.3) ** 2


class Bowl:
    """A trial converging towards quality(hp) over EPOCHS epochs (a learning curve)."""

    def __init__(self, sleep: float = 0.0):
        self.epochs_run: list[int] = []
        self.sleep = sleep
        self.active = self.max_active = 0
        self._lock = threading.Lock()

    def run(self, hp, report):
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            final, epochs = quality(hp), 0
            for epoch in range(1, EPOCHS + 1):
                epochs = epoch
                time.sleep(self.sleep)
                if report(epoch, {"validation-auc": final - 0.5 * (EPOCHS - epoch) / EPOCHS}):
                    break
            self.epochs_run.append(epochs)
            return {"validation-auc": final, "validation-loss": -final}
        finally:
            with self._lock:
                self.active -= 1


def missing(*packages: str) -> list[str]:
    return [p for p in packages if importlib.util.find_spec(p) is None]


# algorithm -> (trials allowed, how close to the optimum 0 the best must get); fixed seeds
BUDGETS = {
    "random": (60, -0.05),
    "grid": (35, 0.0),  # the grid holds the optimum exactly
    "tpe": (40, -0.05),
    "multivariate-tpe": (40, -0.05),
    "bayesianoptimization": (40, -0.05),
    "cmaes": (40, -0.05),
    "sobol": (40, -0.1),
}
NEEDS = {"cmaes": ("cmaes",), "sobol": ("scipy",)}


@pytest.mark.parametrize("algorithm", specs.ALGORITHMS)
def test_each_algorithm_finds_the_optimum(algorithm):
    if missing(*NEEDS.get(algorithm, ())):
        pytest.skip(
            f"{algorithm} needs {NEEDS[algorithm]}, not in this environment "
            "(test_missing_packages_are_refused covers the refusal)"
        )
    trials, target = BUDGETS[algorithm]
    space = GRID_SPACE if algorithm == "grid" else SPACE
    spec = specs.parse_spec(space, algorithm=algorithm, max_trial_count=trials)
    result = local.tune(spec, Bowl(), seed=0)
    assert result.best is not None and result.best.objective >= target, (
        algorithm,
        result.best.objective,
        result.best.params,
    )
    assert len(result.trials) <= trials
    assert set(result.best_hyperparameters) == {"learning_rate", "dropout"}


@pytest.mark.parametrize("algorithm", ["cmaes", "sobol"])
def test_missing_packages_are_refused(algorithm):
    if not missing(*NEEDS[algorithm]):
        pytest.skip(f"{NEEDS[algorithm]} installed here")
    spec = specs.parse_spec(SPACE, algorithm=algorithm, max_trial_count=4)
    with pytest.raises(ValueError, match=f"{algorithm!r} on the local backend needs"):
        local.tune(spec, Bowl())


def test_bayesianoptimization_says_what_stands_in_for_the_gaussian_process():
    spec = specs.parse_spec(SPACE, algorithm="bayesianoptimization", max_trial_count=3)
    _, note = local.make_sampler(spec, 0)
    if missing("torch", "scipy"):
        assert "TPESampler(multivariate=True) standing in" in note
    else:
        assert note == "GPSampler"


def test_medianstop_prunes_bad_trials_early():
    bowl = Bowl()
    spec = specs.parse_spec(
        SPACE,
        algorithm="random",
        max_trial_count=20,
        early_stopping="medianstop",
        early_stopping_settings={"min_trials_required": 3, "start_step": 2},
    )
    result = local.tune(spec, bowl, seed=1)
    pruned = [t for t in result.trials if t.state == "pruned"]
    succeeded = [t for t in result.trials if t.state == "succeeded"]
    assert pruned and succeeded
    assert all(len(t.intermediate) < EPOCHS for t in pruned)  # stopped before the last epoch
    assert all(len(t.intermediate) >= 2 for t in pruned)  # never before start_step
    assert sum(bowl.epochs_run) < 20 * EPOCHS
    assert all(t.number >= 3 for t in pruned)  # the first min_trials_required run whole
    # what was pruned was worse than the median of what finished
    median = sorted(t.objective for t in succeeded)[len(succeeded) // 2]
    assert all(quality(result.trials[t.number].params) < median for t in pruned)


def test_parallel_trials_run_at_the_same_time():
    bowl = Bowl(sleep=0.02)
    spec = specs.parse_spec(SPACE, algorithm="tpe", max_trial_count=6, parallel_trial_count=2)
    result = local.tune(spec, bowl, seed=0)
    assert bowl.max_active == 2 and len(result.trials) == 6


def test_goal_stops_the_study():
    spec = specs.parse_spec(GRID_SPACE, algorithm="grid", max_trial_count=35, objective_goal=-0.5)
    result = local.tune(spec, Bowl(), seed=0)
    assert result.best.objective >= -0.5 and len(result.trials) < 35


def test_minimize():
    spec = specs.parse_spec(
        GRID_SPACE,
        algorithm="grid",
        max_trial_count=35,
        objective_metric="validation-loss",
        objective_type="minimize",
    )
    result = local.tune(spec, Bowl(), seed=0)
    assert result.best.objective == pytest.approx(0.0)


class Failing:
    def __init__(self, every: int):
        self.calls, self.every = 0, every

    def run(self, hp, report):
        self.calls += 1
        if self.calls % self.every == 0:
            raise local.TrialFailed("OOM in trial")
        return {"validation-auc": quality(hp)}


def test_failed_trials_are_counted_and_reported():
    spec = specs.parse_spec(SPACE, algorithm="random", max_trial_count=6, max_failed_trial_count=3)
    result = local.tune(spec, Failing(every=3), seed=0)
    assert result.counts() == {"succeeded": 4, "pruned": 0, "failed": 2}
    assert all("OOM in trial" in t.error for t in result.trials if t.state == "failed")


def test_too_many_failures_fail_the_run():
    spec = specs.parse_spec(SPACE, algorithm="random", max_trial_count=6, max_failed_trial_count=1)
    with pytest.raises(RuntimeError, match="2 trials failed, more than max_failed_trial_count 1"):
        local.tune(spec, Failing(every=1), seed=0)


def test_all_trials_failing_is_an_error_naming_why():
    spec = specs.parse_spec(SPACE, algorithm="random", max_trial_count=3, max_failed_trial_count=3)
    with pytest.raises(RuntimeError, match="no trial succeeded .*OOM in trial"):
        local.tune(spec, Failing(every=1), seed=0)


def test_a_trial_value_error_fails_at_once():
    class BadData:
        def run(self, hp, report):
            raise ValueError("train_data: label column 'employed' not in the data")

    spec = specs.parse_spec(SPACE, algorithm="random", max_trial_count=5)
    with pytest.raises(ValueError, match="label column 'employed'"):
        local.tune(spec, BadData(), seed=0)


def test_timeout():
    spec = specs.parse_spec(SPACE, algorithm="random", max_trial_count=50)
    with pytest.raises(RemoteJobTimeout, match="within 0.5 s"):
        local.tune(spec, Bowl(sleep=0.05), seed=0, timeout=0.5)
