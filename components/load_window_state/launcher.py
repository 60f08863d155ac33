"""Launcher of load_window_state: what a continuous-training run starts from.

Run inside the core image as
``python3 -m kfpkit.components.load_window_state.launcher --executor_input '{{$}}'``.
"""

from __future__ import annotations

import os
import shutil

from kfpkit import window_state as state
from kfpkit.runtime.executor import (
    Executor,
    main,
    uri_to_path,
    write_json_artifact,
)

STATE_FILE = "state.json"


def _baseline(out_path: str, source: str | None, fallback: str, label: str) -> dict[str, object]:
    """Copies the baseline statistics into the output; without one, the current window's
    (marked ``fallback``) so the comparison step always has an input."""
    os.makedirs(out_path, exist_ok=True)
    chosen = source if source and os.path.isfile(source) else fallback
    shutil.copyfile(chosen, os.path.join(out_path, state.STATISTICS_FILE))
    meta: dict[str, object] = {"file": state.STATISTICS_FILE, "source": chosen, "of": label}
    if chosen == fallback:
        meta["fallback"] = True  # nothing to compare with: distances measured here mean nothing
    return meta


def run(executor: Executor) -> None:
    state_dir = uri_to_path(executor.param("state_uri", ""))
    window = executor.param("window", "")
    loaded = state.load(state_dir, window)
    current = state.statistics_file(
        executor.required_input("current_statistics").path, "current_statistics"
    )
    previous = (
        state.window_statistics(state_dir, loaded.previous_window)
        if loaded.previous_window
        else None
    )
    production = state.production_statistics(state_dir) if loaded.production else None
    out = executor.output("previous_statistics")
    out.metadata.update(
        _baseline(out.path, previous, current, f"window {loaded.previous_window or '(none)'}")
    )
    out = executor.output("production_statistics")
    label = f"production model of window {loaded.production.window}" if loaded.production else ""
    out.metadata.update(_baseline(out.path, production, current, label or "(no production model)"))
    doc = loaded.to_dict()
    write_json_artifact(executor.output("state"), STATE_FILE, doc)


if __name__ == "__main__":
    main(run)
