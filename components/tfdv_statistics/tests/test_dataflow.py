"""TFDV statistics on Dataflow, as far as it can be checked without Google Cloud: the Beam
arguments a user passes (``beam_pipeline_args``) build the statistics pipeline on Beam's real
DataflowRunner, and Beam's own code turns it into the Dataflow job request (runner, project,
region, worker pool, machine type, autoscaling, service account, temp location, the
statistics steps).

Not run here (needs a Google Cloud project): staging the pipeline and the SDK to Cloud
Storage, the ``projects.locations.jobs.create`` call itself, and the job on Dataflow's
workers. The runner's ``--dry_run`` stops just before staging; the test then builds the
request's environment with Beam's ``apiclient.Environment``, as the runner does after staging.
"""

from __future__ import annotations

from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner
from apache_beam.runners.dataflow.internal import apiclient
from apache_beam.runners.dataflow.internal.clients import dataflow

from kfpkit.testing import tfdv as tfdv_testing
from kfpkit.tfdv.data_files import find_data_files
from kfpkit.tfdv.statistics import runs_remotely, statistics_pipeline

USER_ARGS = [
    "--runner=DataflowRunner",
    "--project=kfpkit-test",
    "--region=europe-west4",
    "--temp_location=gs://kfpkit-bucket/tmp",
    "--staging_location=gs://kfpkit-bucket/staging",
    "--num_workers=3",
    "--max_num_workers=10",
    "--autoscaling_algorithm=THROUGHPUT_BASED",
    "--machine_type=n2-standard-8",
    "--service_account_email=stats@kfpkit-test.iam.gserviceaccount.com",
    "--job_name=kfpkit-statistics",
]


def test_beam_args_reach_the_dataflow_job_request(tmp_path):
    table = tfdv_testing.sample()
    splits = {
        name: (find_data_files(str(tfdv_testing.write_parquet(table, tmp_path / name))),
               str(tmp_path / f"{name}.pb"))
        for name in ("train", "eval")
    }  # fmt: skip
    assert runs_remotely(USER_ARGS)
    pipeline = statistics_pipeline(splits, [], [*USER_ARGS, "--dry_run=True"])
    assert isinstance(pipeline.runner, DataflowRunner)

    job = pipeline.run().job  # built by the runner; not submitted (dry run)
    assert job.proto.name == "kfpkit-statistics"
    assert job.proto.type == dataflow.Job.TypeValueValuesEnum.JOB_TYPE_BATCH
    transforms = {t.unique_name for t in job.proto_pipeline.components.transforms.values()}
    for name in ("train", "eval"):
        assert {f"GenerateStatistics[{name}]", f"Write[{name}]", f"ReadParquet[{name}]"} <= (
            transforms
        )

    # the request's environment, as the runner builds it once the pipeline is staged
    environment = apiclient.Environment(
        packages=[], options=job.options, environment_version="8",
        proto_pipeline_staged_url="gs://kfpkit-bucket/staging/pipeline.pb",
        proto_pipeline=job.proto_pipeline,
    ).proto  # fmt: skip
    request = dataflow.DataflowProjectsLocationsJobsCreateRequest(
        projectId=job.google_cloud_options.project,
        location=job.google_cloud_options.region,
        job=job.proto,
    )
    assert (request.projectId, request.location) == ("kfpkit-test", "europe-west4")
    (pool,) = environment.workerPools
    assert pool.numWorkers == 3 and pool.machineType == "n2-standard-8"
    assert pool.autoscalingSettings.maxNumWorkers == 10
    # Beam's name for THROUGHPUT_BASED in the v1b3 API
    assert pool.autoscalingSettings.algorithm.name == "AUTOSCALING_ALGORITHM_BASIC"
    assert environment.serviceAccountEmail == "stats@kfpkit-test.iam.gserviceaccount.com"
    # the job's own folder under the user's temp location
    assert environment.tempStoragePrefix.startswith("storage.googleapis.com/kfpkit-bucket/tmp/")
    options = {p.key: p.value for p in environment.sdkPipelineOptions.additionalProperties}
    assert "options" in options  # every option the user passed travels with the job
