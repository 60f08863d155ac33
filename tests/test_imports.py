"""Every module is importable by its dotted path: ``kfpkit.components`` exports each component
as ``<Name>Op`` beside its package ``kfpkit.components.<name>``, never under the package's
name, so no export shadows a package and no component object is patched to stand in for one."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from kfpkit import catalog

ROOT = Path(__file__).resolve().parent.parent
# every module of the package: the layers, the components, the pipelines
FOLDERS = {"src/kfpkit": "kfpkit", "components": "kfpkit.components",
           "pipelines": "kfpkit.pipelines"}  # fmt: skip
MODULES = sorted(
    ".".join([package, *p.relative_to(ROOT / folder).with_suffix("").parts])
    for folder, package in FOLDERS.items()
    for p in (ROOT / folder).rglob("*.py")
    if "tests" not in p.relative_to(ROOT / folder).parts
    and p.name not in ("__init__.py", "conftest.py", "__main__.py")
)
# In a fresh interpreter, after every export of the components namespace is loaded (as a
# notebook would): ``import a.b.c as m`` for each module; a module that needs an image
# family's stack (TF, TFDV, kserve) reports the missing package.
_PROBE = """
import json, sys
from kfpkit.components import *
result = {}
for module in json.loads(sys.argv[1]):
    try:
        exec(f"import {module} as m")
        result[module] = "ok" if m.__name__ == module else f"got {m.__name__}"
    except ModuleNotFoundError as e:
        result[module] = "ok" if not e.name.startswith("kfpkit") else repr(e)
    except Exception as e:
        result[module] = repr(e)
print(json.dumps(result))
"""


def test_every_module_imports_by_dotted_path():
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(MODULES)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert "kfpkit.components.bigquery_split.sql" in MODULES and "kfpkit.tabular" in MODULES
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(result) == len(MODULES) > 150
    assert {m: r for m, r in result.items() if r != "ok"} == {}


def test_each_component_is_exported_as_an_op_beside_its_package():
    from kfp.dsl import base_component

    components = importlib.import_module("kfpkit.components")
    assert components.__all__ == [c.op_name for c in catalog.COMPONENTS]
    assert "BigquerySplitOp" in components.__all__
    for c in catalog.COMPONENTS:
        op = getattr(components, c.op_name)
        assert isinstance(op, base_component.BaseComponent), c.op_name
        assert op is catalog.load_component(c.name)
        assert op.name == c.name.replace("_", "-")  # the compiled task keeps its name
        # kfp's own class, not a subclass made to answer for the package's submodules
        cls = type(op)
        assert getattr(importlib.import_module(cls.__module__), cls.__qualname__) is cls
        package = getattr(components, c.name)  # the package, not the component
        assert isinstance(package, types.ModuleType) and package.__name__ == c.package
    with pytest.raises(AttributeError, match="NoSuchOp"):
        components.NoSuchOp  # noqa: B018
