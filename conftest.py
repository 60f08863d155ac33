"""Shared fixtures: a real BigQuery emulator per test session, and fresh datasets per test.

Test selection by image family: pytest runs in one environment per family (``make test``).
``KFPKIT_TEST_FAMILY`` (default ``core``: the SDK environment) names it; only the tests of
components of that family are collected; ``tests/`` belongs to ``core`` except the layer folders
in ``LAYER_TEST_FAMILIES``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kfpkit.images import COMPONENT_FAMILIES

if TYPE_CHECKING:
    from kfpkit.emulator import Emulator

PROJECT = "kfpkit-test"
ROOT = Path(__file__).resolve().parent
TEST_FAMILY = os.environ.get("KFPKIT_TEST_FAMILY", "core")
# Tests of a shared layer under tests/<layer>/ that run in another family than core.
LAYER_TEST_FAMILIES = {"tfdv": "tfdv", "serving": "train", "explain": "train"}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    try:
        parts = collection_path.resolve().relative_to(ROOT).parts
    except ValueError:
        return None
    if len(parts) >= 2 and parts[0] == "components" and parts[1] in COMPONENT_FAMILIES:
        return COMPONENT_FAMILIES[parts[1]] != TEST_FAMILY or None
    if len(parts) >= 2 and parts[0] == "tests":
        return LAYER_TEST_FAMILIES.get(parts[1], "core") != TEST_FAMILY or None
    return None


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    from kfpkit.emulator import Emulator

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


@pytest.fixture(scope="session")
def kube_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real kube-apiserver + etcd on 127.0.0.1 for the session (no controllers: a test plays
    the controller). Install CRDs with ``kube_server.install_crd(manifest)``; clients from
    ``kube_server.api_client()``. Skips only when the binary or etcd is missing."""
    from kfpkit.testing import kube_apiserver

    reason = kube_apiserver.missing_reason()
    if reason:
        pytest.skip(reason)
    with kube_apiserver.KubeTestServer(workdir=tmp_path_factory.mktemp("kube")) as server:
        yield server
