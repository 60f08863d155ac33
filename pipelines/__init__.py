"""kfpkit's pipelines: ``from kfpkit.pipelines import training``.

:data:`PIPELINES` is the registry the ``kfpkit`` command compiles and runs; each entry is
``name -> (module, pipeline function name)``.
"""

PIPELINES = {
    "training": ("kfpkit.pipelines.training", "training"),
    "continuous_training": ("kfpkit.pipelines.continuous_training", "continuous_training"),
    "monitoring": ("kfpkit.pipelines.monitoring", "monitoring"),
}
