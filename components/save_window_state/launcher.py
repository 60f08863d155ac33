"""Launcher of save_window_state: records a window (statistics, decision) or, given the
published model, the model in production.

Run inside the core image as
``python3 -m kfpkit.components.save_window_state.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

import json
import os

from kfpkit import window_state as state
from kfpkit.runtime.executor import Executor, main, uri_to_path


def run(executor: Executor) -> None:
    state_dir = uri_to_path(executor.param("state_uri", ""))
    window = executor.param("window", "")
    statistics = executor.required_input("statistics").path
    published = executor.input("published_model")
    out = executor.output("record")
    if published is not None:
        model_uri = published.metadata.get("published_uri") or published.uri
        production = state.record_production(
            state_dir, window, statistics, model_uri, published.metadata.get("version", "")
        )
        out.metadata.update({"recorded": "production", **production.__dict__})
        return
    decision_input = executor.input("decision")
    if decision_input is None:
        raise ValueError("save_window_state needs a decision (a window) or a published_model")
    with open(os.path.join(decision_input.path, "decision.json"), encoding="utf-8") as f:
        decision = json.load(f)
    folder = state.record_window(state_dir, window, statistics, decision)
    out.metadata.update({"recorded": "window", "window": window, "folder": folder})


if __name__ == "__main__":
    main(run)
