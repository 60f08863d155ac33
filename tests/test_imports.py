"""Every module is importable by its dotted path, also where a component's name shadows its
package (``from kfpkit.components import bigquery_split`` is the component)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(
    "kfpkit.components." + ".".join(p.relative_to(ROOT / "components").with_suffix("").parts)
    for p in (ROOT / "components").rglob("*.py")
    if "tests" not in p.parts and p.name != "__init__.py"
)
# In a fresh interpreter, after the components namespace is imported (as a notebook would):
# ``import a.b.c as m`` for each module; a module that needs an image family's stack (TF,
# TFDV, kserve) reports the missing package.
_PROBE = """
import json, sys
import kfpkit.components
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
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(result) == len(MODULES) > 40
    assert {m: r for m, r in result.items() if r != "ok"} == {}


def test_component_names_are_still_the_components():
    from kfp.dsl import base_component

    components = importlib.import_module("kfpkit.components")
    for name in components.__all__:
        assert isinstance(getattr(components, name), base_component.BaseComponent), name
    with pytest.raises(AttributeError, match="no_such_module"):
        components.bigquery_split.no_such_module  # noqa: B018
