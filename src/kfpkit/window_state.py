"""The continuous-training state folder (shared by load_window_state, save_window_state and
retrain_decision): each window's statistics and decision, and which
window's model is in production. Pure file work (no kfp, no TFDV).

Layout under the state URI (a local path, or gs:// read through KFP's /gcs/ mount)::

    windows/<window>/FeatureStats.pb    statistics of the window's train split
    windows/<window>/decision.json      what the run decided, and why
    windows/<window>/registration.json  the model version registered from the window's data
    production/FeatureStats.pb          training statistics of the model in production
    production/production.json          {"window", "model_uri", "version", "promoted_at"}

Window labels sort in time order (years ``2016``, ISO dates ``2016-01-31``): the previous
window is the greatest recorded label below the current one, and a model's age in windows is
the number of recorded windows after its own, up to and including the current one (0 when
the current window is the model's own or an earlier one: a re-run trains nothing new). A
window that registered a model version (``registration.json``, written once the registry
answered, blessed or not) is never trained again; one whose run decided to train and failed
before registering created no version, so a re-run trains it. Every file is written under a
temporary name and renamed into place, so a reader never sees half of one and a restarted
step simply writes it again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

STATISTICS_FILE = "FeatureStats.pb"  # TFX's name, as the tfdv components write it
DECISION_FILE = "decision.json"
PRODUCTION_FILE = "production.json"
WINDOWS = "windows"
PRODUCTION = "production"
REGISTRATION_FILE = "registration.json"

_WINDOW_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")


def check_window(window: str) -> str:
    """A window label: letters, digits, ``_``, ``.``, ``-`` (it names a folder and a table),
    and a number written without leading zeros (a label is an identifier: ``02015`` would be
    a second window of 2015's data, with its own folder, table and registry lineage)."""
    if not isinstance(window, str) or not _WINDOW_RE.match(window):
        raise ValueError(
            f"window must be a label such as '2016' or '2016-01-31' (letters, digits, _ . -), "
            f"got {window!r}"
        )
    if window.isdigit() and len(window) > 1 and window.startswith("0"):
        raise ValueError(
            f"window {window!r} is a number written with leading zeros: write it "
            f"{str(int(window))!r} (a label is an identifier: {window!r} and "
            f"{str(int(window))!r} would be two windows of the same data)"
        )
    return window


def check_state_dir(path: str) -> str:
    if not path:
        raise ValueError("state_uri is empty: give the folder the pipeline keeps its state in")
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"state_uri {path!r} exists and is not a directory")
    return path


@dataclass(frozen=True)
class Production:
    window: str
    model_uri: str
    version: str
    promoted_at: str  # ISO 8601, UTC

    def age_days(self, now: datetime | None = None) -> float:
        promoted = datetime.fromisoformat(self.promoted_at)
        return ((now or datetime.now(UTC)) - promoted).total_seconds() / 86400


@dataclass(frozen=True)
class WindowState:
    """What a run knows before it decides: the previous window and the production model."""

    window: str
    previous_window: str  # "" on the first window
    recorded_windows: tuple[str, ...]  # before this run, in order
    production: Production | None
    windows_since_production: int  # 0 without a production model
    # the version an earlier run of this window registered ("" when none: see registration)
    window_registered_before: str = ""

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["recorded_windows"] = list(self.recorded_windows)
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> WindowState:
        prod = doc.get("production")
        return cls(
            window=doc["window"],
            previous_window=doc.get("previous_window", ""),
            recorded_windows=tuple(doc.get("recorded_windows", ())),
            production=Production(**prod) if prod else None,
            windows_since_production=int(doc.get("windows_since_production", 0)),
            window_registered_before=str(doc.get("window_registered_before", "")),
        )


def recorded_windows(state_dir: str) -> list[str]:
    """Windows whose statistics were recorded, in label order."""
    base = os.path.join(state_dir, WINDOWS)
    if not os.path.isdir(base):
        return []
    return sorted(
        name
        for name in os.listdir(base)
        if _WINDOW_RE.match(name) and os.path.isfile(os.path.join(base, name, STATISTICS_FILE))
    )


