"""Multi-worker training: ``MultiWorkerMirroredStrategy`` with a custom loop.

Why not ``model.fit``: with the train image's stack (TF 2.21, Keras 3) ``fit`` under
``MultiWorkerMirroredStrategy`` fails in every worker ("Attempt to convert a value
(PerReplica...) with an unsupported type", keras-team/keras#20585). The loop here calls
``strategy.run`` itself: each step computes the loss on this replica's batch, scaled by the
global batch (``tf.nn.compute_average_loss``), and Keras' optimizer all-reduces the gradients
across workers before applying them, so every worker holds the same weights.

What each worker does:

- checks both splits and computes the train statistics (means, variances, vocabularies) in one
  streamed pass over the *whole* train split, so every worker builds the same preprocessing
  (a vocabulary built from one shard would give the same string another index elsewhere);
- trains on its own shard of the train files (:func:`kfpkit.training.inputs.make_dataset`:
  worker ``i`` of ``n`` reads the ``i``-th of ``n`` equal row ranges), the same number of
  steps on every worker (collectives need every worker in every step);
- evaluates its shard of the validation split alone, then one all-reduce sums the counts
  (loss, correct predictions, score histograms for AUC), so the early-stopping decision
  (:class:`~kfpkit.training.trainer.StopWhenFlat`) is the same on every worker;
- exports: the chief to ``<model_dir>/<version>``, the others to a temporary folder that is
  removed (every worker must take part in saving; TensorFlow's multi-worker guide).

A worker named in ``TF_CONFIG`` that never comes up would block the strategy's start-up for
good (TensorFlow's coordination service waits for every task); :func:`connect` ends the
process after ``worker_timeout`` seconds (exit 1) with an error naming the workers that did
not answer, and collectives time out after the same number of seconds once running.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kfpkit.training import inputs, trainer
from kfpkit.training import strategy as strategies

_log = logging.getLogger("kfpkit")

DEFAULT_WORKER_TIMEOUT = 600.0  # seconds to wait for every worker, and for one collective
# Score histogram bins for the AUC of a sharded split (ties within a bin count half): 1,000
# bins is finer than Keras' AUC metric (200 thresholds).
AUC_BINS = 1000
PEER_EXIT_TIMEOUT = 120.0  # seconds the chief waits, at the end, for the others to exit
_STEPS_PER_CALL = 32  # training steps per call into the compiled loop (fewer Python round trips)
_EPSILON = 1e-7  # Keras' clip of probabilities in binary cross-entropy


@dataclass(frozen=True)
class Cluster:
    """The workers of a ``TF_CONFIG`` in task order (the chief first) and this task's place."""

    addresses: tuple[str, ...]
    index: int

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    @property
    def peers(self) -> tuple[str, ...]:
        return tuple(a for i, a in enumerate(self.addresses) if i != self.index)


