"""The Katib backend: a ``kubeflow.org/v1beta1`` Experiment built with Katib's own models.

:func:`build_experiment` turns a :class:`TuneSpec` into the Experiment (through
``kubeflow_katib_api.models``, so the document is what Katib's Go types accept);
:func:`webhook_errors` applies the rules of Katib's validating admission webhook
(``pkg/webhook/v1beta1/experiment/validator/validator.go``) to any Experiment document. Katib's
CRD carries no schema, so a typo the webhook does not catch only shows as a stuck experiment:
the check runs before anything is submitted. :func:`run_experiment` creates (or, after a
restart, resumes) the Experiment by its deterministic name, waits, and reads
``status.currentOptimalTrial``.

The trial is a batch Job running :mod:`kfpkit.components.katib_tune.trial` in the train image;
Katib substitutes ``${trialParameters.<name>}`` in its command and the StdOut collector reads
the ``<time> name=value`` lines it prints.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from kubeflow_katib_api import models

from kfpkit.components.katib_tune import result as results
from kfpkit.components.katib_tune.spec import DOUBLE, INT, TuneSpec
from kfpkit.components.katib_tune.trial import TrialData
from kfpkit.jobs import kube, wait

GROUP, VERSION, PLURAL, KIND = "kubeflow.org", "v1beta1", "experiments", "Experiment"
TRIAL_PLURAL = "trials"
EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"
PRIMARY_CONTAINER = "training"
SUCCESS_CONDITION = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
FAILURE_CONDITION = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
# Katib's StdOut collector default: name=value (two capture groups: name, value).
METRICS_FORMAT = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
# Trial names are <experiment>-<8 characters> and must stay labels with room for Job suffixes.
MAX_EXPERIMENT_NAME = 40
_KATIB_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?\Z")
_PARAM_REF = re.compile(r"\$\{trialParameters\.[^}]+\}")
_META_REF = re.compile(
    r"^\$\{trialSpec\.(Name|Namespace|Kind|APIVersion|Labels\[.+\]|Annotations\[.+\])\}$"
)
_KNOWN_ALGORITHMS = (
    "random",
    "grid",
    "tpe",
    "multivariate-tpe",
    "cmaes",
    "sobol",
    "bayesianoptimization",
    "hyperband",
    "enas",
    "darts",
    "pbt",
)
_COLLECTORS = ("StdOut", "File", "TensorFlowEvent", "PrometheusMetric", "Custom", "None", "Push")


def _text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _feasible_space(p: Any) -> models.V1beta1FeasibleSpace:
    if p.type in (DOUBLE, INT):
        return models.V1beta1FeasibleSpace(
            min=_text(p.min),
            max=_text(p.max),
            step=_text(p.step) if p.step is not None else None,
            distribution="logUniform" if p.log else "uniform",
        )
    return models.V1beta1FeasibleSpace(list=[str(v) for v in p.values])


def trial_command(spec: TuneSpec, data: TrialData) -> list[str]:
    """The trial container's command, with one ``${trialParameters.<name>}`` per parameter."""
    search_space = [
        {
            k: v
            for k, v in {
                "name": p.name,
                "type": p.type,
                "min": p.min,
                "max": p.max,
                "step": p.step,
                "log": p.log or None,
                "values": list(p.values) or None,
            }.items()
            if v is not None
        }
        for p in spec.parameters
    ]
    command = [
        "python3",
        "-m",
        "kfpkit.components.katib_tune.trial",
        *data.args(),
        "--search-space",
        json.dumps(search_space),
        "--fixed",
        json.dumps(spec.fixed_hyperparameters, sort_keys=True),
    ]
    for p in spec.parameters:
        command += ["--assign", f"{p.name}=${{trialParameters.{p.name}}}"]
    return command


