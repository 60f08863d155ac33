"""kfpkit's pipelines: ``from kfpkit.pipelines import training``."""
