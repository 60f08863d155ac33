"""kfpkit's components: ``from kfpkit.components import bigquery_split``.

Each component lives in its own folder (definition, launcher, runner, README, tests). The
images run the launchers without kfp installed, so the definitions are only imported where
kfp is available; in the SDK the names below are the components themselves.
"""

import importlib.util

if importlib.util.find_spec("kfp") is not None:
    from kfpkit.components.bigquery_split.component import bigquery_split
    from kfpkit.components.evaluate.component import evaluate
    from kfpkit.components.katib_tune.component import katib_tune
    from kfpkit.components.kserve_push.component import kserve_push
    from kfpkit.components.load_window_state.component import load_window_state
    from kfpkit.components.monitor_serving.component import monitor_serving
    from kfpkit.components.online_experiment.component import online_experiment
    from kfpkit.components.publish_model.component import publish_model
    from kfpkit.components.record_outcome.component import record_outcome
    from kfpkit.components.register_model.component import register_model
    from kfpkit.components.resolve_model.component import resolve_model
    from kfpkit.components.retrain_decision.component import retrain_decision
    from kfpkit.components.save_window_state.component import save_window_state
    from kfpkit.components.tfdv_schema.component import tfdv_schema
    from kfpkit.components.tfdv_statistics.component import tfdv_statistics
    from kfpkit.components.tfdv_validate.component import tfdv_validate
    from kfpkit.components.tfdv_validate_splits.component import tfdv_validate_splits
    from kfpkit.components.train.component import train
    from kfpkit.components.trigger_pipeline.component import trigger_pipeline

    __all__ = [
        "bigquery_split",
        "evaluate",
        "katib_tune",
        "kserve_push",
        "load_window_state",
        "monitor_serving",
        "online_experiment",
        "publish_model",
        "record_outcome",
        "register_model",
        "resolve_model",
        "retrain_decision",
        "save_window_state",
        "tfdv_schema",
        "tfdv_statistics",
        "tfdv_validate",
        "tfdv_validate_splits",
        "train",
        "trigger_pipeline",
    ]


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
