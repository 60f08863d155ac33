"""The local backend: the tuning spec drives an Optuna study, trials run the real trainer.

Samplers, by Katib algorithm name:

========================  ==============================================================
random                    RandomSampler
grid                      GridSampler over every parameter's grid values
tpe                       TPESampler (constant liar when trials run in parallel)
multivariate-tpe          TPESampler(multivariate=True, constant_liar=True)
cmaes                     CmaEsSampler (needs the ``cmaes`` package)
sobol                     QMCSampler(qmc_type="sobol", scramble=True) (needs ``scipy``)
bayesianoptimization      GPSampler when ``torch`` and ``scipy`` are importable; otherwise
                          TPESampler(multivariate=True) with skopt's n_initial_points: a
                          sequential model-based (Bayesian) optimizer with a Parzen
                          surrogate instead of a Gaussian process, named in the result notes
========================  ==============================================================

The train image ships neither torch (about 700 MB for CPU wheels, three times the rest of
the tuning stack) nor ``cmaes`` or ``scipy``: there, cmaes and sobol are refused with a
ValueError before any trial, and bayesianoptimization uses the TPE stand-in.

medianstop maps to MedianPruner(n_startup_trials=min_trials_required,
n_warmup_steps=start_step), fed with the objective after every epoch.

``parallel_trial_count`` trials run at once, each in its own worker process (spawned once,
so a worker pays the TensorFlow import once, not once a trial).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import multiprocessing
import queue
import random
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, Protocol

import optuna

from kfpkit.components.katib_tune import result as results
from kfpkit.components.katib_tune.spec import (
    CATEGORICAL,
    DISCRETE,
    INT,
    TuneSpec,
    grid_combinations,
)
from kfpkit.components.katib_tune.trial import Reporter, TrialData
from kfpkit.jobs.wait import RemoteJobTimeout

_log = logging.getLogger("kfpkit")


class TrialFailed(RuntimeError):
    """A trial ended in an error (counted against max_failed_trial_count)."""


class TrialRunner(Protocol):
    def run(self, hyperparameters: dict[str, Any], report: Reporter) -> dict[str, float]:
        """Runs one trial; returns its final metrics (printed name -> value). ``report`` is
        called after every epoch and returns True when the trial should stop."""
        ...


def _needs(algorithm: str, *packages: str) -> None:
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise ValueError(
            f"algorithm {algorithm!r} on the local backend needs the Python package(s) "
            f"{missing}, which this environment lacks (the train image does not ship them); "
            "use backend='katib' or another algorithm"
        )


def check_local(spec: TuneSpec) -> None:
    """ValueError for a spec this environment cannot tune locally (before any trial)."""
    if spec.algorithm == "cmaes":
        _needs("cmaes", "cmaes")
    elif spec.algorithm == "sobol":
        _needs("sobol", "scipy")


def make_sampler(spec: TuneSpec, seed: int) -> tuple[optuna.samplers.BaseSampler, str]:
    """The Optuna sampler for the spec's algorithm, and a note naming it."""
    check_local(spec)
    seed = int(spec.setting("random_state", seed))
    algorithm, parallel = spec.algorithm, spec.parallel_trial_count > 1
    if algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed), "RandomSampler"
    if algorithm == "grid":
        # Every combination is enqueued in tune() (in a seeded order): GridSampler itself
        # stops the study through study.optimize, which this loop does not use.
        return optuna.samplers.RandomSampler(seed=seed), "grid (every combination enqueued)"
    if algorithm in ("tpe", "multivariate-tpe"):
        kwargs: dict[str, Any] = {"seed": seed, "multivariate": algorithm == "multivariate-tpe"}
        kwargs["constant_liar"] = parallel or kwargs["multivariate"]
        if spec.setting("n_startup_trials") is not None:
            kwargs["n_startup_trials"] = int(spec.setting("n_startup_trials"))
        candidates = spec.setting("n_ei_candidates", spec.setting("n_EI_candidates"))
        if candidates is not None:
            kwargs["n_ei_candidates"] = int(candidates)
        if spec.setting("prior_weight") is not None:
            kwargs["prior_weight"] = float(spec.setting("prior_weight"))
        if spec.setting("gamma") is not None:  # hyperopt's gamma: the share of "good" trials
            share = float(spec.setting("gamma"))
            kwargs["gamma"] = lambda n: min(math.ceil(share * n), 25)
        return optuna.samplers.TPESampler(
            **kwargs
        ), f"TPESampler(multivariate={kwargs['multivariate']})"
    if algorithm == "cmaes":
        restart = spec.setting("restart_strategy", "none")
        sampler = optuna.samplers.CmaEsSampler(
            seed=seed,
            sigma0=float(spec.setting("sigma")) if spec.setting("sigma") else None,
            restart_strategy=None if restart == "none" else restart,
        )
        return sampler, "CmaEsSampler"
    if algorithm == "sobol":
        sampler = optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed)
        return sampler, "QMCSampler(sobol)"
    if algorithm == "bayesianoptimization":
        startup = int(spec.setting("n_initial_points", 10))
        if all(importlib.util.find_spec(p) for p in ("torch", "scipy")):
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup), "GPSampler"
        sampler = optuna.samplers.TPESampler(
            seed=seed, multivariate=True, constant_liar=True, n_startup_trials=startup
        )
        return sampler, (
            "TPESampler(multivariate=True) standing in for a Gaussian-process optimizer "
            "(GPSampler needs torch, which the image does not ship)"
        )
    raise ValueError(f"algorithm {algorithm!r} has no local sampler")


