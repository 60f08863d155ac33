"""The remote runner of bigquery_split: drives BigQuery jobs, never parses executor input.

Order of work, chosen so a failure never leaves a split that looks complete:
1. Validate every identifier and ratio (ValueError before any job is sent).
2. Look up the source table and the key columns' types.
3. One scan of the source into a staging table holding each row's bucket (hash once a row).
4. Count rows per split and NULL keys from staging; refuse an empty source or NULL keys.
   Nothing has been written to a destination yet.
5. Create or replace each destination table from staging, then export Parquet if asked.
6. Check each destination's row count against step 4; drop the staging table.

Job ids are derived from the step's identity (inputs and output URIs), so a restarted step
finds the jobs its previous attempt started and waits for or reuses them instead of running
them again. A job that fails transiently on BigQuery's side (backendError, rate limits) is
run again under a new id, up to JOB_ATTEMPTS times; each API call is retried by one
mechanism only, the client's own, given API_RETRY (bounded, logged, on is_transient's
errors, dropped connections included). SIGTERM (the pod being stopped) cancels the running
BigQuery job.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from google.api_core import exceptions as gexc
from google.api_core import retry as api_retry
from google.cloud import bigquery

from kfpkit.bigquery import make_client
from kfpkit.components.bigquery_split import sql
from kfpkit.components.bigquery_split.source import PARQUET_PATTERN, SplitResult
from kfpkit.runtime.executor import Cancelled, path_to_uri
from kfpkit.runtime.identity import step_key
from kfpkit.runtime.retry import is_connection_error

_log = logging.getLogger("kfpkit")

EXPORT_FORMATS = (sql.PARQUET, "none")
JOB_ATTEMPTS = 3  # runs of one statement whose job fails transiently on BigQuery's side
# The client library retries 5xx and dropped connections on its own, silently, for 600 s by
# default (a step that looks hung for ten minutes): every call passes API_RETRY instead,
# bounded to this many seconds and logging each retry; when it gives up, the error is final.
API_RETRY_SECONDS = 20.0


def _log_retry(error: Exception) -> None:
    _log.warning("BigQuery call failed, the client retries: %s", error)


@dataclass
class SplitRequest:
    source_table: str
    key_columns: list[str]
    split_ratios: dict[str, float]
    destination_dataset: str
    project: str
    location: str = sql.DEFAULT_LOCATION
    bigquery_endpoint: str = ""
    export_format: str = sql.PARQUET
    destination_table_prefix: str = ""
    # split name -> artifact URI that receives its Parquet files (when exporting)
    export_uris: dict[str, str] = field(default_factory=dict)
    # stable across restarts of the same step, different for every step (see module doc)
    step_key: str = ""
    # checked to be a column of the source when set (the pipeline's label)
    label_column: str = ""


def is_transient(error: BaseException) -> bool:
    """Errors worth retrying: rate limits, 5xx and dropped connections (the client raises
    requests' ConnectionError for those, which is not the built-in one)."""
    if isinstance(error, gexc.TooManyRequests | gexc.ServerError) or is_connection_error(error):
        return True
    if isinstance(error, gexc.GoogleAPICallError):
        reasons = {e.get("reason") for e in (error.errors or []) if isinstance(e, dict)}
        return bool(reasons & {"backendError", "rateLimitExceeded", "internalError"})
    return False


# The library's retry, bounded and logged, on the errors is_transient names.
API_RETRY = api_retry.Retry(
    predicate=is_transient, initial=1.0, maximum=8.0, timeout=API_RETRY_SECONDS, on_error=_log_retry
)


def export_uri_pattern(artifact_uri: str, emulator: bool) -> str:
    """gs:// pattern BigQuery writes a split's Parquet files to, for an artifact URI.

    On a cluster the artifact URI is already gs://. A local artifact path (kfp.local) is
    addressed as gs://<first path segment>/<rest>; the bundled emulator is started with
    BQEMU_GCS_LOCAL_ROOT=/ so that URI is that very local path.
    """
    uri = path_to_uri(artifact_uri)
    if uri.startswith("gs://"):
        return uri.rstrip("/") + "/" + PARQUET_PATTERN
    if uri.startswith("/") and emulator:
        return "gs://" + uri.strip("/") + "/" + PARQUET_PATTERN
    raise ValueError(
        f"Parquet export on BigQuery needs a gs:// artifact URI (a gs:// pipeline root), "
        f"got {artifact_uri!r}; use export_format='none' or a gs:// pipeline root"
    )


class SplitRunner:
    def __init__(self, request: SplitRequest, client: bigquery.Client | None = None):
        self.req = request
        self.ranges = sql.split_ranges(request.split_ratios)
        self.source = sql.parse_table_id(request.source_table, "source_table")
        self.key_columns = sql.check_columns(request.key_columns)
        sql.check_project(request.project, "project")
        sql.check_location(request.location)
        dest_project, dest_dataset = sql.parse_dataset_id(
            request.destination_dataset, request.project
        )
        if request.export_format not in EXPORT_FORMATS:
            raise ValueError(
                f"export_format must be one of {EXPORT_FORMATS}, got {request.export_format!r}"
            )
        prefix = request.destination_table_prefix or f"{self.source.table}_"
        self.destinations = {
            r.name: sql.parse_table_id(
                f"{dest_project}.{dest_dataset}.{prefix}{r.name}", "destination table"
            )
            for r in self.ranges
        }
        for dest in self.destinations.values():
            if dest == self.source:
                raise ValueError(f"destination table {dest.id!r} would overwrite the source table")
        self.columns: list[str] = []  # the source's columns, read in run()
        self._resuming = True  # until a job has to run again (see _query)
        self.step = request.step_key or step_key(request.__dict__)
        self.staging = sql.TableRef(dest_project, dest_dataset, f"_kfpkit_split_{self.step}")
        if request.export_format == sql.PARQUET:
            missing = [r.name for r in self.ranges if r.name not in request.export_uris]
            if missing:
                raise RuntimeError(f"no export URI for splits {missing}")
            for uri in request.export_uris.values():  # fail before any job is sent
                export_uri_pattern(uri, emulator=bool(request.bigquery_endpoint))
        self.client = client or make_client(
            request.project, request.location, request.bigquery_endpoint
        )

    # -- BigQuery calls ---------------------------------------------------------------
    def _query(
        self, statement: str, name: str, effect_present: Callable[[], bool] = lambda: True
    ) -> bigquery.QueryJob:
        """Runs one statement as a job with a deterministic id; resumes a previous attempt's job.

        A finished job of a previous attempt is reused only while ``effect_present()`` says
        what it created is still there, and only until one job had to run again: everything
        after a re-run job runs again too, so no later step reuses results of older inputs.
        """
        job_id = base_id = f"kfpkit_split_{self.step}_{name}"
        job: bigquery.QueryJob | None = None
        try:
            # only this runner makes jobs under these ids, and only query jobs
            existing = cast(bigquery.QueryJob, self.client.get_job(job_id, retry=API_RETRY))
            reusable = self._resuming and existing.error_result is None and effect_present()
            if existing.state == "DONE" and reusable:
                _log.info("Reusing finished job %s from a previous attempt", job_id)
                return existing
            if existing.state != "DONE" and self._resuming:
                _log.info("Waiting for job %s started by a previous attempt", job_id)
                job = existing
            else:
                job_id = f"{job_id}_{os.urandom(4).hex()}"  # failed, undone or stale: run again
        except gexc.NotFound:
            pass
        for attempt in range(1, JOB_ATTEMPTS + 1):
            try:
                if job is None:
                    self._resuming = False
                    job = self._submit(statement, job_id)
                job.result(retry=API_RETRY)
                return job
            except Cancelled:
                # Also when the signal lands during submission (the emulator answers
                # jobs.insert only when the query is done): the job id is ours, so cancel by id.
                self._cancel(job_id)
                raise
            except gexc.GoogleAPICallError as e:
                if attempt < JOB_ATTEMPTS and is_transient(e):
                    # A job that failed on BigQuery's side cannot be retried under its id.
                    _log.warning("Job %s failed transiently (%s); running it again", job_id, e)
                    job, job_id = None, f"{base_id}_retry{attempt}_{os.urandom(2).hex()}"
                    continue
                if isinstance(e, gexc.BadRequest):
                    raise RuntimeError(f"BigQuery rejected {name}: {e.message}") from e
                raise
        raise AssertionError("unreachable")

    def _submit(self, statement: str, job_id: str) -> bigquery.QueryJob:
        _log.info("Running %s:\n%s", job_id, statement)

        try:
            return self.client.query(
                statement, job_id=job_id, location=self.req.location or None, job_retry=None,
                retry=API_RETRY,
            )  # fmt: skip
        except gexc.Conflict:  # an earlier try of this very insert (API_RETRY) reached BigQuery
            return self.client.get_job(job_id, retry=API_RETRY)  # type: ignore[return-value]

    def _cancel(self, job_id: str) -> None:
        _log.warning("Cancelling BigQuery job %s", job_id)
        try:
            self.client.cancel_job(job_id, location=self.req.location or None, retry=API_RETRY)
        except Exception as e:  # noqa: BLE001 - stop anyway; the job may finish on its own
            _log.warning("Could not cancel %s: %s", job_id, e)

    # -- the split --------------------------------------------------------------------------
    def _key_types(self) -> dict[str, str]:
        try:
            table = self.client.get_table(self.source.id, retry=API_RETRY)
        except gexc.NotFound:
            raise ValueError(f"source_table {self.source.id!r} does not exist") from None
        self.columns = [f.name for f in table.schema]
        types = {f.name: f.field_type for f in table.schema}
        missing = [c for c in self.key_columns if c not in types]
        if missing:
            raise ValueError(
                f"key column(s) {missing} not in {self.source.id!r}; "
                f"its columns are {sorted(types)}"
            )
        if self.req.label_column and self.req.label_column not in types:
            raise ValueError(
                f"label column {self.req.label_column!r} not in {self.source.id!r}; "
                f"its columns are {sorted(types)}"
            )
        if sql.BUCKET_COLUMN in types:
            raise ValueError(
                f"source table has a column named {sql.BUCKET_COLUMN!r}, which kfpkit reserves"
            )
        return types

    def _counts(self) -> dict[str, int]:
        job = self._query(sql.counts_sql(self.staging, self.ranges), "count")
        row = next(iter(job.result()))
        return {k: int(v) for k, v in row.items()}

    def run(self) -> list[SplitResult]:
        key_expr = sql.key_expression(self.key_columns, self._key_types())
        dest_ds = bigquery.Dataset(f"{self.staging.project}.{self.staging.dataset}")
        dest_ds.location = self.req.location or None
        self.client.create_dataset(dest_ds, exists_ok=True, retry=API_RETRY)
        self._query(
            sql.assign_sql(self.source, self.staging, key_expr), "assign", self._staging_exists
        )
        counts = self._counts()
        if counts["total"] == 0 or counts["null_keys"]:
            self._drop_staging()
        if counts["total"] == 0:
            raise ValueError(f"source_table {self.source.id!r} is empty: nothing to split")
        if counts["null_keys"]:
            raise ValueError(
                f"{counts['null_keys']} of {counts['total']} rows of {self.source.id!r} have a "
                f"NULL in key column(s) {self.key_columns}; NULL keys cannot be split "
                "repeatably: filter or fill them first"
            )
        # On a system failure the staging table stays (it expires after a day on BigQuery) so
        # that a restart of this step resumes from it instead of scanning the source again.
        results = [self._write_split(r, counts[r.name]) for r in self.ranges]
        self._drop_staging()
        return results

    def _staging_exists(self) -> bool:
        try:
            self.client.get_table(self.staging.id, retry=API_RETRY)
            return True
        except gexc.NotFound:
            return False

    def _drop_staging(self) -> None:
        self.client.delete_table(self.staging.id, not_found_ok=True, retry=API_RETRY)

    def _write_split(self, r: sql.SplitRange, expected_rows: int) -> SplitResult:
        dest = self.destinations[r.name]
        self._query(sql.write_split_sql(self.staging, dest, r, self.columns), f"write_{r.name}")
        table = self.client.get_table(dest.id, retry=API_RETRY)
        if table.num_rows != expected_rows:
            raise RuntimeError(
                f"{dest.id} has {table.num_rows} rows after the write, expected {expected_rows}"
            )
        export_uri = ""
        if self.req.export_format == sql.PARQUET:
            export_uri = self.req.export_uris[r.name]
            self._export(r, export_uri)
        schema = [
            {"name": f.name, "type": f.field_type, "mode": f.mode or "NULLABLE"}
            for f in table.schema
        ]
        return SplitResult(r.name, dest.id, expected_rows, schema, export_uri)

    def _export(self, r: sql.SplitRange, artifact_uri: str) -> None:
        pattern = export_uri_pattern(artifact_uri, emulator=bool(self.req.bigquery_endpoint))
        local_dir = artifact_uri if artifact_uri.startswith("/") else None
        if local_dir:
            # BigQuery (and the emulator) write files but do not create local directories.
            os.makedirs(local_dir, exist_ok=True)
        self._query(
            sql.export_split_sql(self.staging, pattern, r, self.columns), f"export_{r.name}"
        )
