"""Infra validation: the model must serve on KServe's own model server before it is deployed.

Starts ``kfpkit.serving.server`` (KServe's ``ModelServer``, loopback only) as a
child process on the model, sends real V1 (``:predict``) and V2 (``/infer``) requests built
from rows of the test split, one row a request, and checks every answer against the model's
own in-process prediction (``serving_default`` called directly, as evaluate calls it).
Latency is measured at the client, per request, on a keep-alive connection.

Answers must agree within ``tolerance`` (float32 outputs; TensorFlow may round a row
differently by a unit in the last place depending on the batch it is computed in).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from kfpkit import tabular
from kfpkit.components.kserve_push import defaults
from kfpkit.serving.client import ServerProcess, percentile, server_args
from kfpkit.tabular import CATEGORICAL

_log = logging.getLogger("kfpkit")
DEFAULT_ROWS = defaults.INFRA_VALIDATION_ROWS
DEFAULT_TOLERANCE = 1e-5


@dataclass
class InfraValidation:
    passed: bool
    reasons: list[str]
    rows: int
    start_seconds: float = 0.0
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # v1/v2 -> p50/p99
    max_abs_difference: dict[str, float] = field(default_factory=dict)  # v1/v2

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {
            "infra_validation_passed": float(self.passed),
            "infra_validation_rows": float(self.rows),
            "server_start_seconds": round(self.start_seconds, 3),
        }
        for protocol, latency in sorted(self.latency_ms.items()):
            for name, value in latency.items():
                out[f"{protocol}_latency_{name}_ms"] = round(value, 3)
        for protocol, diff in sorted(self.max_abs_difference.items()):
            out[f"{protocol}_max_abs_difference"] = diff
        return out

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def request_rows(table: Any, specs: list[tabular.FeatureSpec]) -> list[dict[str, Any]]:
    """Rows as a client sends them: numbers (null for missing) and strings (null for "")."""
    arrays = tabular.feature_arrays(table, specs)
    columns: dict[str, list[Any]] = {}
    for spec in specs:
        values = arrays[spec.name]
        if spec.kind == CATEGORICAL:
            columns[spec.name] = [v if v != "" else None for v in values.tolist()]
        else:
            columns[spec.name] = [None if math.isnan(v) else v for v in values.tolist()]
    return [{name: columns[name][i] for name in columns} for i in range(table.num_rows)]


def _compare(protocol: str, got: list[float], expected: np.ndarray, tolerance: float,
             result: InfraValidation) -> None:  # fmt: skip
    answers = np.asarray(got, dtype=np.float64)
    if answers.shape != expected.shape:
        result.reasons.append(
            f"{protocol}: {answers.shape[0]} answers for {expected.shape[0]} rows"
        )
        return
    diff = np.abs(answers - expected)
    result.max_abs_difference[protocol] = float(diff.max())
    bad = np.flatnonzero(~(diff <= tolerance))  # NaN answers count as wrong
    if bad.size:
        i = int(bad[0])
        result.reasons.append(
            f"{protocol}: {bad.size} of {len(expected)} answers differ from the in-process "
            f"predictions by more than {tolerance:g} (row {i}: served {answers[i]!r}, "
            f"in-process {expected[i]!r})"
        )


def validate(
    model_path: str,
    test_path: str,
    name: str = "model",
    rows: int = DEFAULT_ROWS,
    tolerance: float = DEFAULT_TOLERANCE,
    start_timeout: float = 300.0,
    python: str = sys.executable,
    log_path: str | None = None,
) -> InfraValidation:
    """Serves the model, sends V1 and V2 requests, compares. Never raises for a model that
    fails: the result says why (the caller refuses to deploy it)."""
    if rows < 1:
        raise ValueError(f"infra validation rows must be >= 1, got {rows}")
    try:
        model = tabular.ServingModel(model_path, "model")
        table = tabular.read_split(test_path, "test_data", [s.name for s in model.feature_specs])
    except ValueError as e:
        return InfraValidation(False, [f"the model or test data cannot be read: {e}"], 0)
    table = table.slice(0, rows)
    try:
        expected = model.predict_table(table)
    except Exception as e:  # noqa: BLE001 - TensorFlow raises many types; all mean "fails"
        reason = f"the model fails on the test rows in-process: {type(e).__name__}: {e}"
        return InfraValidation(False, [reason[:2000]], table.num_rows)
    payload = request_rows(table, model.feature_specs)
    kinds = {s.name: s.kind for s in model.feature_specs}
    result = InfraValidation(True, [], table.num_rows)
    args = server_args(model_path, name=name, port=0)
    server = ServerProcess.python(python, args, log_path)
    try:
        server.start(start_timeout)
    except RuntimeError as e:
        return InfraValidation(False, [f"KServe's model server did not start: {e}"], len(payload))
    except BaseException:  # Cancelled (SIGTERM) while it starts: do not leave it running
        server.stop()
        raise
    result.start_seconds = server.ready_seconds
    try:
        client = server.client()
        try:  # untimed: the first request of a connection pays one-off costs
            client.predict_v1(name, payload[:1])
            client.infer_v2(name, payload[:1], kinds)
        except (RuntimeError, OSError, KeyError, TypeError):
            pass  # the timed requests below report what is wrong
        for protocol in ("v1", "v2"):
            answers, latencies = [], []
            for row in payload:
                started = time.perf_counter()
                try:
                    if protocol == "v1":
                        answer = client.predict_v1(name, [row])
                    else:
                        answer = client.infer_v2(name, [row], kinds)
                except (RuntimeError, OSError, KeyError, TypeError) as e:
                    result.reasons.append(f"{protocol}: a request failed: {e}")
                    break
                latencies.append((time.perf_counter() - started) * 1000)
                answers += answer
            else:
                result.latency_ms[protocol] = {
                    "p50": percentile(latencies, 50),
                    "p99": percentile(latencies, 99),
                }
                _compare(protocol, answers, expected, tolerance, result)
        client.close()
    finally:
        code = server.stop()
    if code not in (0, None):
        result.reasons.append(f"the model server exited with code {code} on SIGTERM")
    result.passed = not result.reasons
    _log.info("Infra validation %s: %s", "passed" if result.passed else "FAILED",
              "; ".join(result.reasons) or result.metrics())  # fmt: skip
    return result