def make_pruner(spec: TuneSpec) -> optuna.pruners.BasePruner:
    if spec.early_stopping != "medianstop":
        return optuna.pruners.NopPruner()
    settings = spec.medianstop()
    return optuna.pruners.MedianPruner(
        n_startup_trials=settings["min_trials_required"], n_warmup_steps=settings["start_step"]
    )


def distributions(spec: TuneSpec) -> dict[str, optuna.distributions.BaseDistribution]:
    out: dict[str, optuna.distributions.BaseDistribution] = {}
    for p in spec.parameters:
        if p.type in (CATEGORICAL, DISCRETE):
            out[p.name] = optuna.distributions.CategoricalDistribution(list(p.values))
        elif p.type == INT:
            out[p.name] = optuna.distributions.IntDistribution(
                int(p.min or 0), int(p.max or 0), log=p.log, step=int(p.step or 1)
            )
        else:
            out[p.name] = optuna.distributions.FloatDistribution(
                float(p.min or 0), float(p.max or 0), log=p.log, step=p.step
            )
    return out


def tune(
    spec: TuneSpec,
    runner: TrialRunner,
    seed: int = 0,
    timeout: float = math.inf,
    clock: Callable[[], float] = time.monotonic,
) -> results.TuneResult:
    """Runs up to ``max_trial_count`` trials, ``parallel_trial_count`` at a time.

    Stops early when a trial reaches ``objective_goal``. Fails (RuntimeError) when more than
    ``max_failed_trial_count`` trials failed or none succeeded, and (RemoteJobTimeout) after
    ``timeout`` seconds; a trial raising ValueError (the data or settings are wrong for every
    trial) fails the run at once with that error.
    """
    sampler, sampler_note = make_sampler(spec, seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if spec.maximize else "minimize",
        sampler=sampler,
        pruner=make_pruner(spec),
    )
    space = distributions(spec)
    if spec.algorithm == "grid":
        combinations = grid_combinations(spec)
        random.Random(int(spec.setting("random_state", seed))).shuffle(combinations)
        for combination in combinations[: spec.max_trial_count]:
            study.enqueue_trial(combination)
    done: queue.Queue[tuple[int, Any]] = queue.Queue()
    running: dict[int, tuple[optuna.Trial, float]] = {}
    records: list[results.TrialRecord] = []
    asked, failed, stop = 0, 0, False
    deadline = clock() + timeout

    def run_one(trial: optuna.Trial, hp: dict[str, Any], record: results.TrialRecord) -> None:
        def report(step: int, metrics: dict[str, float]) -> bool:
            value = metrics.get(spec.objective_metric)
            if value is None or not math.isfinite(value):
                return False
            record.intermediate.append((step, value))
            trial.report(value, step)
            return trial.should_prune()

        try:
            done.put((trial.number, runner.run(hp, report)))
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            done.put((trial.number, e))

    while True:
        while (
            not stop and len(running) < spec.parallel_trial_count and asked < spec.max_trial_count
        ):
            trial = study.ask(space)
            asked += 1
            record = results.TrialRecord(trial.number, dict(trial.params))
            records.append(record)
            hp = spec.hyperparameters(trial.params)
            running[trial.number] = (trial, clock())
            threading.Thread(target=run_one, args=(trial, hp, record), daemon=True).start()
        if not running:
            break
        try:
            number, outcome = done.get(timeout=0.2)  # short: SIGTERM is handled between waits
        except queue.Empty:
            if clock() > deadline:
                raise RemoteJobTimeout(
                    f"local tuning did not finish within {timeout:g} s "
                    f"({len(records) - len(running)} of {spec.max_trial_count} trials done)"
                ) from None
            continue
        trial, started = running.pop(number)
        record = records[number]
        record.seconds = clock() - started
        if isinstance(outcome, ValueError):
            raise outcome
        if isinstance(outcome, BaseException):
            failed += 1
            record.state, record.error = results.FAILED, f"{type(outcome).__name__}: {outcome}"
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            _log.warning("trial %d failed: %s", number, record.error)
            if failed > spec.max_failed_trial_count:
                raise RuntimeError(
                    f"{failed} trials failed, more than max_failed_trial_count "
                    f"{spec.max_failed_trial_count}; last: {record.error}"
                )
            continue
        record.metrics = dict(outcome)
        pruned = bool(record.intermediate) and trial.should_prune()
        value = outcome.get(spec.objective_metric)
        if pruned:
            record.state = results.PRUNED
            record.objective = record.intermediate[-1][1]
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        elif value is None or not math.isfinite(value):
            failed += 1
            record.state = results.FAILED
            record.error = f"no finite {spec.objective_metric} reported ({value!r})"
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            if failed > spec.max_failed_trial_count:
                raise RuntimeError(f"{failed} trials failed; last: {record.error}")
        else:
            record.objective = float(value)
            study.tell(trial, float(value))
            goal = spec.objective_goal
            if goal is not None and (value >= goal if spec.maximize else value <= goal):
                _log.info("trial %d reached the goal %s=%g", number, spec.objective_metric, goal)
                stop = True
        _log.info("trial %d %s: %s", number, record.state, record.objective)

    succeeded = [r for r in records if r.state == results.SUCCEEDED]
    if not succeeded:
        errors = sorted({r.error for r in records if r.error})
        raise RuntimeError(f"no trial succeeded ({len(records)} run): {'; '.join(errors)[:1000]}")
    best = (max if spec.maximize else min)(succeeded, key=lambda r: r.objective or 0.0)
    return results.TuneResult(
        backend="local",
        best_hyperparameters=spec.hyperparameters(best.params),
        trials=records,
        best=best,
        notes=[f"sampler: {sampler_note}", f"pruner: {type(make_pruner(spec)).__name__}"],
    )