def read_production(state_dir: str) -> Production | None:
    path = os.path.join(state_dir, PRODUCTION, PRODUCTION_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return Production(**json.load(f))
    except (ValueError, TypeError) as e:
        raise RuntimeError(f"{path} is not a production record: {e}") from e


def load(state_dir: str, window: str) -> WindowState:
    """The state a run of ``window`` starts from (a re-run of a window ignores its own record)."""
    check_window(window)
    check_state_dir(state_dir)
    windows = [w for w in recorded_windows(state_dir) if w != window]
    earlier = [w for w in windows if w < window]
    production = read_production(state_dir)
    since = 0
    # a re-run of the production model's own window (or of an earlier one) is age 0: the
    # model has seen this window's data already
    if production is not None and window > production.window:
        since = len([w for w in windows if production.window < w < window]) + 1
    return WindowState(
        window=window,
        previous_window=earlier[-1] if earlier else "",
        recorded_windows=tuple(windows),
        production=production,
        windows_since_production=since,
        window_registered_before=registered_version(state_dir, window),
    )


def registration_path(state_dir: str, window: str) -> str:
    return os.path.join(state_dir, WINDOWS, window, REGISTRATION_FILE)


def registered_version(state_dir: str, window: str) -> str:
    """The model version a run of ``window`` registered ("" when none did: never trained, or
    a run that decided to train and failed before its model was registered)."""
    path = registration_path(state_dir, window)
    if not os.path.isfile(path):
        return ""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except ValueError as e:
        raise RuntimeError(f"{path} is not a registration record: {e}") from e
    if not isinstance(doc, dict) or not str(doc.get("version") or ""):
        raise RuntimeError(f"{path} is not a registration record (no version): {doc!r}")
    return str(doc["version"])


def window_statistics(state_dir: str, window: str) -> str:
    return os.path.join(state_dir, WINDOWS, window, STATISTICS_FILE)


def production_statistics(state_dir: str) -> str:
    return os.path.join(state_dir, PRODUCTION, STATISTICS_FILE)


def _atomic_copy(source: str, target: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = f"{target}.tmp-{uuid.uuid4().hex[:8]}"
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _atomic_json(doc: dict[str, Any], target: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = f"{target}.tmp-{uuid.uuid4().hex[:8]}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, target)


def statistics_file(path: str, name: str) -> str:
    """The FeatureStats.pb of a statistics artifact folder (or the file itself)."""
    candidate = os.path.join(path, STATISTICS_FILE) if os.path.isdir(path) else path
    if not os.path.isfile(candidate):
        raise ValueError(f"{name}: no {STATISTICS_FILE} at {path!r}")
    return candidate


def record_window(state_dir: str, window: str, statistics: str, decision: dict[str, Any]) -> str:
    """Keeps a window's statistics (the next window's drift baseline) and its decision.

    The decision is written first: a window counts as recorded once its statistics are
    there, so a crash between the two leaves a window the next run does not see yet."""
    check_window(window)
    check_state_dir(state_dir)
    folder = os.path.join(state_dir, WINDOWS, window)
    _atomic_json(decision, os.path.join(folder, DECISION_FILE))
    _atomic_copy(statistics_file(statistics, "statistics"), os.path.join(folder, STATISTICS_FILE))
    return folder


def record_production(
    state_dir: str, window: str, statistics: str, model_uri: str, version: str,
    now: datetime | None = None,
) -> Production:  # fmt: skip
    """Marks the model trained on ``window`` as the one in production (after its push).

    The statistics go first, the record last: the record never points at statistics of an
    older model."""
    check_window(window)
    check_state_dir(state_dir)
    if not model_uri:
        raise ValueError("model_uri is empty: the production record needs the published model")
    _atomic_copy(statistics_file(statistics, "statistics"), production_statistics(state_dir))
    promoted = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    production = Production(window, model_uri, str(version), promoted)
    _atomic_json(asdict(production), os.path.join(state_dir, PRODUCTION, PRODUCTION_FILE))
    return production


def record_registration(
    state_dir: str, window: str, version: str, model_name: str = "", uri: str = "",
    aliases: tuple[str, ...] | list[str] = (), created_at: str = "",
) -> dict[str, Any]:  # fmt: skip
    """Records the model version registered from ``window``'s data (after register_model,
    blessed or not): a later run of the window trains nothing.

    Written whole under a temporary name and renamed; every value comes from the registry's
    answer (``created_at`` too), so a KFP retry of the step writes the same record again."""
    check_window(window)
    check_state_dir(state_dir)
    if not str(version or ""):
        raise ValueError(
            f"version is empty: window {window}'s registration record needs the registered "
            "model version (register_model's registered_model metadata 'version')"
        )
    record = {"window": window, "model_name": model_name, "version": str(version), "uri": uri,
              "aliases": sorted(aliases), "created_at": created_at}  # fmt: skip
    _atomic_json(record, registration_path(state_dir, window))
    return record


def read_decisions(state_dir: str) -> dict[str, dict[str, Any]]:
    """window -> its recorded decision, in window order (for reports)."""
    found = {}
    for window in recorded_windows(state_dir):
        path = os.path.join(state_dir, WINDOWS, window, DECISION_FILE)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                found[window] = json.load(f)
    return found
