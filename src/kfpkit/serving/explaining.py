"""KServe's V1 explain protocol on the served model: ``POST /v1/models/<name>:explain``.

The body is a V1 predict body (``{"instances": [{feature: value, ...}, ...]}``, validated the
same way: a missing feature is a 400 naming it); the answer has Vertex AI's explain layout,
so a client of a Vertex endpoint's ``:explain`` reads it unchanged::

    {"predictions": [p, ...],
     "explanations": [{"attributions": [{"featureAttributions": {feature: a, ...},
                                         "baselineOutputValue": b, "instanceOutputValue": p,
                                         "approximationError": |p - b - sum(a)|,
                                         "outputName": "probability", "outputIndex": [0]}]}],
     "method": ..., "baseline": {...}, "model_version": ..., "variant": ..., "request_id": ...}

Attributions are ``kfpkit.explain``'s on the primary model (the ``--model-dir`` one, or the
first ``--variant``), from the baseline given at start (``--explain-baseline``: a JSON file
``{feature: value}``, evaluate's ``explanation.json``, or Parquet data whose medians and most
frequent values become the baseline) or, without one, the row of missing values (the model's
own fill: sampled Shapley only). At most :data:`MAX_ROWS` rows a request: a row costs
``paths x (features - 1)`` model rows (sampled Shapley) or ``steps`` gradient rows.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from kfpkit.explain import attributions as attr
from kfpkit.explain import baseline as baselines
from kfpkit.tabular import ServingModel, feature_arrays, read_split

MAX_ROWS = 100


@dataclass(frozen=True)
class ExplainOptions:
    baseline: str = ""  # a JSON file, evaluate's explanation.json, or Parquet data; "": missing
    method: str = "auto"

    def check(self) -> None:
        attr.Settings(method=self.method)  # an unknown method is refused before any model loads
        if self.baseline and not os.path.exists(self.baseline):
            raise ValueError(f"--explain-baseline {self.baseline!r} does not exist")


class Explainer:
    """The attributions of one loaded model, with its baseline fixed at start.

    The baseline is tried at start: a given one the model cannot use (a failing or NaN
    prediction, a missing value under integrated gradients) stops the server (ValueError);
    without one, a model that cannot predict the missing-value row (no imputation) is served
    anyway and ``:explain`` answers 400 saying to give ``--explain-baseline``.
    """

    def __init__(self, serving: ServingModel, options: ExplainOptions):
        specs = serving.feature_specs
        self.serving, self.settings = serving, attr.Settings(method=options.method)
        self.method = self.settings.resolved(specs)
        self.unavailable = ""
        if not options.baseline:
            self.baseline = baselines.missing_row(specs)
        elif options.baseline.endswith(".json"):
            self.baseline = baselines.read(options.baseline, specs)
        else:  # Parquet data: a file or a split folder
            table = read_split(options.baseline, "--explain-baseline", [s.name for s in specs])
            self.baseline = baselines.from_arrays(feature_arrays(table, specs), specs)
        try:
            found = self.explain(baselines.as_arrays(self.baseline, specs))
            if not np.isfinite(found.baseline_prediction):
                raise ValueError(f"the model predicts {found.baseline_prediction} for it")
        except Exception as e:  # noqa: BLE001 - TensorFlow raises several kinds for a bad row
            problem = f"the baseline {self.baseline} cannot be explained from: {e}"
            if options.baseline:
                raise ValueError(f"--explain-baseline {options.baseline!r}: {problem}") from None
            self.unavailable = (f"{problem}; start the server with --explain-baseline (a JSON "
                                "file, evaluate's explanation.json or Parquet data)")  # fmt: skip

    def explain(self, features: dict[str, np.ndarray]) -> attr.Attributions:
        if self.unavailable:
            raise ValueError(self.unavailable)
        return attr.attribute(self.serving, features, self.baseline, self.settings)

    def answer(self, found: attr.Attributions) -> dict[str, Any]:
        gaps = np.abs(found.completeness_gap())
        explanations = [
            {"attributions": [{
                "featureAttributions": row,
                "baselineOutputValue": found.baseline_prediction,
                "instanceOutputValue": float(p),
                "approximationError": float(gap),
                "outputName": self.serving.output_name,
                "outputIndex": [0],
            }]}
            for row, p, gap in zip(found.rows(), found.predictions, gaps, strict=True)
        ]  # fmt: skip
        return {
            "predictions": found.predictions.tolist(),
            "explanations": explanations,
            "method": found.method,
            # JSON has no NaN: a missing baseline value is null
            "baseline": {
                k: None if isinstance(v, float) and math.isnan(v) else v
                for k, v in found.baseline.items()
            },  # fmt: skip
        }
