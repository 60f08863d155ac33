"""Scores a served model on a test split, overall and per slice, against a baseline model.

Pure runtime (no kfp). Models are called the way a server calls them: the SavedModel's
``serving_default`` signature on raw feature tensors (see ``kfpkit.tabular.ServingModel``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kfpkit import tabular
from kfpkit.components.evaluate import metrics as m

_log = logging.getLogger("kfpkit")


@dataclass(frozen=True)
class EvaluateRequest:
    model_path: str
    test_path: str
    baseline_path: str | None = None
    label_column: str = "employed"
    slice_columns: tuple[str, ...] = ()
    rule: m.BlessingRule = m.BlessingRule()


@dataclass
class EvaluationResult:
    candidate: dict[str, Any]
    baseline: dict[str, Any] | None
    slices: dict[str, dict[str, dict[str, Any]]]
    confusion_matrix: dict[str, Any]
    roc_curve: list[dict[str, float]]
    decision: m.Decision
    report: str


def _probabilities(model: tabular.ServingModel, table: Any, name: str) -> np.ndarray:
    scores = model.predict_table(table)
    if scores.shape != (table.num_rows,) or not np.all((scores >= 0) & (scores <= 1)):
        raise ValueError(f"{name}: the model's output is not one probability in [0, 1] per row")
    return scores


def _columns(models: Sequence[tabular.ServingModel], request: EvaluateRequest) -> list[str]:
    names = [s.name for model in models for s in model.feature_specs]
    names += [request.label_column, *request.slice_columns]
    return list(dict.fromkeys(names))


def evaluate(request: EvaluateRequest) -> EvaluationResult:
    """Loads both models, scores the test split, applies the blessing rule."""
    model = tabular.ServingModel(request.model_path, "model")
    baseline = (
        tabular.ServingModel(request.baseline_path, "baseline_model")
        if request.baseline_path
        else None
    )
    models = [model] if baseline is None else [model, baseline]
    table = tabular.read_split(request.test_path, "test_data", _columns(models, request))
    labels = tabular.binary_labels(table, request.label_column, "test_data")
    scores = _probabilities(model, table, "model")
    candidate = m.binary_metrics(labels, scores)
    baseline_metrics = (
        m.binary_metrics(labels, _probabilities(baseline, table, "baseline_model"))
        if baseline is not None
        else None
    )
    slices = m.slice_metrics(
        labels, scores, {c: table[c].to_numpy(zero_copy_only=False) for c in request.slice_columns}
    )
    decision = m.decide(request.rule, candidate, baseline_metrics)
    _log.info("Evaluation: blessed=%s; %s", decision.blessed, "; ".join(decision.reasons))
    return EvaluationResult(
        candidate=candidate,
        baseline=baseline_metrics,
        slices=slices,
        confusion_matrix=m.confusion_matrix(labels, scores),
        roc_curve=m.roc_curve(labels, scores),
        decision=decision,
        report=m.report_markdown(request.rule, decision, candidate, baseline_metrics, slices),
    )
