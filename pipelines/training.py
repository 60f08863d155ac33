"""The end-to-end training pipeline: split, validate the data; each later component extends it.

Stages are added as steps of :func:`training`; every step's outputs are named so that the
next stage (validation, training, evaluation, push) can take them without reshaping.
"""

from kfp import dsl

from kfpkit.components import bigquery_split, tfdv_schema, tfdv_statistics, tfdv_validate
from kfpkit.components.bigquery_split.sql import DEFAULT_RATIOS

PIPELINE_NAME = "kfpkit-training"


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Split a BigQuery table by a repeatable key hash, validate the splits with TFDV "
    "(schema, anomalies, drift), then (later issues) train, evaluate and push.",
)
def training(
    project: str,
    source_table: str,
    destination_dataset: str,
    key_columns: list = ["id"],  # noqa: B006 - KFP needs a literal default
    split_ratios: dict = DEFAULT_RATIOS,  # noqa: B006
    location: str = "US",
    bigquery_endpoint: str = "",
    categorical_drift_threshold: float = 0.1,
    numeric_drift_threshold: float = 0.1,
    fail_on_anomalies: bool = False,
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
        categorical_drift_threshold: L-infinity drift threshold of the validation split's
            categorical features against the train split (0 turns it off).
        numeric_drift_threshold: Jensen-Shannon drift threshold of numeric features.
        fail_on_anomalies: Stop the run when the validation split has anomalies.
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

    train_stats = tfdv_statistics(data=split.outputs["train"])
    train_stats.set_display_name("statistics-train")
    validation_stats = tfdv_statistics(data=split.outputs["validation"])
    validation_stats.set_display_name("statistics-validation")
    schema = tfdv_schema(statistics=train_stats.outputs["statistics"])
    schema.set_display_name("schema")
    validation = tfdv_validate(
        statistics=validation_stats.outputs["statistics"],
        schema=schema.outputs["schema"],
        baseline_statistics=train_stats.outputs["statistics"],
        default_categorical_drift_threshold=categorical_drift_threshold,
        default_numeric_drift_threshold=numeric_drift_threshold,
        fail_on_anomalies=fail_on_anomalies,
    )
    validation.set_display_name("validate-data")
