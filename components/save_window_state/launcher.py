"""Launcher of save_window_state: records a window (statistics, decision), given the
published model the model in production, or given the registered model the version
registered from the window.

Run inside the core image as
``python3 -m kfpkit.components.save_window_state.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

import json
import os

from kfpkit import window_state as state
from kfpkit.runtime.executor import Executor, main, uri_to_path

RECORDS = ("decision", "published_model", "registered_model")


def run(executor: Executor) -> None:
    state_dir = uri_to_path(executor.param("state_uri", ""))
    window = executor.param("window", "")
    statistics = executor.required_input("statistics").path
    given = [name for name in RECORDS if executor.input(name) is not None]
    if len(given) != 1:
        raise ValueError(
            f"save_window_state records one thing: give exactly one of {', '.join(RECORDS)}, "
            f"got {', '.join(given) or 'none'}"
        )
    out = executor.output("record")
    registered = executor.input("registered_model")
    if registered is not None:
        meta = registered.metadata
        record = state.record_registration(
            state_dir, window, str(meta.get("version") or ""), model_name=str(meta.get("name", "")),
            uri=str(meta.get("uri", "")), aliases=list(meta.get("aliases") or ()),
            created_at=str(meta.get("created_at", "")),
        )  # fmt: skip
        out.metadata.update({"recorded": "registration", **record})
        return
    published = executor.input("published_model")
    if published is not None:
        model_uri = published.metadata.get("published_uri") or published.uri
        production = state.record_production(
            state_dir, window, statistics, model_uri, published.metadata.get("version", "")
        )
        out.metadata.update({"recorded": "production", **production.__dict__})
        return
    decision_input = executor.required_input("decision")
    with open(os.path.join(decision_input.path, "decision.json"), encoding="utf-8") as f:
        decision = json.load(f)
    folder = state.record_window(state_dir, window, statistics, decision)
    out.metadata.update({"recorded": "window", "window": window, "folder": folder})


if __name__ == "__main__":
    main(run)
