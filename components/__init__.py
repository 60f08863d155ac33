"""kfpkit's components: ``from kfpkit.components import BigquerySplitOp``.

Each component lives in its own package ``kfpkit.components.<name>`` (definition, launcher,
runtime, README, tests); the KFP component is exported here as ``<Name>Op`` (the package
name in CamelCase, as Google Cloud Pipeline Components does), beside the packages rather
than under their names, so every module stays importable by its dotted path. The images run
the launchers without kfp installed: an ``…Op`` imports its definition (and kfp) on first use.
"""

import importlib
from typing import Any

from kfpkit.catalog import COMPONENTS

_BY_EXPORT = {c.op_name: c for c in COMPONENTS}
__all__ = list(_BY_EXPORT)  # one export per entry of the one list (kfpkit.catalog)


def __getattr__(name: str) -> Any:
    if name not in _BY_EXPORT:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    c = _BY_EXPORT[name]
    op = getattr(importlib.import_module(c.module), c.name)
    globals()[name] = op  # later lookups skip this function
    return op


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
