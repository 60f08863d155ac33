"""The layout is the architecture (README: Architecture): these checks keep it so.

- every folder under components/ is a component of the one list (kfpkit.catalog) and the other
  way round, with component.py, launcher.py, README.md and tests/;
- no component imports another component (shared code goes into a layer under src/kfpkit/);
- no layer imports a component (the host loads them by name through kfpkit.catalog), and only
  the host modules that enumerate pipelines import kfpkit.pipelines;
- nothing but tests imports kfpkit.testing (the wheel, and so the images, leave it out).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from kfpkit import catalog

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS_DIR = ROOT / "components"
SRC = ROOT / "src" / "kfpkit"
# Host modules that enumerate or build pipelines.
PIPELINE_USERS = {"catalog.py", "compile.py", "targets.py"}


def imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def is_test_code(path: Path) -> bool:
    return "tests" in path.parts or path.name == "conftest.py"


def component_folders() -> list[str]:
    return sorted(p.name for p in COMPONENTS_DIR.iterdir() if (p / "__init__.py").exists())


def test_every_component_folder_is_in_the_one_list_and_complete():
    assert component_folders() == sorted(c.name for c in catalog.COMPONENTS)
    for name in component_folders():
        folder = COMPONENTS_DIR / name
        missing = [
            f for f in ("component.py", "launcher.py", "README.md") if not (folder / f).is_file()
        ]
        assert not missing, f"components/{name} lacks {missing}"
        assert list((folder / "tests").glob("test_*.py")), f"components/{name}/tests has no tests"
        assert catalog.component(name).family in ("core", "tfdv", "train"), name


def test_no_component_imports_another_component():
    found = set()
    for name in component_folders():
        for path in (COMPONENTS_DIR / name).rglob("*.py"):
            if is_test_code(path):
                continue
            for module in imported_modules(path):
                parts = module.split(".")
                if parts[:2] == ["kfpkit", "components"] and len(parts) > 2 and parts[2] != name:
                    found.add((name, parts[2]))
    assert not found, sorted(found)


def test_layers_import_no_component_and_only_the_host_imports_pipelines():
    for path in SRC.rglob("*.py"):
        if path.relative_to(SRC).parts[0] == "testing":
            continue
        for module in imported_modules(path):
            assert not module.startswith("kfpkit.components"), f"{path}: imports {module}"
            if module.startswith("kfpkit.pipelines"):
                assert path.name in PIPELINE_USERS, f"{path}: imports {module}"


@pytest.mark.parametrize("top", ["src/kfpkit", "components", "pipelines"])
def test_only_tests_import_the_testing_package(top):
    for path in (ROOT / top).rglob("*.py"):
        if is_test_code(path) or (SRC / "testing") in path.parents:
            continue
        for module in imported_modules(path):
            assert not module.startswith("kfpkit.testing"), f"{path}: imports {module}"


# Host-only code that may use google-cloud-aiplatform (the `vertex` extra): `kfpkit submit`.
AIPLATFORM_USERS = {SRC / "submit" / "vertex.py"}


@pytest.mark.parametrize("top", ["src/kfpkit", "components", "pipelines"])
def test_no_code_an_image_runs_imports_aiplatform(top):
    """kfpkit's own code in the images never needs google-cloud-aiplatform: the Vertex-facing
    steps speak Vertex AI's REST API (kfpkit.vertex_api)."""
    for path in (ROOT / top).rglob("*.py"):
        if is_test_code(path) or (SRC / "testing") in path.parents or path in AIPLATFORM_USERS:
            continue
        for module in imported_modules(path):
            assert not module.startswith(("google.cloud.aiplatform", "vertexai")), (
                f"{path}: imports {module}"
            )


def test_the_core_image_ships_no_aiplatform():
    """182 MB that no core step imports (the tfdv image has it through apache-beam[gcp],
    which TFDV requires)."""
    assert "google-cloud-aiplatform==" not in (ROOT / "images/core/requirements.lock").read_text()