def build_experiment(
    spec: TuneSpec,
    name: str,
    namespace: str,
    image: str,
    data: TrialData,
    service_account: str = "",
    owner: str = "",
) -> dict[str, Any]:
    """The Experiment document (camelCase, as the API server takes it)."""
    if not _KATIB_NAME.match(name) or len(name) > MAX_EXPERIMENT_NAME:
        raise ValueError(
            f"experiment name {name!r} must match {_KATIB_NAME.pattern} and have "
            f"at most {MAX_EXPERIMENT_NAME} characters"
        )
    kube.check_name(namespace, "namespace")
    if not image or any(c.isspace() for c in image):
        raise ValueError(f"trial_image {image!r} must name the trials' image")
    if service_account:
        kube.check_name(service_account, "service_account", 253)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [
            {"name": PRIMARY_CONTAINER, "image": image, "command": trial_command(spec, data)}
        ],
    }
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {
            "backoffLimit": 0,  # a failed trial is Katib's to count, not the Job's to retry
            "template": {
                "metadata": {"annotations": {"sidecar.istio.io/inject": "false"}},
                "spec": pod_spec,
            },
        },
    }
    metrics = [spec.objective_metric, *spec.additional_metrics]
    experiment = models.V1beta1Experiment(
        api_version=f"{GROUP}/{VERSION}",
        kind=KIND,
        metadata=models.IoK8sApimachineryPkgApisMetaV1ObjectMeta(
            name=name,
            namespace=namespace,
            labels={kube.OWNER_LABEL: owner} if owner else None,
        ),
        spec=models.V1beta1ExperimentSpec(
            objective=models.V1beta1ObjectiveSpec(
                type=spec.objective_type,
                goal=spec.objective_goal,
                objective_metric_name=spec.objective_metric,
                additional_metric_names=list(spec.additional_metrics) or None,
                # the last line a trial prints: the exported (best-epoch) model's value
                metric_strategies=[
                    models.V1beta1MetricStrategy(name=m, value="latest") for m in metrics
                ],
            ),
            algorithm=models.V1beta1AlgorithmSpec(
                algorithm_name=spec.algorithm,
                algorithm_settings=[
                    models.V1beta1AlgorithmSetting(name=k, value=v)
                    for k, v in sorted(spec.algorithm_settings.items())
                ]
                or None,
            ),
            early_stopping=models.V1beta1EarlyStoppingSpec(
                algorithm_name="medianstop",
                algorithm_settings=[
                    models.V1beta1EarlyStoppingSetting(name=k, value=str(v))
                    for k, v in spec.medianstop().items()
                ],
            )
            if spec.early_stopping
            else None,
            max_trial_count=spec.max_trial_count,
            parallel_trial_count=spec.parallel_trial_count,
            max_failed_trial_count=spec.max_failed_trial_count,
            parameters=[
                models.V1beta1ParameterSpec(
                    name=p.name, parameter_type=p.type, feasible_space=_feasible_space(p)
                )
                for p in spec.parameters
            ],
            metrics_collector_spec=models.V1beta1MetricsCollectorSpec(
                collector=models.V1beta1CollectorSpec(kind="StdOut"),
                source=models.V1beta1SourceSpec(
                    filter=models.V1beta1FilterSpec(metrics_format=[METRICS_FORMAT])
                ),
            ),
            trial_template=models.V1beta1TrialTemplate(
                primary_container_name=PRIMARY_CONTAINER,
                success_condition=SUCCESS_CONDITION,
                failure_condition=FAILURE_CONDITION,
                trial_parameters=[
                    models.V1beta1TrialParameterSpec(
                        name=p.name, reference=p.name, description=f"{p.type} hyperparameter"
                    )
                    for p in spec.parameters
                ],
                trial_spec=job,
            ),
        ),
    )
    return experiment.to_dict()


