"""Fixtures shared by the host tests (tests/ and its folders)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRAIN_PYTHON = ROOT / ".venvs" / "train" / "bin" / "python"


@pytest.fixture(scope="session")
def candidate(tmp_path_factory) -> Path:
    """A real SavedModel (``kfpkit.testing.serving.write_candidate``), written by the train
    environment: the SDK environment the host tests run in has no TensorFlow."""
    if not TRAIN_PYTHON.exists():
        pytest.skip(f"{TRAIN_PYTHON} is missing (make .venvs/train/.synced)")
    path = tmp_path_factory.mktemp("models") / "candidate"
    script = ("import sys; from pathlib import Path; from kfpkit.testing.serving "
              "import write_candidate; write_candidate(Path(sys.argv[1]))")  # fmt: skip
    subprocess.run([str(TRAIN_PYTHON), "-c", script, str(path)], check=True, capture_output=True)
    return path
