"""Test helper: served-traffic logs in the contract's layout (``kfpkit.serving.served_logs``).

Writes request files ``<dir>/data-<UTC>-<pid>-<n>.parquet`` and feedback files
``<dir>/feedback/feedback-<UTC>-<pid>-<n>.parquet`` with the contract's columns, and simulates
an experiment: variants of known quality (how well their prediction separates the labels),
latency and error rate, with labels sent back as feedback.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kfpkit.serving.served_logs import FEEDBACK_COLUMNS, REQUEST_COLUMNS

_sequence = itertools.count()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _write(folder: Path, prefix: str, table: pa.Table, when: datetime) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{prefix}-{when.strftime('%Y%m%dT%H%M%S%fZ')}-{os.getpid()}-{next(_sequence):06d}"
    tmp = folder / f".{name}.parquet.tmp"
    pq.write_table(table, tmp)
    final = folder / f"{name}.parquet"
    os.replace(tmp, final)
    return final


def write_requests(folder: Path, table: pa.Table) -> Path:
    """One request log file (named after its first timestamp), written then renamed."""
    first = table.column("timestamp")[0].as_py() if table.num_rows else T0
    return _write(Path(folder), "data", table, first)


def write_feedback(folder: Path, table: pa.Table) -> Path:
    first = table.column("timestamp")[0].as_py() if table.num_rows else T0
    return _write(Path(folder) / "feedback", "feedback", table, first)


def feedback_table(request_ids, rows, labels=None, rewards=None, timestamps=None) -> pa.Table:
    n = len(request_ids)
    return pa.table(
        {
            "request_id": pa.array(request_ids, pa.string()),
            "row": pa.array(rows, pa.int32()),
            "label": pa.array(labels if labels is not None else [None] * n, pa.float64()),
            "reward": pa.array(rewards if rewards is not None else [None] * n, pa.float64()),
            "timestamp": pa.array(
                timestamps if timestamps is not None else [T0] * n, FEEDBACK_COLUMNS["timestamp"]
            ),  # fmt: skip
        }
    )


@dataclass(frozen=True)
class Variant:
    """A simulated variant. ``skill``: how far its prediction's log-odds move towards the true
    label (0: a coin; 2: AUC about 0.9); ``error_rate``: share of requests answered 5xx."""

    skill: float = 1.5
    latency_ms: float = 5.0  # median; lognormal with sigma 0.3
    error_rate: float = 0.0
    reward_rate: float | None = None  # P(reward 1); default: whether the prediction was right


def simulate(
    n_rows: int,
    variants: Mapping[str, Variant],
    seed: int = 0,
    start: datetime = T0,
    duration: timedelta = timedelta(hours=1),
    labelled: float = 1.0,
    model_name: str = "model",
    extra_features: int = 1,
) -> tuple[pa.Table, pa.Table]:
    """(requests, feedback): ``n_rows`` one-row requests split evenly at random between the
    variants over ``[start, start + duration)``; a ``labelled`` share of the answered rows
    gets feedback (label, and a 0/1 reward)."""
    rng = np.random.default_rng(seed)
    names = list(variants)
    which = rng.integers(0, len(names), n_rows)
    labels = rng.integers(0, 2, n_rows).astype(np.float64)
    skill = np.array([variants[v].skill for v in names])[which]
    logit = skill * (2 * labels - 1) + rng.normal(0.0, 1.0, n_rows)
    prediction = 1.0 / (1.0 + np.exp(-logit))
    median = np.array([variants[v].latency_ms for v in names])[which]
    latency = median * np.exp(rng.normal(0.0, 0.3, n_rows))
    failed = rng.random(n_rows) < np.array([variants[v].error_rate for v in names])[which]
    offsets = np.sort(rng.random(n_rows)) * duration.total_seconds() * 1e6
    timestamps = np.datetime64(start.replace(tzinfo=None), "us") + offsets.astype("timedelta64[us]")
    request_ids = np.char.add("r", np.arange(n_rows).astype(str))
    variant = np.array(names, dtype=object)[which]
    columns: dict[str, pa.Array] = {
        f"f{i}": pa.array(rng.normal(0.0, 1.0, n_rows)) for i in range(extra_features)
    }
    columns["city"] = pa.array(np.array(["a", "b", "c"], dtype=object)[rng.integers(0, 3, n_rows)])
    columns.update(
        prediction=pa.array(np.where(failed, np.nan, prediction), from_pandas=True),
        model_name=pa.array([model_name] * n_rows, pa.string()),
        model_version=pa.array(variant, pa.string()),
        variant=pa.array(variant, pa.string()),
        protocol=pa.array(["v1"] * n_rows, pa.string()),
        request_id=pa.array(request_ids, pa.string()),
        row=pa.array(np.zeros(n_rows, np.int32)),
        timestamp=pa.array(timestamps, REQUEST_COLUMNS["timestamp"]),
        latency_ms=pa.array(latency),
        status=pa.array(np.where(failed, 500, 200).astype(np.int32)),
        out_of_domain=pa.array([""] * n_rows, pa.string()),
    )
    requests = pa.table(columns)
    answered = ~failed & (rng.random(n_rows) < labelled)
    right = (prediction >= 0.5) == (labels == 1)
    rate = np.array([variants[v].reward_rate if variants[v].reward_rate is not None else -1.0
                     for v in names])[which]  # fmt: skip
    reward = np.where(rate >= 0, rng.random(n_rows) < rate, right).astype(np.float64)
    delay = (rng.random(n_rows) * 60e6).astype("timedelta64[us]")
    feedback = pa.table(
        {
            "request_id": pa.array(request_ids[answered], pa.string()),
            "row": pa.array(np.zeros(int(answered.sum()), np.int32)),
            "label": pa.array(labels[answered]),
            "reward": pa.array(reward[answered]),
            "timestamp": pa.array(
                timestamps[answered] + delay[answered], FEEDBACK_COLUMNS["timestamp"]
            ),  # fmt: skip
        }
    )
    return requests, feedback


def evenly(start: datetime, span: timedelta, n: int) -> np.ndarray:
    """``n`` timestamps (datetime64[us], UTC) evenly spread over ``[start, start + span)``."""
    offsets = (np.arange(n) * (span.total_seconds() * 1e6 / n)).astype("timedelta64[us]")
    return np.datetime64(start.replace(tzinfo=None), "us") + offsets


def served_rows(
    rows: pa.Table,
    features: Sequence[str],
    label_column: str,
    prediction: Any,
    timestamps: np.ndarray,
    request_ids: Sequence[str] | np.ndarray,
    latency_ms: float | np.ndarray = 5.0,
    labelled: np.ndarray | None = None,
    feedback_delay_s: float = 0.0,
    model_name: str = "employment",
) -> tuple[pa.Table, pa.Table]:
    """(requests, feedback): each of real ``rows`` served as a one-row request of version
    "1" (its ``features`` as logged, ``prediction`` the score), its ``label_column`` sent
    back as feedback ``feedback_delay_s`` seconds later for the rows ``labelled`` selects (all by
    default)."""
    n = rows.num_rows
    ids = np.asarray(request_ids, dtype=object)
    columns = {c: rows[c] for c in features}
    columns.update(
        prediction=pa.array(prediction, pa.float64()),
        model_name=pa.array([model_name] * n),
        model_version=pa.array(["1"] * n),
        variant=pa.array(["1"] * n),
        protocol=pa.array(["v1"] * n),
        request_id=pa.array(ids, pa.string()),
        row=pa.array(np.zeros(n, np.int32)),
        timestamp=pa.array(timestamps, REQUEST_COLUMNS["timestamp"]),
        latency_ms=pa.array(np.broadcast_to(np.asarray(latency_ms, np.float64), n)),
        status=pa.array(np.full(n, 200, np.int32)),
        out_of_domain=pa.array([""] * n),
    )
    keep = np.ones(n, bool) if labelled is None else labelled
    answered_at = timestamps[keep] + np.timedelta64(round(feedback_delay_s * 1e6), "us")
    feedback = pa.table({
        "request_id": pa.array(ids[keep], pa.string()),
        "row": pa.array(np.zeros(int(keep.sum()), np.int32)),
        "label": rows[label_column].cast(pa.float64()).filter(pa.array(keep)),
        "reward": pa.nulls(int(keep.sum()), pa.float64()),
        "timestamp": pa.array(answered_at, FEEDBACK_COLUMNS["timestamp"]),
    })  # fmt: skip
    return pa.table(columns), feedback


def write_experiment(folder: Path, requests: pa.Table, feedback: pa.Table,
                     files: int = 4) -> None:  # fmt: skip
    """Writes the simulated traffic as ``files`` request files and as many feedback files."""
    for part in np.array_split(np.arange(requests.num_rows), files):
        if len(part):
            write_requests(folder, requests.slice(int(part[0]), len(part)))
    for part in np.array_split(np.arange(feedback.num_rows), files):
        if len(part):
            write_feedback(folder, feedback.slice(int(part[0]), len(part)))
