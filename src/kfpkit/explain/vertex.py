"""Vertex AI's ``explanationSpec`` for a model version: the same method, settings and baseline
as kfpkit's own attributions (``kfpkit.explain.attributions``), so an endpoint's ``:explain``
on Vertex AI answers what ``kfpkit serve`` and evaluate's report say.

Built from evaluate's ``explanation.json`` (its summary: method, steps or paths, features,
output name, baseline), in the v1 REST layout of ``Model.explanationSpec``: ``parameters``
(``sampledShapleyAttribution.pathCount`` or ``integratedGradientsAttribution.stepCount``) and
``metadata`` (one input per signature input, named after it, with its baseline; one output,
the signature's). Vertex's limits are checked here: path count 1-50, step count 1-100.
No TensorFlow, no Google client: pure data (core image).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from kfpkit.explain.attributions import INTEGRATED_GRADIENTS, SAMPLED_SHAPLEY
from kfpkit.tabular import CATEGORICAL

MAX_PATH_COUNT = 50
MAX_STEP_COUNT = 100


def explanation_spec(summary: Mapping[str, Any], source: str = "explanation") -> dict[str, Any]:
    """The ``explanationSpec`` for evaluate's summary; ValueError naming ``source`` and the
    fault for a summary without attributions or with settings Vertex AI refuses."""
    if not summary.get("rows"):
        raise ValueError(f"{source}: no attributions were computed (evaluate's explain_rows 0)")
    method = summary.get("method")
    if method == SAMPLED_SHAPLEY:
        count = int(summary["paths"])
        if not 1 <= count <= MAX_PATH_COUNT:
            raise ValueError(f"{source}: Vertex AI takes 1-{MAX_PATH_COUNT} Shapley paths, "
                             f"not {count}")  # fmt: skip
        parameters = {"sampledShapleyAttribution": {"pathCount": count}}
    elif method == INTEGRATED_GRADIENTS:
        count = int(summary["steps"])
        if not 1 <= count <= MAX_STEP_COUNT:
            raise ValueError(f"{source}: Vertex AI takes 1-{MAX_STEP_COUNT} integrated "
                             f"gradients steps, not {count}")  # fmt: skip
        parameters = {"integratedGradientsAttribution": {"stepCount": count}}
    else:
        raise ValueError(f"{source}: unknown attribution method {method!r}")
    baseline = summary["baseline"]
    inputs = {}
    for feature in summary["features"]:
        name, value = feature["name"], baseline.get(feature["name"])
        entry: dict[str, Any] = {
            "inputTensorName": name,
            "modality": "categorical" if feature["kind"] == CATEGORICAL else "numeric",
        }
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            entry["inputBaselines"] = [value]
        inputs[name] = entry
    output = summary["output"]
    return {
        "parameters": parameters,
        "metadata": {"inputs": inputs, "outputs": {output: {"outputTensorName": output}}},
    }
