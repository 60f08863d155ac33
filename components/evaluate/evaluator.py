"""Scores a served model on a test split, overall and per slice, against a baseline model.

Pure runtime (no kfp). Models are called the way a server calls them: the SavedModel's
``serving_default`` signature on raw feature tensors (see ``kfpkit.tabular.ServingModel``).

The test split is streamed: read and scored a batch at a time; what is kept per row is the
label, each model's probability and the slice columns' values (the metrics, intervals and
slices need them), a few bytes per row instead of the whole table.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from kfpkit import tabular
from kfpkit.components.evaluate import bands, defaults, diagnostics, explanations, intervals
from kfpkit.components.evaluate import metrics as m
from kfpkit.components.evaluate.intervals import Intervals
from kfpkit.explain import attributions as attr

_log = logging.getLogger("kfpkit")


@dataclass(frozen=True)
class EvaluateRequest:
    model_path: str
    test_path: str
    label_column: str
    baseline_path: str | None = None
    slice_columns: tuple[str, ...] = ()
    # Numeric columns sliced into bands at these edges (bands.check_bins); also slice columns.
    slice_bins: Mapping[str, Sequence[float]] = field(default_factory=dict)
    rule: m.BlessingRule = m.BlessingRule()
    # None: no intervals (point estimates only, as before).
    bootstrap: intervals.BootstrapSettings | None = None
    # Feature attributions of the candidate on this many sampled test rows (0: none).
    explain_rows: int = 0
    attribution: attr.Settings = attr.Settings()


@dataclass
class EvaluationResult:
    candidate: dict[str, Any]
    baseline: dict[str, Any] | None
    slices: dict[str, dict[str, dict[str, Any]]]
    confusion_matrix: dict[str, Any]
    roc_curve: list[dict[str, float]]
    decision: m.Decision
    report: str
    intervals: Intervals | None = None  # the field shadows the module inside the class
    # per slice column and value: the candidate's and the baseline's, and their difference
    slice_intervals: dict[str, dict[str, Intervals]] | None = None
    baseline_slices: dict[str, dict[str, dict[str, Any]]] | None = None
    fairness: dict[str, dict[str, Any]] | None = None
    calibration: dict[str, Any] | None = None
    explanation: dict[str, Any] | None = None  # explanations.explain's summary


def _probabilities(model: tabular.ServingModel, table: Any, name: str) -> np.ndarray:
    scores = model.predict_table(table)
    if scores.shape != (table.num_rows,) or not np.all((scores >= 0) & (scores <= 1)):
        raise ValueError(f"{name}: the model's output is not one probability in [0, 1] per row")
    return scores


def sliced_columns(request: EvaluateRequest) -> list[str]:
    """The slice columns, then the banded ones not among them."""
    return list(dict.fromkeys([*request.slice_columns, *request.slice_bins]))


def _columns(models: Sequence[tabular.ServingModel], request: EvaluateRequest) -> list[str]:
    names = [s.name for model in models for s in model.feature_specs]
    names += [request.label_column, *sliced_columns(request)]
    return list(dict.fromkeys(names))


@dataclass
class ScoredSplit:
    labels: np.ndarray
    scores: dict[str, np.ndarray]  # per model name, one probability per row
    columns: dict[str, np.ndarray]  # per slice column, its values


def score_split(
    models: Mapping[str, tabular.ServingModel], request: EvaluateRequest
) -> ScoredSplit:
    """Reads and scores the test split batch by batch (memory: a batch, plus the kept
    per-row arrays)."""
    columns = _columns(list(models.values()), request)
    labels: list[np.ndarray] = []
    scores: dict[str, list[np.ndarray]] = {name: [] for name in models}
    slices: dict[str, list[pa.ChunkedArray]] = {c: [] for c in sliced_columns(request)}
    for table in tabular.iter_split(request.test_path, "test_data", columns):
        if not labels:  # before any row is scored
            for column in request.slice_bins:
                bands.check_numeric(column, table.schema.field(column).type)
        labels.append(tabular.binary_labels(table, request.label_column, "test_data"))
        for name, model in models.items():
            scores[name].append(_probabilities(model, table, name))
        for column, chunks in slices.items():
            chunks.append(table[column])
    return ScoredSplit(
        labels=np.concatenate(labels),
        scores={name: np.concatenate(parts) for name, parts in scores.items()},
        # one Arrow column converted once: the same values as reading the split whole
        columns={c: _joined(chunks).to_numpy(zero_copy_only=False) for c, chunks in slices.items()},
    )


def _joined(chunks: Sequence[pa.ChunkedArray]) -> pa.ChunkedArray:
    first = chunks[0].type  # files may disagree (int32/int64): the first file's type, as before
    return pa.chunked_array([c for chunk in chunks for c in chunk.cast(first).chunks], first)


def evaluate(request: EvaluateRequest) -> EvaluationResult:
    """Loads both models, scores the test split, applies the blessing rule."""
    bins = bands.check_bins(request.slice_bins)
    model = tabular.ServingModel(request.model_path, "model")
    baseline = (
        tabular.ServingModel(request.baseline_path, "baseline_model")
        if request.baseline_path
        else None
    )
    models = {"model": model} if baseline is None else {"model": model, "baseline_model": baseline}
    scored = score_split(models, request)
    labels, scores = scored.labels, scored.scores["model"]
    candidate = m.binary_metrics(labels, scores)
    baseline_scores = scored.scores.get("baseline_model")
    baseline_metrics = (
        m.binary_metrics(labels, baseline_scores) if baseline_scores is not None else None
    )
    # each row's slice label per column, once: its value as text, or its band
    columns = {c: bands.slice_labels(v, bins.get(c)) for c, v in scored.columns.items()}
    orders = {c: bands.band_names(edges) for c, edges in bins.items()}
    slices = m.slice_metrics(labels, scores, columns, orders)
    baseline_slices = (
        m.slice_metrics(labels, baseline_scores, columns, orders)
        if baseline_scores is not None
        else None
    )
    m.check_slice_thresholds(request.rule, slices)
    settings = request.bootstrap
    overall_ci = slice_ci = None
    if settings is not None:
        named = {"model": scores}
        if baseline_scores is not None:
            named["baseline"] = baseline_scores
        groups = {
            column: {value: np.flatnonzero(columns[column] == value) for value in values}
            for column, values in slices.items()
        }
        overall_ci = intervals.bootstrap(
            labels,
            named,
            settings,
            paired=("model", "baseline") if len(named) == 2 else None,
            groups=groups,
        )
        slice_ci = overall_ci.slices
    confidence = settings.confidence if settings else defaults.CONFIDENCE
    fairness = diagnostics.fairness(labels, scores, columns)
    calibration = diagnostics.calibration(labels, scores)
    explanation = (
        explanations.explain(model, request.test_path, len(labels),
                             {c: list(v) for c, v in slices.items()}, request.explain_rows,
                             request.attribution, bins)
        if request.explain_rows > 0
        else None
    )  # fmt: skip
    decision = m.decide(request.rule, candidate, baseline_metrics, overall_ci, slices, confidence)
    _log.info("Evaluation: blessed=%s; %s", decision.blessed, "; ".join(decision.reasons))
    return EvaluationResult(
        candidate=candidate,
        baseline=baseline_metrics,
        slices=slices,
        confusion_matrix=m.confusion_matrix(labels, scores),
        roc_curve=m.roc_curve(labels, scores),
        decision=decision,
        report=m.report_markdown(
            request.rule,
            decision,
            candidate,
            baseline_metrics,
            slices,
            bootstrap=overall_ci,
            slice_intervals=slice_ci,
            baseline_slices=baseline_slices,
            fairness=fairness,
            calibration_svg=diagnostics.calibration_svg(calibration),
            confidence=confidence,
        )
        + (explanations.report_markdown(explanation) if explanation else ""),
        intervals=overall_ci,
        slice_intervals=slice_ci,
        baseline_slices=baseline_slices,
        fairness=fairness,
        calibration=calibration,
        explanation=explanation,
    )
