"""KFP definition of tfdv_statistics: a thin container component around its launcher."""

from kfp import dsl

from kfpkit import images


@dsl.container_component
def tfdv_statistics(
    data: dsl.Input[dsl.Dataset],
    statistics: dsl.Output[dsl.Artifact],
    report: dsl.Output[dsl.HTML],
    slice_features: list = [],  # noqa: B006 - KFP needs a literal default
    beam_pipeline_args: list = [],  # noqa: B006
):
    """Computes TensorFlow Data Validation statistics of a dataset, with an HTML report.

    Reads Parquet files (as ``bigquery_split`` exports them) as Arrow record batches straight
    into TFDV's statistics pipeline, without a CSV or pandas round trip; CSV files (with a
    header row) work too. Parquet without slices or Beam arguments is computed in the step's
    process by TFDV's own generators, batch by batch (the same statistics, without Beam's
    start-up); CSV, slices or any ``beam_pipeline_args`` run an Apache Beam pipeline: the
    DirectRunner in the container, several local workers or Dataflow.

    Args:
        data: A Dataset whose path is a Parquet or CSV file, or a directory of them (searched
            recursively; all files must be of one format and have the same columns).
        slice_features: Features to slice by: besides ``All Examples``, statistics are
            computed for each value of each named feature. Keep them low-cardinality.
        beam_pipeline_args: Apache Beam pipeline arguments, e.g.
            ``["--direct_num_workers=2", "--direct_running_mode=multi_processing"]`` or
            ``["--runner=DataflowRunner", "--project=...", "--region=...",
            "--temp_location=gs://..."]``. On Dataflow the data and the pipeline root must be
            on gs://.

    Returns:
        statistics: ``FeatureStats.pb`` (a binary ``DatasetFeatureStatisticsList``, TFX's
            layout) under the artifact; metadata ``num_examples``, ``num_features``,
            ``slices``.
        report: A self-contained HTML page (feature tables with histograms and top values);
            it fetches nothing from the network, so it renders in air-gapped clusters.

    Raises (the step fails and writes no outputs):
        A missing, empty or corrupt input file, mixed formats, no rows, unknown slice
        features.
    """
    return dsl.ContainerSpec(
        image=images.component_image(__name__),
        command=["python3", "-m", "kfpkit.components.tfdv_statistics.launcher"],
        args=["--executor_input", "{{$}}"],
    )