def webhook_errors(doc: Mapping[str, Any]) -> list[str]:
    """What Katib's validating webhook would refuse in an Experiment document (empty: none)."""
    errors: list[str] = []
    name = (doc.get("metadata") or {}).get("name") or ""
    if not _KATIB_NAME.match(name):
        errors.append(f"metadata.name {name!r}: must match {_KATIB_NAME.pattern}")
    spec = doc.get("spec") or {}
    counts: dict[str, Any] = {
        k: spec.get(k) for k in ("maxTrialCount", "parallelTrialCount", "maxFailedTrialCount")
    }
    if counts["maxFailedTrialCount"] is not None and counts["maxFailedTrialCount"] < 0:
        errors.append("spec.maxFailedTrialCount: should not be less than 0")
    for key in ("maxTrialCount", "parallelTrialCount"):
        if counts[key] is not None and counts[key] <= 0:
            errors.append(f"spec.{key}: must be greater than 0")
    most = counts["maxTrialCount"]
    if most is not None:
        for key in ("maxFailedTrialCount", "parallelTrialCount"):
            value = counts[key]
            if value is not None and value > most:
                errors.append(f"spec.{key}: should be less than or equal to spec.maxTrialCount")
    objective = spec.get("objective")
    if not objective:
        return [*errors, "spec.objective: must be specified"]
    if objective.get("type") not in ("minimize", "maximize"):
        errors.append(
            f"spec.objective.type {objective.get('type')!r}: must be minimize or maximize"
        )
    if not objective.get("objectiveMetricName"):
        errors.append("spec.objective.objectiveMetricName: must be specified")
    if objective.get("objectiveMetricName") in (objective.get("additionalMetricNames") or []):
        errors.append(
            "spec.objective.additionalMetricNames: should not contain "
            "spec.objective.objectiveMetricName"
        )
    algorithm = (spec.get("algorithm") or {}).get("algorithmName")
    if not algorithm:
        errors.append("spec.algorithm.algorithmName: must be specified")
    elif algorithm not in _KNOWN_ALGORITHMS:
        errors.append(f"spec.algorithm.algorithmName {algorithm!r}: no Suggestion config for it")
    stopping = spec.get("earlyStopping")
    if stopping is not None and stopping.get("algorithmName") != "medianstop":
        errors.append(
            f"spec.earlyStopping.algorithmName {stopping.get('algorithmName')!r}: "
            "no EarlyStopping config for it"
        )
    if spec.get("resumePolicy", "") not in ("", "Never", "LongRunning", "FromVolume"):
        errors.append(f"spec.resumePolicy {spec.get('resumePolicy')!r}: invalid ResumePolicyType")
    errors += _trial_template_errors(spec)
    parameters = spec.get("parameters") or []
    if not parameters and not spec.get("nasConfig"):
        errors.append("spec: spec.parameters or spec.nasConfig must be specified")
    for i, p in enumerate(parameters):
        errors += _parameter_errors(i, p)
    errors += _collector_errors(spec.get("metricsCollectorSpec") or {})
    return errors


def _parameter_errors(i: int, p: Mapping[str, Any]) -> list[str]:
    where, errors = f"spec.parameters[{i}]", []
    kind = p.get("parameterType")
    if kind not in ("int", "double", "categorical", "discrete", "unknown"):
        errors.append(f"{where}.parameterType {kind!r}: not supported")
    space = p.get("feasibleSpace") or {}
    if space.get("distribution", "") not in ("", "uniform", "logUniform", "normal", "logNormal"):
        errors.append(
            f"{where}.feasibleSpace.distribution {space['distribution']!r}: not supported"
        )
    if not any(space.get(k) for k in ("min", "max", "step", "list", "distribution")):
        return [*errors, f"{where}.feasibleSpace: must be specified"]
    if kind in ("int", "double"):
        if space.get("list"):
            errors.append(f"{where}.feasibleSpace.list: not supported for {kind}")
        if not space.get("min") or not space.get("max"):
            errors.append(f"{where}.feasibleSpace.max/min: must be specified for {kind}")
    elif kind in ("categorical", "discrete") and any(space.get(k) for k in ("min", "max", "step")):
        errors.append(f"{where}.feasibleSpace: .max, .min and .step not supported for {kind}")
    return errors