def cluster_from(tf_config: str) -> Cluster:
    """The cluster a ``TF_CONFIG`` names; ValueError naming what is wrong with it."""
    try:
        config = json.loads(tf_config)
        cluster, task = config["cluster"], config["task"]
        kind, index = task["type"], int(task["index"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ValueError(
            f"TF_CONFIG must be JSON with cluster and task (type, index): {tf_config!r}"
        ) from e
    chiefs, workers = list(cluster.get("chief") or []), list(cluster.get("worker") or [])
    if len(chiefs) > 1:
        raise ValueError(f"TF_CONFIG names {len(chiefs)} chiefs, at most one: {chiefs}")
    addresses = chiefs + workers
    for address in addresses:
        host, _, port = str(address).rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"TF_CONFIG: worker address {address!r} is not host:port")
    if len(set(addresses)) != len(addresses):
        raise ValueError(f"TF_CONFIG names a worker address twice: {addresses}")
    if kind == "chief" and chiefs and index == 0:
        position = 0
    elif kind == "worker" and 0 <= index < len(workers):
        position = len(chiefs) + index
    else:
        raise ValueError(f"TF_CONFIG task {kind}:{index} is not in the cluster {cluster}")
    return Cluster(tuple(addresses), position)


def unreachable(addresses: Sequence[str], timeout: float = 2.0) -> list[str]:
    """The addresses that accept no TCP connection (a worker whose server is not up)."""
    down = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                pass
        except OSError:
            down.append(address)
    return down


def connect(cluster: Cluster, worker_timeout: float = DEFAULT_WORKER_TIMEOUT) -> Any:
    """A ``MultiWorkerMirroredStrategy`` once every worker joined. A worker that never comes
    up ends this process with exit code 1 after ``worker_timeout`` seconds, with an error
    naming the workers that did not answer.

    The strategy's constructor blocks until every task reaches TensorFlow's coordination
    service, with no timeout of its own and without releasing the GIL (no Python thread or
    signal handler runs meanwhile). So two watchers outside the interpreter do it: a small
    process that, unless told the strategy is up, probes the peers and writes the error at
    the deadline, and :func:`faulthandler.dump_traceback_later`, whose C thread exits the
    process (code 1, this thread's stack on stderr) a few seconds later.
    """
    if not worker_timeout > 0:
        raise ValueError(f"worker_timeout must be > 0 seconds, not {worker_timeout!r}")
    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=worker_timeout
    )  # a peer lost mid-training fails the collective instead of hanging it
    what = (
        f"multi-worker training: not every worker of TF_CONFIG joined within "
        f"{worker_timeout:g} s (task {cluster.index} of {list(cluster.addresses)})"
    )
    watcher = subprocess.Popen(
        [sys.executable, "-c", _WATCHER, str(worker_timeout), what, *cluster.peers],
        stdin=subprocess.PIPE,
    )
    grace = _PROBE_SECONDS * len(cluster.peers) + 3.0  # the watcher's probes and message first
    faulthandler.dump_traceback_later(worker_timeout + grace, exit=True)
    started = time.monotonic()
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    finally:
        faulthandler.cancel_dump_traceback_later()
        if watcher.stdin is not None:
            watcher.stdin.close()  # the watcher's signal that the strategy is up
        watcher.wait()
    _log.info("all %d workers joined in %.1f s", len(cluster.addresses),
              time.monotonic() - started)  # fmt: skip
    return strategy


_PROBE_SECONDS = 2.0
# The watcher: python -c _WATCHER TIMEOUT MESSAGE PEER...; stdin closes when the strategy is up
# (or the worker died): then it exits quietly.
_WATCHER = f"""
import select, socket, sys
timeout, message, peers = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
if select.select([sys.stdin], [], [], timeout)[0]:
    sys.exit(0)
down = []
for peer in peers:
    host, _, port = peer.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout={_PROBE_SECONDS}).close()
    except OSError:
        down.append(peer)
named = ", ".join(down) if down else "none refused a connection (still starting?)"
print(f"ERROR RuntimeError: {{message}}; unreachable: {{named}}", file=sys.stderr, flush=True)
"""


def outlive_peers(cluster: Cluster, timeout: float, poll_interval: float = 0.5) -> None:
    """Waits (at most ``timeout`` s) until the other workers have exited. The chief hosts
    TensorFlow's coordination service: a worker that finds it gone while still shutting down
    aborts (a failed pod, a failed job), so the chief ends last."""
    deadline = time.monotonic() + timeout
    while len(unreachable(cluster.peers, timeout=poll_interval)) < len(cluster.peers):
        if time.monotonic() > deadline:
            _log.warning("workers still up %.0f s after training ended", timeout)
            return
        time.sleep(poll_interval)


def auc_of_histograms(positives: np.ndarray, negatives: np.ndarray) -> float:
    """ROC AUC from score histograms over the same ascending bins: the chance that a positive
    scores above a negative, a tie (same bin) counting half; NaN without both classes."""
    pos, neg = np.asarray(positives, np.float64), np.asarray(negatives, np.float64)
    total = pos.sum() * neg.sum()
    if total == 0:
        return math.nan
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])  # negatives in lower bins
    return float((pos * (below + 0.5 * neg)).sum() / total)


