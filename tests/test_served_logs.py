"""read_served on real Parquet logs in the contract's layout (local, gs:// through pyarrow's
file system abstraction) and on a Vertex AI logging table in the BigQuery emulator."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from kfpkit.serving import served_logs
from kfpkit.serving.served_logs import JOINED_COLUMNS, REQUEST_COLUMNS, read_served
from kfpkit.testing.served_logs import (
    T0,
    Variant,
    feedback_table,
    simulate,
    write_experiment,
    write_feedback,
    write_requests,
)


def _requests(ids, variant="v1", start=T0, step=timedelta(minutes=1), **extra) -> pa.Table:
    n = len(ids)
    columns = {
        "age": pa.array([float(i) for i in range(n)]),
        "city": pa.array(["a"] * n),
        "prediction": pa.array([0.5] * n),
        "model_name": pa.array(["m"] * n),
        "model_version": pa.array([variant] * n),
        "variant": pa.array([variant] * n),
        "protocol": pa.array(["v1"] * n),
        "request_id": pa.array(ids),
        "row": pa.array([0] * n, pa.int32()),
        "timestamp": pa.array([start + i * step for i in range(n)], served_logs.TIMESTAMP),
        "latency_ms": pa.array([3.0] * n),
        "status": pa.array([200] * n, pa.int32()),
        "out_of_domain": pa.array([""] * n),
    }
    columns.update(extra)
    return pa.table(columns)


def test_requests_are_joined_with_their_feedback_in_order(tmp_path):
    requests, feedback = simulate(2000, {"a": Variant(), "b": Variant(skill=0.5)}, seed=1,
                                  labelled=0.7)  # fmt: skip
    write_experiment(tmp_path, requests, feedback, files=3)
    table = read_served(str(tmp_path))
    assert table.num_rows == 2000
    assert table.column_names[-len(REQUEST_COLUMNS) - 3 :] == [*REQUEST_COLUMNS, *JOINED_COLUMNS]
    assert table.column("request_id").to_pylist() == requests.column("request_id").to_pylist()
    labels = dict(zip(feedback.column("request_id").to_pylist(),
                      feedback.column("label").to_pylist(), strict=True))  # fmt: skip
    got = table.column("label").to_pylist()
    assert got == [labels.get(r) for r in requests.column("request_id").to_pylist()]
    assert table.column("label").null_count == 2000 - feedback.num_rows
    assert served_logs.duplicate_feedback(table) == 0
    assert served_logs.unmatched_feedback(table) == 0


def test_the_window_is_half_open_on_the_request_timestamp(tmp_path):
    write_requests(tmp_path, _requests([f"r{i}" for i in range(10)]))
    table = read_served(str(tmp_path), T0 + timedelta(minutes=2), "2026-01-01T00:05:00Z")
    assert table.column("request_id").to_pylist() == ["r2", "r3", "r4"]
    naive = read_served(str(tmp_path), start=datetime(2026, 1, 1, 0, 8))  # naive means UTC
    assert naive.column("request_id").to_pylist() == ["r8", "r9"]
    with pytest.raises(ValueError, match="not before end"):
        read_served(str(tmp_path), T0 + timedelta(hours=1), T0)
    with pytest.raises(ValueError, match="'yesterday'"):
        read_served(str(tmp_path), "yesterday")


def test_an_empty_window_gives_an_empty_table_with_the_columns(tmp_path):
    write_requests(tmp_path, _requests(["r0", "r1"]))
    table = read_served(str(tmp_path), T0 + timedelta(days=1))
    assert table.num_rows == 0
    assert table.column_names == ["age", "city", *REQUEST_COLUMNS, *JOINED_COLUMNS]
    (tmp_path / "none").mkdir()
    nothing = read_served(str(tmp_path / "none"))
    assert nothing.num_rows == 0 and nothing.column_names == [*REQUEST_COLUMNS, *JOINED_COLUMNS]


def test_only_top_level_finished_request_files_are_read(tmp_path):
    write_requests(tmp_path, _requests(["r0"]))
    write_requests(tmp_path / "older", _requests(["nested"]))  # not top level
    pq.write_table(_requests(["partial"]), tmp_path / ".data-x.parquet.tmp")  # being written
    pq.write_table(_requests(["other"]), tmp_path / "policy-state.parquet")  # not a log file
    assert read_served(str(tmp_path)).column("request_id").to_pylist() == ["r0"]


def test_the_first_feedback_of_a_row_is_kept_and_the_rest_counted(tmp_path):
    write_requests(tmp_path, _requests(["r0", "r1", "r2"]))
    late, early = T0 + timedelta(hours=2), T0 + timedelta(hours=1)
    write_feedback(
        tmp_path, feedback_table(["r0", "r1"], [0, 0], [1.0, 0.0], timestamps=[late, late])
    )
    # a later file, but earlier feedback for r1; and feedback for a row never logged
    write_feedback(tmp_path, feedback_table(["r1", "r1", "zz"], [0, 0, 0], [1.0, 0.0, 1.0],
                                            timestamps=[early, early, early]))  # fmt: skip
    table = read_served(str(tmp_path))
    assert table.column("label").to_pylist() == [1.0, 1.0, None]
    assert table.column("feedback_timestamp").to_pylist()[1] == early
    assert served_logs.duplicate_feedback(table) == 2
    assert served_logs.unmatched_feedback(table) == 1


def test_older_logs_without_the_optional_columns_get_defaults(tmp_path):
    old = _requests(["r0", "r1"], variant="7").drop(["variant", "latency_ms", "status",
                                                      "out_of_domain"])  # fmt: skip
    write_requests(tmp_path, old)
    write_requests(tmp_path, _requests(["r2"], variant="8", start=T0 + timedelta(hours=1)))
    table = read_served(str(tmp_path))
    assert table.column("variant").to_pylist() == ["7", "7", "8"]
    assert table.column("status").to_pylist() == [200, 200, 200]
    assert table.column("out_of_domain").to_pylist() == ["", "", ""]
    assert table.column("latency_ms").to_pylist() == [None, None, 3.0]
    assert table.schema.field("row").type == pa.int32()


def test_an_int64_row_and_a_null_only_feature_are_compatible(tmp_path):
    write_requests(tmp_path, _requests(["r0"], row=pa.array([0], pa.int64()),
                                       city=pa.nulls(1)))  # fmt: skip
    write_requests(tmp_path, _requests(["r1"], start=T0 + timedelta(hours=1)))
    table = read_served(str(tmp_path))
    assert table.schema.field("city").type == pa.string()
    assert table.column("city").to_pylist() == [None, "a"]


def test_files_of_two_schemas_are_refused_naming_both(tmp_path):
    first = write_requests(tmp_path, _requests(["r0"]))
    second = write_requests(
        tmp_path, _requests(["r1"], start=T0 + timedelta(hours=1), age=pa.array(["old"]))
    )
    with pytest.raises(ValueError, match="two incompatible schemas") as e:
        read_served(str(tmp_path))
    assert str(first) in str(e.value) and str(second) in str(e.value)
    assert "age: string" in str(e.value)


def test_a_file_without_a_contract_column_is_named(tmp_path):
    bad = write_requests(tmp_path, _requests(["r0"]).drop(["request_id"]))
    with pytest.raises(ValueError, match="request_id") as e:
        read_served(str(tmp_path))
    assert str(bad) in str(e.value)


def test_bad_sources_are_named(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_served(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="unsupported log source 's3://b/x'"):
        read_served("s3://b/x")
    with pytest.raises(ValueError, match="bq://project.dataset.table"):
        read_served("bq://p.d")
    with pytest.raises(ValueError, match="bq://"):
        read_served("bq://my-project.d.t`; DROP TABLE x")
    not_parquet = tmp_path / "logs"
    not_parquet.mkdir()
    (not_parquet / "data-1.parquet").write_text("not parquet")
    with pytest.raises(ValueError, match="data-1.parquet"):
        read_served(str(not_parquet))


def test_a_gs_folder_through_pyarrows_file_system(tmp_path):
    """The gs:// path: bucket/folder resolved on a pyarrow file system (a local root here,
    GcsFileSystem in production), listing, reading and the feedback folder included."""
    folder = tmp_path / "bucket" / "logs" / "model"
    requests, feedback = simulate(300, {"a": Variant()}, seed=2, labelled=0.5)
    write_experiment(folder, requests, feedback, files=2)
    root = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    table = read_served("gs://bucket/logs/model/", filesystem=root)
    assert table.num_rows == 300 and table.column("label").null_count == 300 - feedback.num_rows
    empty = read_served("gs://bucket/logs/other", filesystem=root)  # no objects yet
    assert empty.num_rows == 0
    assert isinstance(served_logs._filesystem("gs://b/x", None)[0], pafs.GcsFileSystem)


# --- Vertex AI request-response logging table, in the BigQuery emulator ------------------


@pytest.mark.emulator
def test_a_vertex_logging_table(bq, dataset):
    from google.cloud import bigquery

    table_id = f"{dataset}.request_response_logging"
    schema = [
        bigquery.SchemaField("endpoint", "STRING"),
        bigquery.SchemaField("deployed_model_id", "STRING"),
        bigquery.SchemaField("logging_time", "TIMESTAMP"),
        bigquery.SchemaField("request_id", "NUMERIC"),
        bigquery.SchemaField("request_payload", "STRING", mode="REPEATED"),
        bigquery.SchemaField("response_payload", "STRING", mode="REPEATED"),
    ]
    bq.create_table(bigquery.Table(table_id, schema=schema))
    rows = [
        {"endpoint": "e1", "deployed_model_id": "111", "logging_time": "2026-01-01T00:00:00Z",
         "request_id": "1001",
         "request_payload": [json.dumps({"age": 30, "city": "a", "note": None}),
                             json.dumps({"age": 40, "city": None})],
         "response_payload": [json.dumps(0.25), json.dumps([0.4, 0.6])]},
        {"endpoint": "e1", "deployed_model_id": "222", "logging_time": "2026-01-01T01:00:00Z",
         "request_id": "1002", "request_payload": [json.dumps({"age": 50, "city": "b"})],
         "response_payload": [json.dumps({"score": 0.9})]},
        {"endpoint": "e1", "deployed_model_id": "111", "logging_time": "2026-01-02T00:00:00Z",
         "request_id": "1003", "request_payload": [json.dumps({"age": 60, "city": "c"})],
         "response_payload": [json.dumps(0.1)]},
    ]  # fmt: skip
    assert not bq.insert_rows_json(table_id, rows)
    feedback_id = f"{table_id}_feedback"
    fb_schema = [
        bigquery.SchemaField("request_id", "STRING"),
        bigquery.SchemaField("row", "INT64"),
        bigquery.SchemaField("label", "FLOAT64"),
        bigquery.SchemaField("reward", "FLOAT64"),
        bigquery.SchemaField("timestamp", "TIMESTAMP"),
    ]
    bq.create_table(bigquery.Table(feedback_id, schema=fb_schema))
    assert not bq.insert_rows_json(
        feedback_id,
        [{"request_id": "1001", "row": 1, "label": 1.0, "timestamp": "2026-01-01T02:00:00Z"}],
    )
    endpoint = bq._connection.API_BASE_URL
    source = f"bq://{table_id}"
    table = read_served(source, end="2026-01-01T12:00:00Z", bigquery_endpoint=endpoint)
    assert table.column_names == ["age", "city", "note", *REQUEST_COLUMNS, *JOINED_COLUMNS]
    assert table.column("note").null_count == 3  # null wherever it is, kept
    assert table.column("age").to_pylist() == [30.0, 40.0, 50.0]
    assert table.column("city").to_pylist() == ["a", None, "b"]
    assert table.column("prediction").to_pylist() == [0.25, 0.6, 0.9]
    assert table.column("variant").to_pylist() == ["111", "111", "222"]
    assert table.column("request_id").to_pylist() == ["1001", "1001", "1002"]
    assert table.column("row").to_pylist() == [0, 1, 0]
    assert table.column("label").to_pylist() == [None, 1.0, None]
    assert read_served(source, start="2026-01-03", bigquery_endpoint=endpoint).num_rows == 0
    with pytest.raises(ValueError, match="not found"):
        read_served(f"bq://{dataset}.missing", bigquery_endpoint=endpoint)