def _trial_template_errors(spec: Mapping[str, Any]) -> list[str]:
    template = spec.get("trialTemplate")
    if not template:
        return ["spec.trialTemplate: must be specified"]
    errors = []
    if not template.get("primaryContainerName"):
        errors.append("spec.trialTemplate.primaryContainerName: must be specified")
    if not template.get("successCondition") or not template.get("failureCondition"):
        errors.append("spec.trialTemplate: successCondition and failureCondition must be specified")
    if template.get("trialParameters") is None:
        return [*errors, "spec.trialTemplate.trialParameters: must be specified"]
    trial_spec, config_map = template.get("trialSpec"), template.get("configMap")
    if (trial_spec is None) == (config_map is None):
        return [*errors, "spec.trialTemplate: exactly one of trialSpec or configMap"]
    if trial_spec is None:
        return errors  # a ConfigMap template is read by Katib's controller, not checked here
    text = json.dumps(trial_spec)
    experiment_parameters = {p.get("name") for p in spec.get("parameters") or []}
    names: set[str] = set()
    references: set[str] = set()
    for i, tp in enumerate(template["trialParameters"]):
        where = f"spec.trialTemplate.trialParameters[{i}]"
        pname, ref = tp.get("name") or "", tp.get("reference") or ""
        if not pname or not ref or "{" in pname or "}" in pname:
            errors.append(f"{where}: name and reference must be specified, name without braces")
            continue
        if pname in names:
            errors.append(f"{where}.name {pname!r}: duplicated")
            continue
        if ref in references:
            errors.append(f"{where}.reference {ref!r}: duplicated")
            continue
        names.add(pname)
        references.add(ref)
        if experiment_parameters and not _META_REF.match(ref) and ref not in experiment_parameters:
            errors.append(f"{where}.reference {ref!r}: does not exist in spec.parameters")
        placeholder = f"${{trialParameters.{pname}}}"
        if placeholder not in text:
            errors.append(f"{where}.name {pname!r}: not found in spec.trialTemplate")
            return errors
        text = text.replace(placeholder, "test-value")
    leftover = _PARAM_REF.findall(text)
    if leftover:
        errors.append(f"spec.trialTemplate: {leftover} not found in spec.trialParameters")
    run_spec = json.loads(text)
    meta = run_spec.get("metadata") or {}
    if meta.get("name") or meta.get("namespace"):
        errors.append("spec.trialTemplate: metadata.name and metadata.namespace must be omitted")
    if not run_spec.get("apiVersion") or not run_spec.get("kind"):
        errors.append("spec.trialTemplate: APIVersion and Kind must be specified")
    if run_spec.get("apiVersion") == "batch/v1" and run_spec.get("kind") == "Job":
        containers = ((run_spec.get("spec") or {}).get("template") or {}).get("spec", {}).get(
            "containers"
        ) or []
        if not containers or not all(c.get("name") and c.get("image") for c in containers):
            errors.append("spec.trialTemplate: the Job needs containers with name and image")
        elif template.get("primaryContainerName") not in {c["name"] for c in containers}:
            errors.append("spec.trialTemplate.primaryContainerName: no container of that name")
    return errors


def _collector_errors(collector_spec: Mapping[str, Any]) -> list[str]:
    kind = (collector_spec.get("collector") or {}).get("kind", "StdOut")
    errors = []
    if kind not in _COLLECTORS:
        errors.append(f"spec.metricsCollectorSpec.collector.kind {kind!r}: invalid")
    formats = ((collector_spec.get("source") or {}).get("filter") or {}).get("metricsFormat") or []
    for fmt in formats:
        try:
            re.compile(fmt)
        except re.error as e:
            errors.append(f"spec.metricsCollectorSpec.source.filter.metricsFormat {fmt!r}: {e}")
            continue
        if not re.match(r".*\(.*\).*\(.*\).*", fmt):
            errors.append(
                f"spec.metricsCollectorSpec.source.filter.metricsFormat {fmt!r}: "
                "two top subexpressions are required"
            )
    return errors


def check_experiment(doc: Mapping[str, Any]) -> None:
    """ValueError listing every rule the document breaks."""
    errors = webhook_errors(doc)
    if errors:
        raise ValueError("the Experiment would be refused by Katib: " + "; ".join(errors))


# -- status ---------------------------------------------------------------------------------
def progress(experiment: Mapping[str, Any]) -> wait.Progress:
    """done / failed (Katib's reason and message) / pending with the trial counts."""
    status = experiment.get("status") or {}
    if kube.condition_true(experiment, "Succeeded"):
        return wait.Progress.done()
    failed = kube.condition(experiment, "Failed")
    if failed is not None and str(failed.get("status")) == "True":
        reason = ": ".join(x for x in (failed.get("reason"), failed.get("message")) if x)
        return wait.Progress.failed(reason)
    counts = ", ".join(
        f"{status.get(k, 0)} {k[6:].lower()}"
        for k in ("trialsRunning", "trialsSucceeded", "trialsFailed", "trialsEarlyStopped")
    )
    return wait.Progress.pending(f"{status.get('trials', 0)} trials: {counts}")


_STATE_OF_CONDITION = {
    "Succeeded": results.SUCCEEDED,
    "EarlyStopped": results.PRUNED,
    "Failed": results.FAILED,
    "Killed": results.FAILED,
    "MetricsUnavailable": results.FAILED,
}


