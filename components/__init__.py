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
    from kfpkit.components.publish_model.component import publish_model
    from kfpkit.components.tfdv_schema.component import tfdv_schema
    from kfpkit.components.tfdv_statistics.component import tfdv_statistics
    from kfpkit.components.tfdv_validate.component import tfdv_validate
    from kfpkit.components.tfdv_validate_splits.component import tfdv_validate_splits
    from kfpkit.components.train.component import train

    __all__ = [
        "bigquery_split",
        "evaluate",
        "katib_tune",
        "kserve_push",
        "publish_model",
        "tfdv_schema",
        "tfdv_statistics",
        "tfdv_validate",
        "tfdv_validate_splits",
        "train",
    ]
