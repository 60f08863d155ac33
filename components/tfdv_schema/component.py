"""KFP definition of tfdv_schema: a thin container component around its launcher."""

from kfp import dsl

from kfpkit import images


@dsl.container_component
def tfdv_schema(
    schema: dsl.Output[dsl.Artifact],
    summary: dsl.Output[dsl.Markdown],
    statistics: dsl.Input[dsl.Artifact] = None,
    user_schema: dsl.Input[dsl.Artifact] = None,
    infer_feature_shape: bool = True,
    max_string_domain_size: int = 100,
    coded_strings_as_categories: bool = True,
    serving_excluded_features: list = [],  # noqa: B006 - KFP needs a literal default
):
    """Infers a TFDV schema from statistics, or passes a user's curated schema through as is.

    Inference is TFDV's: each feature's type, presence (required when never missing), shape
    and, for string features with at most ``max_string_domain_size`` distinct values, the
    domain of allowed values. Review an inferred schema before relying on it: freeze it as a
    file and bring it back with ``dsl.importer`` as ``user_schema``.

    Args:
        statistics: Statistics from ``tfdv_statistics`` (its ``All Examples`` slice is used).
        user_schema: A schema text proto (``schema.pbtxt``, or a directory holding one), e.g.
            from ``dsl.importer``. When given, it is used as is and ``statistics`` is ignored.
        infer_feature_shape: Infer fixed shapes (``[1]`` for features always present with one
            value) instead of value counts.
        max_string_domain_size: Largest number of distinct string values made into a domain.
        coded_strings_as_categories: String features whose values are all integers (codes
            such as ``"01"``) get the list of their values as domain, as other small string
            vocabularies do, instead of TFDV's integer range, so an unseen code is an anomaly.
        serving_excluded_features: Features serving data does not have (the label): the
            inferred schema gets TRAINING and SERVING environments, these features absent in
            SERVING; validate serving data with ``environment="SERVING"``.

    Returns:
        schema: ``schema.pbtxt`` (a ``tensorflow_metadata`` Schema text proto, TFX's layout)
            under the artifact; metadata ``num_features`` and ``origin`` (given or inferred).
        summary: A Markdown table of features, types, presence, shapes and domains.

    Raises (the step fails and writes no outputs):
        Neither input given; a user schema that does not parse or declares no features;
        statistics that are not a statistics proto.
    """
    return dsl.ContainerSpec(
        image=images.component_image(__name__),
        command=["python3", "-m", "kfpkit.components.tfdv_schema.launcher"],
        args=["--executor_input", "{{$}}"],
    )
