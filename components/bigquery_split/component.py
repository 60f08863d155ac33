"""KFP definition of bigquery_split: a thin container component around its launcher."""

from kfp import dsl

from kfpkit import images
from kfpkit.components.bigquery_split.sql import DEFAULT_LOCATION, DEFAULT_RATIOS, PARQUET


@dsl.container_component
def bigquery_split(
    source_table: str,
    key_columns: list,
    train: dsl.Output[dsl.Dataset],
    validation: dsl.Output[dsl.Dataset],
    test: dsl.Output[dsl.Dataset],
    other_splits: dsl.Output[dsl.Dataset],
    split_metrics: dsl.Output[dsl.Metrics],
    destination_dataset: str = "",
    project: str = "",
    label_column: str = "",
    split_ratios: dict = DEFAULT_RATIOS,  # noqa: B006 - KFP needs a literal default
    location: str = DEFAULT_LOCATION,
    bigquery_endpoint: str = "",
    export_format: str = PARQUET,
    destination_table_prefix: str = "",
):
    """Splits a BigQuery table, or Parquet/CSV data, into named splits by a repeatable hash
    of a key, in one scan.

    Each row's bucket is ``FARM_FINGERPRINT`` of its key modulo 1,000,000, computed once per
    row; rows with the same key always land in the same split, on every run and on every
    engine that implements FarmHash Fingerprint64. A BigQuery table is split in BigQuery: read
    once into a staging table, each split then created or replaced from it, so re-runs are
    idempotent. Parquet or CSV data is split in the step itself by the embedded engine
    (streamed in Arrow batches, memory flat in the row count), which assigns every row to
    the split BigQuery would: the same outputs, without tables.

    Args:
        source_table: What to split: a BigQuery table, ``project.dataset.table`` or
            ``bq://project.dataset.table``; or Parquet/CSV data, a file or folder given as an
            absolute path, ``file://`` or ``gs://`` URI (the folder's ``*.parquet``/``*.pq``
            or ``*.csv`` files, recursively, of one format and one schema).
        key_columns: One or more columns whose values decide the split. Types STRING, INT64,
            DATE or BOOL. Several columns are hashed as
            ``CONCAT(CAST(c1 AS STRING), '|', CAST(c2 AS STRING), ...)``.
        destination_dataset: BigQuery source: ``dataset`` or ``project.dataset`` receiving
            one table per split, named ``<destination_table_prefix><split>``. Created if
            missing. Unused for data files.
        project: BigQuery source: the project that runs the jobs. Unused for data files.
        label_column: When set, checked before anything is written: the column must exist
            and, for data files, be binary (two values, no NULLs).
        split_ratios: Split name -> fraction; positive, summing to 1; resolution 1e-6. Names
            are letters, digits and ``_``. Buckets are assigned in the order train,
            validation, test, then other names alphabetically.
        location: BigQuery location of the jobs and the destination dataset.
        bigquery_endpoint: API endpoint override; set it for the emulator
            (e.g. ``http://127.0.0.1:9050``), leave empty for BigQuery.
        export_format: ``parquet`` to also write each split as Parquet files under its
            output artifact (``EXPORT DATA`` straight from BigQuery; needs a gs:// pipeline
            root on BigQuery), or ``none`` for tables only (BigQuery sources).
        destination_table_prefix: Prefix of the destination table names; default
            ``<source table name>_``.

    Returns:
        train: The ``train`` split: metadata ``table_id`` (empty for data files),
            ``row_count``, ``schema``, ``source`` and, when exported, Parquet files
            ``data-*.parquet`` under the artifact. A standard split
            not named in ``split_ratios`` gives an artifact with ``absent: true``.
        validation: The ``validation`` split, as ``train``.
        test: The ``test`` split, as ``train``.
        other_splits: Splits with other names: metadata ``splits`` (name -> as ``train``);
            Parquet files under ``<artifact>/<name>/``.
        split_metrics: Row counts ``rows_<split>`` and ``rows_total``.

    Raises (the step fails, writes no outputs, leaves destination tables as they were):
        Invalid or injected identifiers, ratios that are not positive or do not sum to 1, a
        missing source table, path or key or label column, an empty source, NULL keys; for
        data files also unreadable files, mixed formats, files whose column types disagree,
        ragged CSV lines, and a label that is NULL, constant or has a third value.
    """
    return dsl.ContainerSpec(
        image=images.component_image(__name__),
        command=["python3", "-m", "kfpkit.components.bigquery_split.launcher"],
        args=["--executor_input", "{{$}}"],
    )
