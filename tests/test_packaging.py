"""The wheel the images install: every package found in the folders, their READMEs, and no
test code (kfpkit.testing and tests/ folders stay in the repository)."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _build_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("images_build", ROOT / "images" / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _source_packages() -> set[str]:
    found = set()
    for top, name in (("src/kfpkit", "kfpkit"), ("components", "kfpkit/components"),
                      ("pipelines", "kfpkit/pipelines")):  # fmt: skip
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            if "tests" not in rel.parts and "__pycache__" not in rel.parts:
                found.add(f"{name}/{rel}".removesuffix("/."))
    return found


def test_the_image_wheel_ships_every_package_but_no_test_code(tmp_path):
    wheel = _build_script().build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    packages = {n.rsplit("/", 1)[0] for n in names if n.endswith("/__init__.py")}

    assert not [n for n in names if n.startswith("kfpkit/testing/")]
    assert not [n for n in names if "/tests/" in n]
    assert packages == _source_packages() - {"kfpkit/testing"}
    assert "kfpkit/components/train/README.md" in names
    assert "kfpkit/registry/README.md" in names
    assert "kfpkit/pipelines/targets.yaml" in names
