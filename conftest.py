"""Shared fixtures: a real BigQuery emulator per test session, and fresh datasets per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from kfpkit.emulator import Emulator

PROJECT = "kfpkit-test"


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    log = tmp_path_factory.mktemp("emulator") / "bqemulator.log"
    with Emulator(project=PROJECT, log_path=str(log)) as emu:
        yield emu


@pytest.fixture()
def bq(emulator: Emulator):  # type: ignore[no-untyped-def]
    return emulator.client()


@pytest.fixture()
def dataset(bq) -> str:  # type: ignore[no-untyped-def]
    """A new, empty dataset name (``project.dataset``) for one test."""
    name = f"{PROJECT}.t_{uuid.uuid4().hex[:10]}"
    bq.create_dataset(name)
    return name