def _batch_counts(labels: Any, probabilities: Any) -> Any:
    """[loss sum, correct, rows, positive histogram..., negative histogram...] of a batch."""
    y = tf.cast(tf.reshape(labels, [-1]), tf.float32)
    p = tf.cast(tf.reshape(probabilities, [-1]), tf.float32)
    clipped = tf.clip_by_value(p, _EPSILON, 1 - _EPSILON)
    losses = -(y * tf.math.log(clipped) + (1 - y) * tf.math.log(1 - clipped))
    correct = tf.reduce_sum(tf.cast(tf.equal(tf.cast(p > 0.5, tf.float32), y), tf.float32))
    bins = tf.clip_by_value(tf.cast(p * AUC_BINS, tf.int32), 0, AUC_BINS - 1)
    positive = tf.math.bincount(bins, weights=y, minlength=AUC_BINS, maxlength=AUC_BINS)
    negative = tf.math.bincount(bins, weights=1 - y, minlength=AUC_BINS, maxlength=AUC_BINS)
    head = tf.stack([tf.reduce_sum(losses), correct, tf.cast(tf.size(y), tf.float32)])
    return tf.cast(tf.concat([head, positive, negative], 0), tf.float64)


def _metrics_of(counts: np.ndarray, prefix: str = "") -> dict[str, float]:
    rows = max(float(counts[2]), 1.0)
    pos, neg = counts[3 : 3 + AUC_BINS], counts[3 + AUC_BINS :]
    return {
        f"{prefix}loss": float(counts[0]) / rows,
        f"{prefix}accuracy": float(counts[1]) / rows,
        f"{prefix}auc": auc_of_histograms(pos, neg),
    }


def train(
    request: trainer.TrainRequest,
    callbacks: Sequence[Any] = (),
    worker_timeout: float = DEFAULT_WORKER_TIMEOUT,
) -> trainer.TrainResult:
    """Trains on every worker of ``$TF_CONFIG`` (this process is one of them) and exports on
    the chief; the returned result is the same on every worker but ``export_dir``.

    ``callbacks`` are Keras callbacks called at the epoch ends with the same logs as ``fit``
    gives (``loss``, ``accuracy``, ``auc`` and their ``val_`` forms).
    """
    if request.model_version < 1:
        raise ValueError(f"model_version must be a positive integer, not {request.model_version}")
    cluster = cluster_from(os.environ.get("TF_CONFIG", ""))
    hp = request.hyperparameters
    data = trainer.scan_inputs(request)  # the whole splits: same checks, same statistics
    specs = data.features
    devices, _ = strategies.detect_devices()
    choice = strategies.choose_strategy(devices, request.mixed_precision)
    if choice.name != strategies.MULTI_WORKER:
        raise ValueError(f"TF_CONFIG names one worker, or a TPU is attached: {choice.name}")
    strategy = connect(cluster, worker_timeout)
    keras.utils.set_random_seed(hp.seed)
    keras.mixed_precision.set_global_policy(choice.precision_policy)
    try:
        result = _train(request, data, cluster, strategy, callbacks)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    if cluster.is_chief:
        outlive_peers(cluster, min(worker_timeout, PEER_EXIT_TIMEOUT))
    return trainer.TrainResult(**{**result, "features": specs, "strategy": choice})