# -- worker processes running the real trainer ----------------------------------------------
def _worker(conn: Any, data: TrialData, scratch: str) -> None:
    """A worker process: imports the trainer once, then runs trials sent over ``conn``."""
    started = time.perf_counter()
    from kfpkit.components.katib_tune.trial import run_trial
    from kfpkit.training import trainer  # noqa: F401 - TensorFlow, before "ready"

    conn.send(("ready", time.perf_counter() - started))
    while True:
        job = conn.recv()
        if job is None:
            return

        def report(step: int, metrics: dict[str, float]) -> bool:
            conn.send(("epoch", step, metrics))
            return bool(conn.recv())

        try:
            outcome = run_trial(data, job, report, scratch)
            conn.send(("done", outcome.metrics))
        except ValueError as e:
            conn.send(("value_error", str(e)))
        except Exception as e:  # noqa: BLE001 - reported to the parent as a failed trial
            conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()[-2000:]}"))


class WorkerPool:
    """``size`` spawned processes running trials of the real trainer on ``data``.

    Spawned (not forked): the parent may hold threads and TensorFlow state. A worker that
    dies fails its trial and is replaced. ``close()`` (and leaving the ``with``) ends them;
    running trials are killed.
    """

    def __init__(self, data: TrialData, size: int, start_timeout: float = 600.0):
        self.data, self.size, self.start_timeout = data, size, start_timeout
        self._context = multiprocessing.get_context("spawn")
        self._free: queue.Queue[tuple[Any, Any]] = queue.Queue()
        self._all: list[tuple[Any, Any]] = []
        self.startup_seconds: list[float] = []  # per worker: spawn + imports
        # trials' model exports; removed by close(), also after killed trials
        self.scratch = tempfile.mkdtemp(prefix="kfpkit-tune-")
        self._lock = threading.Lock()
        self._closed = False

    def _spawn(self) -> tuple[Any, Any]:
        parent, child = self._context.Pipe()
        proc = self._context.Process(
            target=_worker, args=(child, self.data, self.scratch), daemon=True
        )
        with self._lock:  # close() ends every process started before it, none starts after
            if self._closed:  # a trial thread replacing its worker after a cancel
                raise TrialFailed("the trial pool is closed")
            begun = time.perf_counter()
            proc.start()
            self._all.append((proc, parent))
        child.close()
        if not parent.poll(self.start_timeout):
            raise RuntimeError(f"trial worker did not start within {self.start_timeout:g} s")
        try:
            parent.recv()
        except EOFError:
            raise RuntimeError(f"trial worker exited at start (code {proc.exitcode})") from None
        self.startup_seconds.append(time.perf_counter() - begun)
        return proc, parent

    def __enter__(self) -> WorkerPool:
        # Started together, so their imports overlap.
        starters = [
            threading.Thread(target=lambda: self._free.put(self._spawn()), daemon=True)
            for _ in range(self.size)
        ]
        try:
            for t in starters:
                t.start()
            for t in starters:
                t.join()
            if self._free.qsize() != self.size:
                raise RuntimeError("trial workers failed to start")
        except BaseException:
            for t in starters:  # a cancel mid-start: let every spawn finish, then end them all
                if t.is_alive():
                    t.join(self.start_timeout)
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, hyperparameters: dict[str, Any], report: Reporter) -> dict[str, float]:
        proc, conn = self._free.get()
        try:
            conn.send(hyperparameters)
            while True:
                message = conn.recv()
                if message[0] == "epoch":
                    conn.send(report(message[1], message[2]))
                    continue
                self._free.put((proc, conn))
                if message[0] == "done":
                    return dict(message[1])
                if message[0] == "value_error":
                    raise ValueError(message[1])
                raise TrialFailed(message[1])
        except (EOFError, OSError) as e:
            code = proc.exitcode
            self._free.put(self._spawn())
            raise TrialFailed(f"trial worker died (exit code {code}): {e}") from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
        for _proc, conn in self._all:
            with contextlib.suppress(OSError, ValueError):  # already gone
                conn.send(None)
        for proc, conn in self._all:
            proc.join(2)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
            conn.close()
        self._all.clear()
        shutil.rmtree(self.scratch, ignore_errors=True)
