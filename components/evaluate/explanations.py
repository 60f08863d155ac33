"""Global feature importance of the candidate on a seeded sample of the test split.

The attributions themselves are the shared layer's (``kfpkit.explain``): the candidate's
served signature, integrated gradients when every input is numeric, else sampled Shapley.
Here: which rows (``rows`` drawn without replacement, seeded, from the whole split; a second
pass over the split reads only them), the baseline (the sample's medians and most frequent
values), and the summary evaluate reports: mean |attribution| per feature overall and per
slice value, with the completeness check (largest |prediction - baseline prediction - sum|).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from kfpkit import tabular
from kfpkit.components.evaluate import bands, defaults
from kfpkit.explain import attributions as attr
from kfpkit.explain import baseline as baselines
from kfpkit.runtime import html_report

# slice values shown per slice column in the report (the most frequent ones)
REPORT_SLICE_VALUES = 8


def sample_rows(path: str, columns: Sequence[str], total: int, rows: int, seed: int) -> pa.Table:
    """``rows`` rows of the split drawn without replacement (seeded), in split order."""
    chosen = np.sort(np.random.default_rng(seed).choice(total, min(rows, total), replace=False))
    parts, start = [], 0
    for table in tabular.iter_split(path, "test_data", columns):
        end = start + table.num_rows
        inside = chosen[(chosen >= start) & (chosen < end)] - start
        if inside.size:
            parts.append(table.take(pa.array(inside)))
        start = end
    return pa.concat_tables(parts, promote_options="permissive")


def explain(
    model: tabular.ServingModel,
    test_path: str,
    total_rows: int,
    slice_values: Mapping[str, Sequence[str]],
    rows: int = defaults.EXPLAIN_ROWS,
    settings: attr.Settings = attr.Settings(),  # noqa: B008 - frozen, immutable
    slice_bins: Mapping[str, Sequence[float]] | None = None,
) -> dict[str, Any]:
    """The summary (JSON-ready): method, settings, baseline, baseline prediction, rows,
    completeness gap, ``importance`` {feature: mean |attribution|} and ``slices``
    {column: {value: {"count", "importance"}}} for the given slice values (the bands of
    the columns in ``slice_bins``)."""
    specs = model.feature_specs
    columns = list(dict.fromkeys([*(s.name for s in specs), *slice_values]))
    table = sample_rows(test_path, columns, total_rows, rows, settings.seed)
    features = tabular.feature_arrays(table, specs)
    baseline = baselines.from_arrays(features, specs)
    found = attr.attribute(model, features, baseline, settings)
    slices: dict[str, dict[str, Any]] = {}
    for column, values in slice_values.items():
        text = bands.slice_labels(
            table[column].to_numpy(zero_copy_only=False), (slice_bins or {}).get(column)
        )
        slices[column] = {
            value: {"count": int((text == value).sum()),
                    "importance": found.importance(text == value)}
            for value in values
        }  # fmt: skip
    return {
        "method": found.method,
        "steps": settings.steps if found.method == attr.INTEGRATED_GRADIENTS else None,
        "paths": settings.paths if found.method == attr.SAMPLED_SHAPLEY else None,
        "seed": settings.seed,
        "rows": int(table.num_rows),
        "features": [{"name": s.name, "kind": s.kind} for s in specs],
        "output": model.output_name,
        "baseline": baseline,
        "baseline_prediction": found.baseline_prediction,
        "mean_prediction": float(found.predictions.mean()),
        "max_completeness_gap": float(np.abs(found.completeness_gap()).max()),
        "importance": found.importance(),
        "slices": slices,
    }


def _number(value: float) -> str:
    return f"{value:.4f}"


def report_markdown(summary: Mapping[str, Any]) -> str:
    """The report's section: how it was measured, a bar chart and a table of the global
    importance, and per slice column a table feature x slice value."""
    importance = summary["importance"]
    method = summary["method"].replace("_", " ")
    detail = (f"{summary['steps']} steps" if summary["steps"]
              else f"{summary['paths']} feature orders per row")  # fmt: skip
    lines = ["", "## Feature attributions", ""]
    lines.append(
        f"Mean |attribution| per feature on {summary['rows']} test rows drawn at random (seed "
        f"{summary['seed']}): {method} ({detail}) on the served signature, from a baseline row "
        f"of the sample's medians and most frequent values (predicted "
        f"{summary['baseline_prediction']:.4f}; mean prediction "
        f"{summary['mean_prediction']:.4f}). A row's attributions sum to its prediction minus "
        f"the baseline's (largest gap {summary['max_completeness_gap']:.1e})."
    )
    names = list(importance)
    lines += ["", html_report.bars([importance[n] for n in names], names, width=320), ""]
    lines += ["| feature | mean abs attribution | baseline |", "|---|---|---|"]
    lines += [f"| {n} | {_number(importance[n])} | {summary['baseline'][n]} |" for n in names]
    for column, values in summary["slices"].items():
        shown = sorted(values, key=lambda v: -values[v]["count"])[:REPORT_SLICE_VALUES]
        if not shown:
            continue
        lines += ["", f"Mean |attribution| by `{column}` (sampled rows per value in brackets):", ""]
        lines.append("| feature | " + " | ".join(
            f"{v} ({values[v]['count']})" for v in shown) + " |")  # fmt: skip
        lines.append("|---|" + "---|" * len(shown))
        for n in names:
            cells = [values[v]["importance"].get(n) for v in shown]
            lines.append(f"| {n} | " + " | ".join(
                "n/a" if c is None else _number(c) for c in cells) + " |")  # fmt: skip
    return "\n".join(lines) + "\n"