def _train(
    request: trainer.TrainRequest,
    data: trainer.Inputs,
    cluster: Cluster,
    strategy: Any,
    callbacks: Sequence[Any],
) -> dict[str, Any]:
    hp, label, specs = request.hyperparameters, request.label_column, data.features
    workers = len(cluster.addresses)
    replicas = strategy.num_replicas_in_sync
    local_replicas = max(1, replicas // workers)
    global_batch = hp.batch_size * replicas  # batch_size is per replica
    with strategy.scope():
        parts = trainer.build_parts(specs, data.stats, hp)
        core, optimizer = parts.core, parts.core.optimizer
        optimizer.build(core.trainable_variables)

    def train_shard(context: Any) -> Any:
        return inputs.make_dataset(
            data.train.files, specs, label, context.get_per_replica_batch_size(global_batch),
            shard_index=context.input_pipeline_id, shard_count=context.num_input_pipelines,
            shuffle_seed=hp.seed, encode=parts.preprocess,
        )  # fmt: skip

    train_data = strategy.distribute_datasets_from_function(train_shard)
    # Every worker runs the same number of steps: as many batches as the smallest shard has.
    steps = max(1, math.ceil((data.train.rows // workers) / hp.batch_size) // local_replicas)
    validation_data = inputs.make_dataset(
        data.validation.files, specs, label, hp.batch_size,
        shard_index=cluster.index, shard_count=workers, encode=parts.preprocess,
    )  # fmt: skip

    def step(batch: Any) -> Any:
        features, labels = batch
        with tf.GradientTape() as tape:
            probabilities = core(features, training=True)
            losses = keras.losses.binary_crossentropy(tf.reshape(labels, [-1, 1]), probabilities)
            loss = tf.nn.compute_average_loss(losses, global_batch_size=global_batch)
        # Dense embedding gradients: the sparse ones are all-gathered, which needs the same
        # batch shape on every worker (a shard's last batch may be shorter).
        grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, core.trainable_variables)]
        optimizer.apply_gradients(zip(grads, core.trainable_variables, strict=True))
        return _batch_counts(labels, probabilities)

    @tf.function
    def run_steps(iterator: Any, count: Any) -> Any:
        totals = tf.zeros([3 + 2 * AUC_BINS], tf.float64)
        for _ in tf.range(count):
            counts = strategy.run(step, args=(next(iterator),))
            totals += strategy.reduce(tf.distribute.ReduceOp.SUM, counts, axis=None)
        return totals

    @tf.function
    def evaluate_batch(features: Any, labels: Any) -> Any:
        return _batch_counts(labels, core(features, training=False))

    @tf.function
    def all_workers_sum(values: Any) -> Any:
        # each local replica contributes its worker's values once: divided, then summed
        share = strategy.run(lambda: values / local_replicas)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, share, axis=None)

    stopper = trainer.StopWhenFlat("val_auc", hp.early_stopping_patience,
                                   hp.early_stopping_min_delta)  # fmt: skip
    every = [stopper, *callbacks]
    for callback in every:
        callback.set_model(core)
        callback.on_train_begin()
    core.stop_training = False
    history: dict[str, list[float]] = {}
    seconds: list[float] = []
    for epoch in range(hp.epochs):
        for callback in every:
            callback.on_epoch_begin(epoch)
        started = time.perf_counter()
        iterator, totals, done = iter(train_data), np.zeros(3 + 2 * AUC_BINS), 0
        while done < steps:
            count = min(_STEPS_PER_CALL, steps - done)
            totals += run_steps(iterator, tf.constant(count)).numpy()
            done += count
        seconds.append(time.perf_counter() - started)
        local = np.zeros(3 + 2 * AUC_BINS)
        for features, labels in validation_data:
            local += evaluate_batch(features, labels).numpy()
        validation = all_workers_sum(tf.constant(local)).numpy()
        logs = {**_metrics_of(totals), **_metrics_of(validation, "val_")}
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        _log.info("epoch %d/%d (%d steps, %.1f s): %s", epoch + 1, hp.epochs, steps,
                  seconds[-1], json.dumps({k: round(v, 4) for k, v in logs.items()}))  # fmt: skip
        for callback in every:
            callback.on_epoch_end(epoch, logs)
        if core.stop_training:
            break
    for callback in every:
        callback.on_train_end()

    with strategy.scope():
        model = parts.serving_model()
    if cluster.is_chief:
        export_dir = trainer.export_model(model, request.model_dir, request.model_version)
    else:  # every worker takes part in saving; only the chief's copy is kept
        with tempfile.TemporaryDirectory() as scratch:
            export_dir = trainer.export_model(model, scratch, request.model_version)

    all_workers_sum(tf.zeros([1], tf.float64))  # a barrier: every worker has exported
    best = stopper.best_epoch
    metrics: dict[str, float | int] = {
        f"{prefix}{name}": history[f"{key}{name}"][best]
        for prefix, key in (("train_", ""), ("validation_", "val_"))
        for name in ("loss", "accuracy", "auc")
    }
    trained_rows = steps * global_batch
    metrics.update(
        epochs_run=len(history["loss"]),
        best_epoch=best + 1,
        train_rows=data.train.rows,
        validation_rows=data.validation.rows,
        global_batch_size=global_batch,
        workers=workers,
        examples_per_second=round(trained_rows * len(seconds) / max(sum(seconds), 1e-9), 1),
    )
    _log.info("TensorFlow %s, trained on %d workers %s", tf.__version__, workers,
              json.dumps(metrics))  # fmt: skip
    return {"export_dir": export_dir, "history": history, "metrics": metrics,
            "replicas": replicas}  # fmt: skip
