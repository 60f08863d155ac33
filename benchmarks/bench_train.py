"""Training throughput: the train component's input path vs simpler ones.

Same model (the component's build_parts), same rows, same hyperparameters, same process;
only the way batches reach it differs:
- ``numpy``: the whole model on raw features, ``model.fit(x=dict_of_numpy_arrays, ...,
  shuffle=True)``, Keras' own adapter for in-memory arrays (the whole split in memory);
- ``parquet stream``: the rows written to a Parquet file (row groups of 131,072 rows, as the
  split step writes them), ``kfpkit.training.inputs.make_dataset`` reading them back every
  epoch with the preprocessing part mapped over the batches, the core trained with
  ``steps_per_execution`` as the component sets it: what ``train`` runs (memory bounded by the
  shuffle window, not the rows).

Examples per second are measured per epoch on the training part only (validation excluded);
epoch 1 includes tracing the training function, so the steady state is the last epoch.

Run in the train environment:
    .venvs/train/bin/python benchmarks/bench_train.py [--rows 200000] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import keras
import numpy as np
import pyarrow.parquet as pq
import tensorflow as tf

from kfpkit import tabular
from kfpkit.training import inputs, trainer

DEMO = os.path.join(os.path.dirname(__file__), "..", ".cache", "demo", "employment.parquet")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=DEMO)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, nargs="+", default=[256, 1024])
    args = parser.parse_args()

    table = pq.read_table(args.data)
    table = table.take(np.random.default_rng(0).permutation(table.num_rows)[: args.rows])
    specs = trainer.select_features(table.schema, None, "employed", (), ("id",))
    features = tabular.feature_arrays(table, specs)
    labels = tabular.binary_labels(table, "employed", "bench")
    stats = {s.name: trainer.feature_stats(s, features[s.name]) for s in specs}
    scratch = tempfile.TemporaryDirectory()
    files = [os.path.join(scratch.name, "data-000000000000.parquet")]
    pq.write_table(table, files[0], row_group_size=131_072)

    results = []
    for batch_size in args.batch_size:
        hp = trainer.Hyperparameters(batch_size=batch_size, epochs=args.epochs)
        calls = trainer.steps_per_call(len(labels), batch_size)
        feeds = ("numpy", f"parquet stream, {calls} steps/call")
        for feed in feeds:
            keras.utils.set_random_seed(hp.seed)
            timer = trainer.EpochTimer()
            start = time.perf_counter()
            if feed == "numpy":
                model = trainer.build_model(specs, stats, hp)
                history = model.fit(
                    x=features, y=labels, batch_size=batch_size, epochs=hp.epochs,
                    shuffle=True, callbacks=[timer], verbose=0,
                )  # fmt: skip
            else:
                parts = trainer.build_parts(specs, stats, hp, calls)
                data = inputs.make_dataset(
                    files, specs, "employed", batch_size, shuffle_seed=hp.seed,
                    encode=parts.preprocess,
                )  # fmt: skip
                history = parts.core.fit(data, epochs=hp.epochs, callbacks=[timer], verbose=0)
            total = time.perf_counter() - start
            rate = [round(len(labels) / s) for s in timer.seconds]
            results.append(
                {
                    "feed": feed,
                    "batch_size": batch_size,
                    "examples_per_second_by_epoch": rate,
                    "wall_seconds": round(total, 1),
                    "final_train_accuracy": round(float(history.history["accuracy"][-1]), 4),
                }
            )
            print(json.dumps(results[-1]), flush=True)

    out = os.path.join(os.path.dirname(__file__), "results_train.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"rows": len(labels), "epochs": args.epochs, "tensorflow": tf.__version__,
                   "cpus": os.cpu_count(), "results": results}, f, indent=2)  # fmt: skip
    setup = f"{len(labels)} rows, {len(specs)} features, {args.epochs} epochs"
    print(f"\n{setup}, TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, {platform.machine()}\n")
    print("| feed | batch | examples/s epoch 1 | examples/s last epoch | wall s |")
    print("|---|---|---|---|---|")
    for r in results:
        rates = r["examples_per_second_by_epoch"]
        row = [r["feed"], r["batch_size"], f"{rates[0]:,}", f"{rates[-1]:,}", r["wall_seconds"]]
        print("| " + " | ".join(map(str, row)) + " |")


if __name__ == "__main__":
    main()
