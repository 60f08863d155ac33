"""Launcher of evaluate: parses the executor input, evaluates, records the outputs.

Run inside the train image as
``python3 -m kfpkit.components.evaluate.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

import json
import logging
import os

from kfpkit.components.evaluate import defaults, intervals
from kfpkit.components.evaluate import metrics as m
from kfpkit.components.evaluate.evaluator import EvaluateRequest, EvaluationResult, evaluate
from kfpkit.explain import attributions as attr
from kfpkit.runtime.executor import (
    Executor,
    main,
    uri_to_path,
    write_text_artifact,
)
from kfpkit.runtime.model_versions import versions

_log = logging.getLogger("kfpkit")
EXPLANATION_FILE = "explanation.json"


def baseline_path(executor: Executor) -> str | None:
    """The baseline: the ``baseline_model`` artifact, or the newest version published under
    ``baseline_model_dir``; None when neither holds a model (a first run)."""
    baseline = executor.input("baseline_model")
    directory = executor.param("baseline_model_dir", defaults.BASELINE_MODEL_DIR)
    if baseline is not None and baseline.uri and directory:
        raise ValueError("Give baseline_model or baseline_model_dir, not both")
    if directory:
        path = uri_to_path(directory)
        if not versions(path):
            _log.info("No model published under %s yet: evaluating without a baseline", directory)
            return None
        return path
    # An unconnected optional input, or one a pipeline left without files, is no baseline.
    return baseline.path if baseline is not None and baseline.uri else None


def request_from(executor: Executor) -> EvaluateRequest:
    model = executor.required_input("model")
    test_data = executor.required_input("test_data")
    slice_columns = executor.string_list_param("slice_columns")
    rule = m.BlessingRule(
        metric=executor.param("metric", defaults.METRIC),
        absolute_threshold=executor.number_param("absolute_threshold", defaults.ABSOLUTE_THRESHOLD),
        max_regression=executor.number_param("max_regression", defaults.MAX_REGRESSION),
        min_improvement=executor.number_param("min_improvement", defaults.MIN_IMPROVEMENT),
        min_lower_bound=executor.number_param("min_lower_bound", defaults.MIN_LOWER_BOUND),
        require_noninferiority=_flag(
            executor, "require_noninferiority", defaults.REQUIRE_NONINFERIORITY
        ),
        noninferiority_margin=executor.number_param(
            "noninferiority_margin", defaults.NONINFERIORITY_MARGIN
        ),
        slice_thresholds=executor.json_param("slice_thresholds", {}) or {},
    )
    settings = intervals.BootstrapSettings(
        resamples=_integer(executor, "bootstrap_resamples", defaults.BOOTSTRAP_RESAMPLES),
        seed=_integer(executor, "seed", defaults.SEED),
        confidence=executor.number_param("confidence", defaults.CONFIDENCE),
    )
    return EvaluateRequest(
        model_path=model.path,
        test_path=test_data.path,
        baseline_path=baseline_path(executor),
        label_column=executor.required_param("label_column"),
        slice_columns=slice_columns,
        slice_bins=executor.json_param("slice_bins", {}) or {},
        rule=rule,
        bootstrap=settings,
        explain_rows=_explain_rows(executor),
        attribution=attr.Settings(
            method=executor.param("attribution_method", defaults.ATTRIBUTION_METHOD),
            seed=settings.seed,
        ),
    )


def _explain_rows(executor: Executor) -> int:
    rows = _integer(executor, "explain_rows", defaults.EXPLAIN_ROWS)
    if rows < 0:
        raise ValueError(f"explain_rows must be >= 0 (0: no attributions), not {rows}")
    return rows


def _integer(executor: Executor, name: str, default: int) -> int:
    value = executor.number_param(name, default)
    if value != int(value):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    return int(value)


def _flag(executor: Executor, name: str, default: bool) -> bool:
    value = executor.param(name, default)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, not {value!r}")
    return value


def run(executor: Executor) -> None:
    request = request_from(executor)
    result = evaluate(request)
    overall = executor.output("metrics")
    overall.metadata.update({k: v for k, v in result.candidate.items() if v is not None})
    if result.baseline is not None:
        overall.metadata.update(
            {f"baseline_{k}": v for k, v in result.baseline.items() if v is not None}
        )
    overall.metadata.update(
        {"blessed": result.decision.blessed, "blessing_metric": request.rule.metric}
    )
    for column, values in result.slices.items():  # flat scalars: KFP's UI shows a table
        for value, sliced in values.items():
            for name in ("count", "accuracy", "auc"):
                if sliced[name] is not None:
                    overall.metadata[f"{column}={value}/{name}"] = sliced[name]
    _record_uncertainty(overall.metadata, result, request.rule.metric)
    classification = executor.output("classification_metrics")
    classification.metadata.update(
        {"confusionMatrix": result.confusion_matrix, "confidenceMetrics": result.roc_curve}
    )
    write_text_artifact(executor.output("report").path, result.report)
    _record_explanation(executor, overall.metadata, result)
    executor.set_output_param("blessed", result.decision.blessed)


def _record_explanation(executor: Executor, metadata: dict, result: EvaluationResult) -> None:
    """Global importance as ``attribution/<feature>`` scalars; the whole summary (method,
    baseline, per slice importance) as ``explanation.json`` in the ``explanation`` artifact,
    which register_model turns into Vertex AI's explanation spec."""
    summary = result.explanation
    if summary is not None:
        metadata.update({f"attribution/{k}": v for k, v in summary["importance"].items()})
    if "explanation" not in executor.output_artifacts:  # a pipeline compiled before it
        return
    artifact = executor.output("explanation")
    doc = summary if summary is not None else {"rows": 0}
    artifact.metadata.update({k: doc[k] for k in ("method", "rows", "baseline_prediction",
                                                  "max_completeness_gap") if k in doc})  # fmt: skip
    os.makedirs(artifact.path, exist_ok=True)
    # keys unsorted: the importance stays largest first
    text = json.dumps(doc, indent=1)
    write_text_artifact(os.path.join(artifact.path, EXPLANATION_FILE), text)


def _record_uncertainty(metadata: dict, result: EvaluationResult, metric: str) -> None:
    """Intervals as flat ``<metric>_low``/``_high`` scalars (KFP's UI shows a table), the
    paired difference as ``difference_<metric>_low/high`` (per slice: of the blessing
    ``metric``, with the baseline's value), fairness gaps and the ECE."""

    def put(prefix: str, bands: dict) -> None:
        for name, band in bands.items():
            if band is not None:
                metadata[f"{prefix}{name}_low"], metadata[f"{prefix}{name}_high"] = band

    if result.intervals is not None:
        put("", result.intervals.models.get("model", {}))
        put("baseline_", result.intervals.models.get("baseline", {}))
        put("difference_", result.intervals.difference)
    for column, values in (result.slice_intervals or {}).items():
        for value, found in values.items():
            put(f"{column}={value}/", {"auc": found.models.get("model", {}).get("auc")})
            put(f"{column}={value}/difference_", {metric: found.difference.get(metric)})
    for column, values in (result.baseline_slices or {}).items():
        for value, sliced in values.items():
            if sliced.get(metric) is not None:
                metadata[f"{column}={value}/baseline_{metric}"] = sliced[metric]
    for column, gaps in (result.fairness or {}).items():
        for name, gap in gaps.items():
            if name not in ("rates", "excluded") and gap is not None:
                metadata[f"{column}/{name}"] = gap
    if result.calibration is not None:
        metadata["expected_calibration_error"] = result.calibration["expected_calibration_error"]


if __name__ == "__main__":
    main(run)
