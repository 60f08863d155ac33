"""Numbered SavedModel version folders (``<base>/<n>/saved_model.pb``), the layout TensorFlow
Serving and KServe's TensorFlow runtime serve from: they pick the highest number."""

from __future__ import annotations

import os

# The version a model's first export gets (the train component's default; KServe and TF
# Serving count from 1).
FIRST_VERSION = 1


def versions(base: str) -> list[int]:
    """Version numbers under ``base`` that hold a SavedModel, ascending; [] when none."""
    if not os.path.isdir(base):
        return []
    return sorted(
        int(name)
        for name in os.listdir(base)
        if name.isdigit() and os.path.isfile(os.path.join(base, name, "saved_model.pb"))
    )


def latest_version_dir(base: str, name: str = "model") -> str:
    """The highest version folder; ValueError naming ``name`` and ``base`` when there is none."""
    found = versions(base)
    if not found:
        raise ValueError(f"{name}: no <version>/saved_model.pb under {base!r}")
    return os.path.join(base, str(found[-1]))