def _latest(observation: Mapping[str, Any] | None, metric: str) -> float | None:
    for m in (observation or {}).get("metrics") or []:
        if m.get("name") == metric:
            try:
                return float(m.get("latest"))
            except (TypeError, ValueError):
                return None
    return None


def trial_record(spec: TuneSpec, trial: Mapping[str, Any], number: int) -> results.TrialRecord:
    status = trial.get("status") or {}
    assignments = {
        a["name"]: a["value"] for a in (trial.get("spec") or {}).get("parameterAssignments") or []
    }
    state = "running"
    for condition, mapped in _STATE_OF_CONDITION.items():
        if kube.condition_true(trial, condition):
            state = mapped
    observation = status.get("observation")
    metrics = {
        m: v
        for m in (spec.objective_metric, *spec.additional_metrics)
        if (v := _latest(observation, m)) is not None
    }
    return results.TrialRecord(
        number=number,
        name=(trial.get("metadata") or {}).get("name", ""),
        params={k: spec.parameter(k).typed(v) for k, v in assignments.items()},
        state=state,
        objective=metrics.get(spec.objective_metric),
        metrics=metrics,
    )


def experiment_result(
    spec: TuneSpec, experiment: Mapping[str, Any], trials: Sequence[Mapping[str, Any]]
) -> results.TuneResult:
    """best_hyperparameters from ``status.currentOptimalTrial``; every trial for the report."""
    meta = experiment.get("metadata") or {}
    optimal = (experiment.get("status") or {}).get("currentOptimalTrial") or {}
    assignments = {a["name"]: a["value"] for a in optimal.get("parameterAssignments") or []}
    if not optimal.get("bestTrialName") or not assignments:
        raise RuntimeError(
            f"Experiment {meta.get('namespace')}/{meta.get('name')} finished "
            "without an optimal trial (no trial succeeded)"
        )
    ordered = sorted(trials, key=lambda t: (t.get("metadata") or {}).get("creationTimestamp", ""))
    records = [trial_record(spec, t, i) for i, t in enumerate(ordered)]
    best = next((r for r in records if r.name == optimal["bestTrialName"]), None)
    if best is None:
        best = results.TrialRecord(
            number=len(records),
            name=optimal["bestTrialName"],
            params={k: spec.parameter(k).typed(v) for k, v in assignments.items()},
            objective=_latest(optimal.get("observation"), spec.objective_metric),
        )
    return results.TuneResult(
        backend="katib",
        best_hyperparameters=spec.hyperparameters(assignments),
        trials=records,
        best=best,
        experiment=f"{meta.get('namespace')}/{meta.get('name')}",
        notes=[f"algorithm: {spec.algorithm} (Katib's suggestion service)"],
    )


def run_experiment(
    objects: kube.CustomObjects,
    doc: dict[str, Any],
    spec: TuneSpec,
    owner: str,
    poll_interval: float,
    timeout: float,
) -> results.TuneResult:
    """Creates or resumes the Experiment, waits for it, and reads its result. SIGTERM and the
    timeout delete it (Katib then deletes its trials)."""
    check_experiment(doc)
    wait.check_wait_settings(poll_interval, timeout)
    namespace, name = doc["metadata"]["namespace"], doc["metadata"]["name"]
    _, resumed = objects.create_or_resume(namespace, doc, owner)
    finished = objects.wait(namespace, name, progress, poll_interval=poll_interval, timeout=timeout)
    trials = list_trials(objects, namespace, name)
    out = experiment_result(spec, finished, trials)
    if resumed:
        out.notes.append("resumed the Experiment a previous attempt of this step created")
    return out


def list_trials(objects: kube.CustomObjects, namespace: str, name: str) -> list[dict[str, Any]]:
    """The Experiment's Trials (empty when the Trial kind is not served or not readable)."""
    from kubernetes.client.exceptions import ApiException

    try:
        listed = kube.call(
            lambda: objects.api.list_namespaced_custom_object(
                GROUP, VERSION, namespace, TRIAL_PLURAL, label_selector=f"{EXPERIMENT_LABEL}={name}"
            ),
            f"list trials of {namespace}/{name}",
        )
    except ApiException as e:
        if e.status in (403, 404):
            return []
        raise
    return list(listed.get("items") or [])


def experiments(api: Any) -> kube.CustomObjects:
    return kube.CustomObjects(api, GROUP, VERSION, PLURAL, KIND)
