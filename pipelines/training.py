"""The end-to-end training pipeline. Today: the split; each later component extends it.

Stages are added as steps of :func:`training`; every step's outputs are named so that the
next stage (validation, training, evaluation, push) can take them without reshaping.
"""

from kfp import dsl

from kfpkit.components import bigquery_split
from kfpkit.components.bigquery_split.sql import DEFAULT_RATIOS

PIPELINE_NAME = "kfpkit-training"


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Split a BigQuery table by a repeatable key hash, then (later issues) validate, "
    "train, evaluate and push.",
)
def training(
    project: str,
    source_table: str,
    destination_dataset: str,
    key_columns: list = ["id"],  # noqa: B006 - KFP needs a literal default
    split_ratios: dict = DEFAULT_RATIOS,  # noqa: B006
    location: str = "US",
    bigquery_endpoint: str = "",
):
    """Training pipeline.

    Args:
        project: Project running the BigQuery jobs.
        source_table: ``project.dataset.table`` holding the examples.
        destination_dataset: Dataset receiving one table per split.
        key_columns: Columns whose hash decides each row's split.
        split_ratios: Split name -> fraction.
        location: BigQuery location.
        bigquery_endpoint: Set to the emulator's URL for local runs; empty on BigQuery.
    """
    split = bigquery_split(
        source_table=source_table,
        key_columns=key_columns,
        split_ratios=split_ratios,
        destination_dataset=destination_dataset,
        project=project,
        location=location,
        bigquery_endpoint=bigquery_endpoint,
        export_format="parquet",
    )
    split.set_display_name("split")
