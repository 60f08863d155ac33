"""The one list of kfpkit's components, and loading a component or pipeline by name.

Everything that enumerates components derives from :data:`COMPONENTS`: the exports of
``kfpkit.components`` (``<Name>Op``), ``kfpkit compile`` (compiled/components/), the image
each component runs in (:func:`kfpkit.images.component_image`), the family venv its tests
run in (conftest.py), the README's table, and the layout checks of tests/test_architecture.py.
The wheel packages whatever folders exist (setup.py); that test keeps folders and list equal.

kfp-free and import-free: the images import it (through kfpkit.images) without kfp.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Component:
    name: str  # the folder components/<name>/ and the KFP component's function name
    family: str  # the image family it runs in (images/<family>/)

    @property
    def package(self) -> str:
        return f"kfpkit.components.{self.name}"

    @property
    def op_name(self) -> str:
        """Its export in ``kfpkit.components``: ``bigquery_split`` -> ``BigquerySplitOp``."""
        return "".join(part.capitalize() for part in self.name.split("_")) + "Op"

    @property
    def module(self) -> str:
        """The module holding the KFP definition (needs kfp)."""
        return f"{self.package}.component"

    @property
    def launcher(self) -> str:
        """The module the image runs (``python3 -m <launcher>``; kfp-free)."""
        return f"{self.package}.launcher"


# In the order of the README's table. A new component: its folder (see README: Architecture)
# and one line here.
COMPONENTS = tuple(
    Component(name, family)
    for name, family in (
        ("bigquery_split", "core"),
        ("tfdv_statistics", "tfdv"),
        ("tfdv_schema", "tfdv"),
        ("tfdv_validate", "tfdv"),
        ("tfdv_validate_splits", "tfdv"),
        ("train", "train"),
        ("evaluate", "train"),
        ("publish_model", "core"),
        ("katib_tune", "train"),
        ("kserve_push", "train"),
        ("record_outcome", "core"),
        ("register_model", "core"),
        ("resolve_model", "core"),
        ("retrain_decision", "tfdv"),
        ("monitor_serving", "tfdv"),
        ("load_window_state", "core"),
        ("save_window_state", "core"),
        ("trigger_pipeline", "core"),
        ("online_experiment", "core"),
    )
)
BY_NAME = {c.name: c for c in COMPONENTS}


def component(name: str) -> Component:
    if name not in BY_NAME:
        raise ValueError(f"Unknown component {name!r}; known: {', '.join(sorted(BY_NAME))}")
    return BY_NAME[name]


def load_component(name: str) -> Any:
    """The KFP component ``name`` (imports kfp)."""
    return getattr(importlib.import_module(component(name).module), name)


def load_pipeline(name: str) -> Any:
    """The KFP pipeline ``name`` of :data:`kfpkit.pipelines.PIPELINES` (imports kfp)."""
    from kfpkit.pipelines import PIPELINES

    if name not in PIPELINES:
        raise ValueError(f"Unknown pipeline {name!r}; known: {', '.join(sorted(PIPELINES))}")
    module, attr = PIPELINES[name]
    return getattr(importlib.import_module(module), attr)
