"""Launcher of katib_tune: parses the executor input, tunes on the chosen backend, records
the outputs.

Run inside the train image as
``python3 -m kfpkit.components.katib_tune.launcher --executor_input '{{$}}'``.

Each backend's libraries (the Kubernetes client and Katib's models, or Optuna and, in the
trial workers, TensorFlow) are imported only when that backend runs: a step with
``max_trial_count=0`` imports none of them.
"""

from __future__ import annotations

import logging
from typing import Any

from kfpkit.components.katib_tune import spec as specs
from kfpkit.components.katib_tune.report import tuning_html
from kfpkit.components.katib_tune.result import TuneResult
from kfpkit.components.katib_tune.spec import BACKENDS, TuneSpec, parse_spec
from kfpkit.components.katib_tune.trial import TrialData
from kfpkit.hyperparameters import KEYS, parse_hyperparameters
from kfpkit.jobs.wait import check_wait_settings
from kfpkit.runtime.executor import Executor, main, write_text_artifact
from kfpkit.runtime.identity import executor_identity, step_key

_log = logging.getLogger("kfpkit")
EXPERIMENT_PREFIX = "katib-tune"


def spec_from(executor: Executor, known: Any = None) -> TuneSpec:
    fixed = executor.json_param("fixed_hyperparameters", {}) or {}
    if not isinstance(fixed, dict):
        raise ValueError(f"fixed_hyperparameters must be a JSON object, not {fixed!r}")
    try:  # the trainer's rules, every bad key and value at once, tuning or not
        parse_hyperparameters(fixed)
    except ValueError as e:
        raise ValueError(f"fixed_hyperparameters: {e}") from None
    return parse_spec(
        search_space=executor.json_param("search_space", []),
        objective_metric=executor.param("objective_metric", TuneSpec.objective_metric),
        objective_type=executor.param("objective_type", TuneSpec.objective_type),
        objective_goal=executor.param("objective_goal"),
        additional_metrics=executor.string_list_param("additional_metrics"),
        algorithm=executor.param("algorithm", TuneSpec.algorithm),
        algorithm_settings=executor.json_param("algorithm_settings", {}),
        early_stopping=executor.param("early_stopping", ""),
        early_stopping_settings=executor.json_param("early_stopping_settings", {}),
        max_trial_count=executor.param("max_trial_count", TuneSpec.max_trial_count),
        parallel_trial_count=executor.param("parallel_trial_count", TuneSpec.parallel_trial_count),
        max_failed_trial_count=executor.param(
            "max_failed_trial_count", TuneSpec.max_failed_trial_count
        ),
        fixed_hyperparameters=fixed,
        known_hyperparameters=known,
    )


def check_against_trainer(spec: TuneSpec) -> TuneSpec:
    """The trainer's own rules (kfpkit.hyperparameters, no TensorFlow) on the ends of every
    range: a learning rate of 0 fails here, before any trial."""
    for p in spec.parameters:
        for value in (p.min, p.max) if p.continuous else p.values:
            candidate = {**spec.fixed_hyperparameters, p.name: value}
            try:
                parse_hyperparameters(candidate)
            except ValueError as e:
                raise ValueError(f"search_space[{p.name!r}] value {value!r}: {e}") from e
    return spec


def trial_data(executor: Executor, uris: bool) -> TrialData:
    """The splits as URIs (Katib: a Job without KFP's mounts reads them itself) or as this
    step's mounted paths (local)."""

    def where(name: str) -> str:
        artifact = executor.required_input(name)
        return artifact.uri if uris else artifact.path

    schema = executor.input("schema")
    return TrialData(
        train=where("train_data"),
        validation=where("validation_data"),
        schema=(schema.uri if uris else schema.path) if schema is not None else "",
        label_column=executor.required_param("label_column"),
        feature_columns=executor.string_list_param("feature_columns"),
        exclude_columns=executor.string_list_param("exclude_columns"),
    )


def run_katib(executor: Executor, spec: TuneSpec) -> TuneResult:
    from kfpkit.components.katib_tune import experiment as katib
    from kfpkit.jobs import kube

    namespace = kube.check_name(executor.param("namespace", specs.DEFAULT_NAMESPACE), "namespace")
    identity = executor_identity(executor.raw)
    name = kube.object_name(EXPERIMENT_PREFIX, identity, katib.MAX_EXPERIMENT_NAME)
    owner = step_key(identity)
    doc = katib.build_experiment(
        spec,
        name=name,
        namespace=namespace,
        image=executor.param("trial_image", ""),
        data=trial_data(executor, uris=True),
        service_account=executor.param("service_account", ""),
        owner=owner,
    )
    poll = executor.number_param("poll_interval", specs.POLL_INTERVAL)
    timeout = executor.number_param("timeout", specs.TIMEOUT)
    check_wait_settings(poll, timeout)
    objects = katib.experiments(kube.api_client())
    return katib.run_experiment(objects, doc, spec, owner, poll, timeout)


def run_local(executor: Executor, spec: TuneSpec) -> TuneResult:
    from kfpkit.components.katib_tune import local

    local.check_local(spec)
    timeout = executor.number_param("timeout", specs.TIMEOUT)
    check_wait_settings(1.0, timeout)
    # KFP passes the component's declared seed; an input without one leaves local.tune's
    seed = executor.param("seed")
    options = {} if seed is None else {"seed": int(executor.number_param("seed", seed))}
    with local.WorkerPool(trial_data(executor, uris=False), spec.parallel_trial_count) as pool:
        result = local.tune(spec, pool, timeout=timeout, **options)
        result.notes.append(
            "trial worker start-up (spawn + imports) seconds: "
            + ", ".join(f"{s:.1f}" for s in pool.startup_seconds)
        )
    return result


def run(executor: Executor) -> None:
    backend = executor.param("backend", specs.DEFAULT_BACKEND)
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {BACKENDS}")
    spec = check_against_trainer(spec_from(executor, KEYS))
    if not spec.tuning:
        result = TuneResult(
            backend=backend,
            best_hyperparameters=dict(spec.fixed_hyperparameters),
            notes=["max_trial_count 0: no tuning; the fixed hyperparameters are passed on"],
        )
    else:
        result = run_katib(executor, spec) if backend == "katib" else run_local(executor, spec)
    executor.set_output_param("best_hyperparameters", result.best_hyperparameters)
    executor.output("metrics").metadata.update(result.metrics(spec.objective_metric))
    title = f"Hyperparameter tuning ({spec.algorithm}, {backend})"
    write_text_artifact(executor.output("report").path, tuning_html(spec, result, title))
    _log.info("best hyperparameters: %s", result.best_hyperparameters)


if __name__ == "__main__":
    main(run)
