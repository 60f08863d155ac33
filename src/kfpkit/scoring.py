"""Scores served models on labelled Parquet data, as a server calls them (the
``serving_default`` signature on raw features); runs in the train image:

    python3 -m kfpkit.scoring '[[key, model_dir, parquet], ...]' LABEL_COLUMN

prints one line ``KFPKIT_SCORES {key: {"accuracy", "auc", "rows"}}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from kfpkit import tabular
from kfpkit.classification import binary_metrics

PREFIX = "KFPKIT_SCORES "


def score(jobs: list[tuple[str, str, str]], label_column: str) -> dict[str, dict[str, Any]]:
    import pyarrow.parquet as pq

    models: dict[str, tabular.ServingModel] = {}
    out = {}
    for key, model_dir, data in jobs:
        if model_dir not in models:
            models[model_dir] = tabular.ServingModel(model_dir, key)
        table = pq.read_table(data)
        p = models[model_dir].predict_table(table)
        m = binary_metrics(table[label_column].to_numpy(), p)
        out[key] = {"accuracy": round(m["accuracy"], 4), "auc": round(m["auc"], 4),
                    "rows": m["count"]}  # fmt: skip
    return out


if __name__ == "__main__":
    print(PREFIX + json.dumps(score(json.loads(sys.argv[1]), sys.argv[2])))
