"""One tuning trial: the real trainer on the real splits, reporting metrics per epoch.

Two callers. A Katib trial is a plain Kubernetes Job running
``python3 -m kfpkit.components.katib_tune.trial --train-data gs://... --assign lr=0.01 ...``:
it has no KFP ``/gcs/`` mount, so it reads the splits from their URIs itself (``gs://``,
``s3://`` and ``file://`` through pyarrow's filesystems; a plain path, e.g. a PVC mount, as
is) and prints ``<RFC 3339 time> <name>=<value>`` lines per epoch and at the end, which
Katib's StdOut collector reads (the timestamps are what medianstop needs). The local backend
runs :func:`run_trial` in its worker processes with a reporter that feeds Optuna's pruner.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kfpkit.components.katib_tune import spec as specs
from kfpkit.hyperparameters import parse_hyperparameters
from kfpkit.training.objective_metrics import EPOCH_LOG_KEYS, OBJECTIVE_METRICS

_log = logging.getLogger("kfpkit")
_PARQUET_SUFFIXES = (".parquet", ".pq")

# (epoch, {printed name: value}) -> True to stop the trial (pruned / early-stopped)
Reporter = Callable[[int, dict[str, float]], bool]


@dataclass(frozen=True)
class TrialData:
    """What every trial trains on (URIs or local paths) and how."""

    train: str
    validation: str
    label_column: str
    schema: str = ""
    feature_columns: tuple[str, ...] = ()
    exclude_columns: tuple[str, ...] = ()

    def args(self) -> list[str]:
        out = [
            "--train-data",
            self.train,
            "--validation-data",
            self.validation,
            "--label-column",
            self.label_column,
            "--exclude-columns",
            json.dumps(list(self.exclude_columns)),
        ]
        if self.schema:
            out += ["--schema", self.schema]
        if self.feature_columns:
            out += ["--feature-columns", json.dumps(list(self.feature_columns))]
        return out


@dataclass
class TrialOutcome:
    metrics: dict[str, float]  # printed name -> the trainer's final value
    stopped: bool = False  # the reporter asked to stop (pruned)
    epochs: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)


def local_copy(uri: str, name: str, scratch: str) -> str:
    """A local path holding the split at ``uri``: the path itself, or a copy of its Parquet
    files for a URI with a scheme (``gs://``, ``s3://``, ``file://``: pyarrow filesystems)."""
    if "://" not in uri:
        return uri
    from pyarrow import fs

    try:
        filesystem, root = fs.FileSystem.from_uri(uri)
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError for unknown schemes
        raise ValueError(f"{name}: cannot open {uri!r}: {e}") from e
    info = filesystem.get_file_info(root)
    if info.type == fs.FileType.NotFound:
        raise ValueError(f"{name}: {uri!r} does not exist")
    if info.type == fs.FileType.File:
        files = [info]
    else:
        listing = filesystem.get_file_info(fs.FileSelector(root, recursive=True))
        files = [
            f for f in listing if f.type == fs.FileType.File and f.path.endswith(_PARQUET_SUFFIXES)
        ]
    if not files:
        raise ValueError(f"{name}: no Parquet files under {uri!r}")
    target = os.path.join(scratch, name)
    os.makedirs(target, exist_ok=True)
    local = fs.LocalFileSystem()
    for i, f in enumerate(sorted(files, key=lambda f: f.path)):
        # numbered names keep files of nested folders apart
        dest = os.path.join(target, f"part-{i:05d}-{os.path.basename(f.path)}")
        fs.copy_files(f.path, dest, source_filesystem=filesystem, destination_filesystem=local)
    return target


def epoch_metrics(logs: Mapping[str, Any]) -> dict[str, float]:
    """Printed name -> value from a Keras epoch's logs."""
    return {name: float(logs[key]) for name, key in EPOCH_LOG_KEYS.items() if key in logs}


def make_callback(reporter: Reporter) -> Any:
    import keras

    class _Report(keras.callbacks.Callback):
        stopped = False

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if reporter(epoch + 1, epoch_metrics(logs or {})):
                self.stopped = True
                self.model.stop_training = True

    return _Report()


def run_trial(
    data: TrialData, hyperparameters: Mapping[str, Any], reporter: Reporter, scratch: str = ""
) -> TrialOutcome:
    """Trains once with ``hyperparameters`` (the dict ``train`` takes); the model goes to a
    scratch folder that is removed (a trial's product is its metrics)."""
    from kfpkit.training import run as training
    from kfpkit.training import trainer

    hp = parse_hyperparameters(dict(hyperparameters))
    work = tempfile.mkdtemp(prefix="kfpkit-trial-", dir=scratch or None)
    try:
        request = trainer.TrainRequest(
            train_path=local_copy(data.train, "train_data", work),
            validation_path=local_copy(data.validation, "validation_data", work),
            model_dir=os.path.join(work, "model"),
            label_column=data.label_column,
            hyperparameters=hp,
            schema_path=local_copy(data.schema, "schema", work) if data.schema else None,
            feature_columns=data.feature_columns,
            exclude_columns=data.exclude_columns,
        )
        callback = make_callback(reporter)
        result = training.train(request, callbacks=[callback])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    metrics = {name: float(result.metrics[key]) for name, key in OBJECTIVE_METRICS.items()}
    return TrialOutcome(
        metrics, callback.stopped, int(result.metrics["epochs_run"]), result.history
    )


def _timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def print_metrics(metrics: Mapping[str, float], out: Any = None) -> None:
    """``<time> name=value`` lines, flushed at once (Katib reads them while the trial runs)."""
    stream = out or sys.stdout
    stamp = _timestamp()
    stream.write("".join(f"{stamp} {name}={value:.6f}\n" for name, value in metrics.items()))
    stream.flush()


def print_epoch(_epoch: int, metrics: dict[str, float]) -> bool:
    """A Katib trial's reporter: print the epoch's lines; Katib's medianstop kills the pod
    itself when it decides to stop a trial, so this never asks to stop."""
    print_metrics(metrics)
    return False


def hyperparameters_from(
    search_space: Sequence[Mapping[str, Any]], fixed: Mapping[str, Any], assignments: Sequence[str]
) -> dict[str, Any]:
    """The trial's dict for ``train`` from ``name=value`` assignments (Katib substitutes the
    values as text) typed by the search space."""
    parameters = {p.name: p for p in (specs.parse_parameter(raw, None) for raw in search_space)}
    tuned: dict[str, Any] = {}
    for item in assignments:
        name, sep, value = item.partition("=")
        if not sep or name not in parameters:
            raise ValueError(
                f"--assign {item!r}: expected name=value for one of {sorted(parameters)}"
            )
        tuned[name] = parameters[name].typed(value)
    missing = sorted(set(parameters) - set(tuned))
    if missing:
        raise ValueError(f"no value assigned to {missing}")
    return {**fixed, **tuned}


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-data", required=True)
    parser.add_argument("--validation-data", required=True)
    parser.add_argument("--schema", default="")
    parser.add_argument("--label-column", required=True)
    parser.add_argument("--feature-columns", default="[]")
    parser.add_argument("--exclude-columns", default="[]")
    parser.add_argument("--search-space", required=True, help="JSON list, as katib_tune takes it")
    parser.add_argument("--fixed", default="{}", help="JSON dict of fixed hyperparameters")
    parser.add_argument("--assign", action="append", default=[], help="name=value")
    args = parser.parse_args(argv)
    try:
        data = TrialData(
            train=args.train_data,
            validation=args.validation_data,
            label_column=args.label_column,
            schema=args.schema,
            feature_columns=tuple(json.loads(args.feature_columns)),
            exclude_columns=tuple(json.loads(args.exclude_columns)),
        )
        hp = hyperparameters_from(
            json.loads(args.search_space), json.loads(args.fixed), args.assign
        )
        _log.info("trial hyperparameters %s", json.dumps(hp, sort_keys=True))
        outcome = run_trial(data, hp, print_epoch)
    except ValueError as e:
        _log.error("Invalid input: %s", e)
        return 2
    print_metrics(outcome.metrics)  # last: the values of the exported model's epoch
    return 0


if __name__ == "__main__":
    sys.exit(main())
