"""Launcher of retrain_decision: reads TFDV's measured distances, the window state and the
served traffic's monitoring (each optional), writes the decision.

Run inside the tfdv image as
``python3 -m kfpkit.components.retrain_decision.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

import json
import os

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2

from kfpkit.components.retrain_decision.decision import Distance, Policy, Served, decide
from kfpkit.runtime.executor import Executor, main, write_json_artifact
from kfpkit.tfdv.validation import measurements
from kfpkit.window_state import WindowState

DECISION_FILE = "decision.json"
ANOMALIES_FILE = "anomalies.pbtxt"  # tfdv_validate's
MONITORING_FILE = "monitoring.json"  # monitor_serving's


def distances(anomalies: anomalies_pb2.Anomalies) -> list[Distance]:
    """Every drift/skew distance TFDV measured (tfdv_validate's measurements, as Distances)."""
    return [Distance(m.feature, m.kind, m.measure, m.value, m.threshold)
            for m in measurements(anomalies)]  # fmt: skip


def _read_anomalies(path: str) -> anomalies_pb2.Anomalies:
    file = os.path.join(path, ANOMALIES_FILE) if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise ValueError(f"anomalies: no {ANOMALIES_FILE} at {path!r}")
    with open(file, encoding="utf-8") as f:
        try:
            return text_format.Parse(f.read(), anomalies_pb2.Anomalies())
        except text_format.ParseError as e:
            raise ValueError(f"anomalies: {file!r} is not an Anomalies text proto: {e}") from e


def _read_served(path: str) -> Served | None:
    """monitor_serving's monitoring; None when its folder holds none (an empty input changes
    nothing)."""
    file = os.path.join(path, MONITORING_FILE) if os.path.isdir(path) else path
    if not os.path.isfile(file):
        return None
    with open(file, encoding="utf-8") as f:
        try:
            doc = json.load(f)
        except ValueError as e:
            raise ValueError(f"monitoring: {file!r} is not JSON: {e}") from e
    if not isinstance(doc, dict):
        raise ValueError(f"monitoring: {file!r} holds no monitoring object")
    return Served.from_monitoring(doc)


def run(executor: Executor) -> None:
    state = None
    state_input = executor.input("state")
    if state_input is not None:
        with open(os.path.join(state_input.path, "state.json"), encoding="utf-8") as f:
            state = WindowState.from_dict(json.load(f))
    policy = Policy(
        max_model_age_windows=int(
            executor.number_param("max_model_age_windows", Policy.max_model_age_windows)
        ),
        max_model_age_days=executor.number_param("max_model_age_days", Policy.max_model_age_days),
        retrain_on_skew=bool(executor.param("retrain_on_skew", Policy.retrain_on_skew)),
        ignored_features=executor.string_list_param(
            "ignored_features", list(Policy.ignored_features)
        ),
    )
    anomalies = executor.input("anomalies")
    found = distances(_read_anomalies(anomalies.path)) if anomalies is not None else []
    monitoring = executor.input("monitoring")
    served = _read_served(monitoring.path) if monitoring is not None else None
    decision = decide(state, found, policy, served=served)
    doc = decision.to_dict()
    write_json_artifact(executor.output("decision"), DECISION_FILE, doc)
    executor.set_output_param("retrain", decision.retrain)
    executor.set_output_param("reasons", decision.reasons)


if __name__ == "__main__":
    main(run)
