"""kfpkit's components: ``from kfpkit.components import bigquery_split``.

Each component lives in its own folder (definition, launcher, runner, README, tests). The
images run the launchers without kfp installed, so the definitions are only imported where
kfp is available; in the SDK the names below are the components themselves.
"""

import importlib
import importlib.util

from kfpkit.catalog import COMPONENTS

if importlib.util.find_spec("kfp") is not None:
    # One export per entry of the one list (kfpkit.catalog), under the component's name.
    for _c in COMPONENTS:
        globals()[_c.name] = getattr(importlib.import_module(_c.module), _c.name)
    __all__ = [c.name for c in COMPONENTS]


def _with_importable_submodules(component: object, package: str) -> None:
    """``import kfpkit.components.<name>.<module> as m`` resolves ``<module>`` as an attribute
    of ``kfpkit.components.<name>``, which is the component here (the name users import), not
    the package: the component answers such lookups with the package's submodule, imported
    on first use, so every module stays importable by its dotted path."""
    base = type(component)

    def __getattr__(self: object, attr: str) -> object:  # only when normal lookup fails
        if attr.startswith("__"):
            raise AttributeError(attr)
        try:
            return importlib.import_module(f"{package}.{attr}")
        except ModuleNotFoundError as e:
            if e.name != f"{package}.{attr}":
                raise  # the submodule exists but needs what this environment lacks
            raise AttributeError(f"{base.__name__!r} object has no attribute {attr!r}") from None

    namespace = {"__getattr__": __getattr__, "__module__": base.__module__}
    component.__class__ = type(base.__name__, (base,), namespace)


if importlib.util.find_spec("kfp") is not None:
    for _name in __all__:
        _with_importable_submodules(globals()[_name], f"{__name__}.{_name}")
