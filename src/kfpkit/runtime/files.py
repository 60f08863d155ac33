"""Finds the data files of an input artifact: the path itself, or the files under it."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence


def files_under(path: str, suffixes: Sequence[str], name: str, label: str) -> list[str]:
    """``[path]`` for a file; else the files under the directory (recursive, sorted) whose
    suffix is one of ``suffixes`` (case-insensitive). ValueError naming ``name`` when the path
    does not exist or no ``label`` files are there."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise ValueError(f"{name}: {path!r} does not exist")
    found = sorted(
        p
        for p in glob.glob(os.path.join(path, "**", "*"), recursive=True)
        if os.path.isfile(p) and os.path.splitext(p)[1].lower() in suffixes
    )
    if not found:
        raise ValueError(f"{name}: no {label} files under {path!r}")
    return found
