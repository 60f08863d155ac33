"""KFP definition of publish_model: a thin container component around its launcher."""

from kfp import dsl

from kfpkit import images


@dsl.container_component
def publish_model(
    model: dsl.Input[dsl.Model],
    destination: str,
    published_model: dsl.Output[dsl.Model],
    published_uri: dsl.OutputPath(str),  # type: ignore[valid-type]  # kfp's own idiom
):
    """Publishes a (blessed) SavedModel into a versioned serving directory.

    Copies the model's highest version folder to ``<destination>/<n>/``, where ``n`` is one
    more than the highest version already there: the layout TensorFlow Serving and KServe's
    TensorFlow runtime serve from (they pick the highest version). Run it under
    ``dsl.If(evaluate.outputs["blessed"] == True)``. The copy is renamed into place, so a
    reader never sees a partial version; a restarted step finds the version it published
    (recorded in ``kfpkit-source.json``) instead of publishing the model again. Earlier
    versions are kept (roll back by deleting the newest).

    Args:
        model: A Model with ``<version>/saved_model.pb`` folders (train's output).
        destination: The serving model directory: ``gs://bucket/models/<name>`` on a
            cluster (through KFP's gcsfuse mount), or a local path under the pipeline root
            for local runs. Created if missing.

    Returns:
        published_model: Metadata ``published_uri``, ``version``, ``source``, ``reused``.
        published_uri: URI of the published version folder.

    Raises (the step fails and writes no outputs):
        A model without a SavedModel version folder, an empty destination or one that is a
        file.
    """
    return dsl.ContainerSpec(
        image=images.component_image(__name__),
        command=["python3", "-m", "kfpkit.components.publish_model.launcher"],
        args=["--executor_input", "{{$}}"],
    )
