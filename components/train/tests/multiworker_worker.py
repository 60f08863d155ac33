"""One worker of a multi-worker test run (a real process; TF_CONFIG in its environment):
``python multiworker_worker.py SPEC_JSON``. Prints the result as JSON on its last line; a
failure prints the error and exits 1, as the launcher does."""

import dataclasses
import json
import logging
import os
import sys

from kfpkit.hyperparameters import parse_hyperparameters
from kfpkit.training import run, trainer


def main(spec: dict) -> None:
    request = trainer.TrainRequest(
        train_path=spec["train"],
        validation_path=spec["validation"],
        model_dir=spec["model_dir"],
        label_column=spec["label"],
        exclude_columns=tuple(spec.get("exclude", ())),
        hyperparameters=parse_hyperparameters(spec["hyperparameters"]),
        worker_timeout=spec["worker_timeout"],
    )
    result = run.train(request)  # TF_CONFIG names the workers: the multi-worker loop
    out = dataclasses.asdict(result)
    out["features"] = [f.name for f in result.features]
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    try:
        main(json.loads(sys.argv[1]))
    except Exception as e:  # noqa: BLE001 - the test reads the message and the exit code
        print(f"ERROR {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        # a worker still waiting in TensorFlow's start-up would keep the interpreter alive
        os._exit(1)
