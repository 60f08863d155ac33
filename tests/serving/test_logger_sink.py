"""The logger sink fed real CloudEvents over HTTP in KServe's logger format (binary mode,
the headers of kserve/pkg/logger/worker.go), read back with read_served."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from kfpkit.serving.logger_sink import REQUEST_TYPE, RESPONSE_TYPE, Event, Sink, make_server
from kfpkit.serving.served_logs import read_served

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def post_event(url: str, event_id: str, kind: str, body: dict, *, service: str,
               endpoint: str = "default", sent: datetime = T0, path: str = "/employment",
               **extra_headers: str) -> int:  # fmt: skip
    """One event as KServe's logger posts it (cloudevents sdk-go, binary encoding)."""
    headers = {
        "Content-Type": "application/json",
        "Ce-Specversion": "1.0",
        "Ce-Id": event_id,
        "Ce-Type": kind,
        "Ce-Source": "http://localhost:9081/",
        "Ce-Time": sent.isoformat().replace("+00:00", "Z"),
        "Ce-Inferenceservicename": service,
        "Ce-Namespace": "serving",
        "Ce-Component": "predictor",
        "Ce-Endpoint": endpoint,
        "Ce-Metadata": "{}",
        **extra_headers,
    }
    request = urllib.request.Request(f"{url}{path}", data=json.dumps(body).encode(),
                                     headers=headers, method="POST")  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


@contextlib.contextmanager
def serving(sink: Sink) -> Iterator[str]:
    """``sink`` behind its HTTP server on 127.0.0.1, for the block: its URL."""
    server = make_server(sink, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def sink(tmp_path):
    s = Sink(str(tmp_path / "logs"), flush_seconds=60, pair_timeout=60).start()
    with serving(s) as url:
        s.url = url  # type: ignore[attr-defined]
        yield s
    s.close()


V1_REQUEST = {"instances": [{"AGEP": 35.0, "SCHL": "21", "WKHP": None},
                            {"AGEP": 61, "SCHL": None, "WKHP": 40}]}  # fmt: skip
V1_RESPONSE = {"predictions": [0.81, 0.12]}
V2_REQUEST = {"inputs": [
    {"name": "AGEP", "datatype": "FP32", "shape": [1, 1], "data": [[22.0]]},
    {"name": "SCHL", "datatype": "BYTES", "shape": [1, 1], "data": [["16"]]},
    {"name": "WKHP", "datatype": "FP32", "shape": [1], "data": [20.0]}]}  # fmt: skip
V2_RESPONSE = {"model_name": "employment-2016", "model_version": "3", "id": "r-2",
               "outputs": [{"name": "probability", "datatype": "FP32", "shape": [1, 1],
                            "data": [0.4]}]}  # fmt: skip


def test_pairs_request_and_response_by_id_into_the_contract_layout(sink, tmp_path):
    url = sink.url
    later = T0 + timedelta(milliseconds=12)
    # the response may arrive first: the logger's workers send concurrently
    assert post_event(url, "r-1", RESPONSE_TYPE, V1_RESPONSE, service="employment-2015",
                      sent=later) == 202  # fmt: skip
    assert post_event(url, "r-1", REQUEST_TYPE, V1_REQUEST, service="employment-2015") == 202
    assert post_event(url, "r-2", REQUEST_TYPE, V2_REQUEST, service="employment-2016",
                      endpoint="canary", sent=T0 + timedelta(seconds=1)) == 202  # fmt: skip
    sent = T0 + timedelta(seconds=1, milliseconds=5)
    assert post_event(url, "r-2", RESPONSE_TYPE, V2_RESPONSE, service="employment-2016",
                      endpoint="canary", sent=sent) == 202  # fmt: skip
    sink.flush()

    folder = tmp_path / "logs" / "employment"
    (file,) = sorted(folder.glob("data-*.parquet"))
    assert file.name.startswith("data-") and f"-{os.getpid()}-" in file.name
    assert not list(folder.glob(".*"))  # no temporary file left
    table = read_served(str(folder))
    rows = table.to_pylist()
    assert [(r["request_id"], r["row"]) for r in rows] == [("r-1", 0), ("r-1", 1), ("r-2", 0)]
    first, second, third = rows
    assert (first["AGEP"], first["SCHL"], first["WKHP"]) == (35.0, "21", None)
    assert (second["AGEP"], second["SCHL"], second["WKHP"]) == (61.0, None, 40.0)
    assert (third["AGEP"], third["SCHL"], third["WKHP"]) == (22.0, "16", 20.0)
    assert [r["prediction"] for r in rows] == [0.81, 0.12, pytest.approx(0.4)]
    assert [r["variant"] for r in rows] == ["employment-2015"] * 2 + ["employment-2016-canary"]
    assert [r["protocol"] for r in rows] == ["v1", "v1", "v2"]
    assert [r["model_name"] for r in rows] == ["employment"] * 3
    assert [r["model_version"] for r in rows] == ["", "", "3"]
    assert [r["status"] for r in rows] == [200, 200, 200]
    assert rows[0]["latency_ms"] == pytest.approx(12.0)
    assert rows[2]["latency_ms"] == pytest.approx(5.0)
    assert rows[0]["timestamp"] == T0 and rows[2]["timestamp"] == T0 + timedelta(seconds=1)
    assert [r["out_of_domain"] for r in rows] == ["", "", ""]
    assert rows[0]["label"] is None  # no feedback yet
    schema = pq.read_schema(file)
    assert schema.field("row").type == pa.int32() and schema.field("status").type == pa.int32()
    assert schema.field("timestamp").type == pa.timestamp("us", tz="UTC")


def test_without_a_path_the_inference_service_names_the_folder(sink, tmp_path):
    post_event(sink.url, "a", REQUEST_TYPE, V1_REQUEST, service="solo", path="/")
    post_event(sink.url, "a", RESPONSE_TYPE, V1_RESPONSE, service="solo", path="/")
    sink.flush()
    assert read_served(str(tmp_path / "logs" / "solo")).column("variant").to_pylist() == [
        "solo", "solo"]  # fmt: skip


def test_a_request_without_response_is_written_with_status_0_after_the_timeout(tmp_path):
    sink = Sink(str(tmp_path), flush_seconds=60, pair_timeout=0.2)
    with serving(sink) as url:
        post_event(url, "failed-1", REQUEST_TYPE, V1_REQUEST, service="m")
        post_event(url, "ok-1", REQUEST_TYPE, V1_REQUEST, service="m")
        sink.flush()
        assert not list((tmp_path / "employment").glob("data-*"))  # still waiting
        post_event(url, "ok-1", RESPONSE_TYPE, V1_RESPONSE, service="m")
        time.sleep(0.3)
        sink.flush()
    rows = read_served(str(tmp_path / "employment")).to_pylist()
    by_id = {(r["request_id"], r["row"]): r for r in rows}
    assert by_id[("failed-1", 0)]["status"] == 0 and by_id[("failed-1", 0)]["prediction"] is None
    assert by_id[("ok-1", 1)]["status"] == 200 and by_id[("ok-1", 1)]["prediction"] == 0.12
    assert sink.counts["unpaired_requests"] == 1


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Ce-Id": ""}, "no ce-id header"),
        ({"Ce-Type": "com.example.other"}, "is not one of KServe's logger types"),
        ({"Ce-Inferenceservicename": ""}, "no ce-inferenceservicename"),
        ({"Ce-Inferenceservicename": "Bad_Name"}, "'Bad_Name'"),
    ],
)
def test_malformed_events_get_400_naming_the_problem(sink, headers, message):
    request = urllib.request.Request(
        f"{sink.url}/employment", data=b"{}", method="POST",
        headers={"Ce-Specversion": "1.0", "Ce-Id": "x", "Ce-Type": REQUEST_TYPE,
                 "Ce-Source": "s", "Ce-Inferenceservicename": "m", **headers},
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(request, timeout=10)
    assert e.value.code == 400 and message in json.loads(e.value.read())["error"]
    assert sink.counts["rejected"] == 1


def test_an_undecodable_payload_is_counted_and_skipped(sink, tmp_path):
    post_event(sink.url, "odd", REQUEST_TYPE, {"text": "hello"}, service="m")
    post_event(sink.url, "odd", RESPONSE_TYPE, {"generated": "hi"}, service="m")
    sink.flush()
    assert sink.counts["undecodable"] == 1
    assert not (tmp_path / "logs" / "employment").exists()
    with urllib.request.urlopen(f"{sink.url}/metrics") as response:
        assert "kfpkit_sink_undecodable_total 1" in response.read().decode()


def test_files_of_one_folder_share_one_schema_across_flushes(sink, tmp_path):
    # a feature null in the whole first file, numeric later: read_served takes both
    first = {"instances": [{"AGEP": 30, "SCHL": "21", "WKHP": None}]}
    post_event(sink.url, "1", REQUEST_TYPE, first, service="m")
    post_event(sink.url, "1", RESPONSE_TYPE, {"predictions": [0.1]}, service="m")
    sink.flush()
    post_event(sink.url, "2", REQUEST_TYPE, V1_REQUEST, service="m")
    post_event(sink.url, "2", RESPONSE_TYPE, V1_RESPONSE, service="m")
    sink.flush()
    folder = tmp_path / "logs" / "employment"
    assert len(list(folder.glob("data-*.parquet"))) == 2
    table = read_served(str(folder))
    assert table.column("WKHP").to_pylist() == [None, None, 40.0]


def test_sigterm_writes_everything_held_and_leaves_no_partial_file(tmp_path):
    """``kfpkit serve-sink`` as a process, stopped with SIGTERM after a burst of events and a
    feedback: the request log and the feedback file are both written."""
    log_dir = tmp_path / "logs"
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "kfpkit"), "serve-sink", "--log-dir", str(log_dir),
         "--host", "127.0.0.1", "--port", "0", "--flush-seconds", "3600"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        line = ""
        while not line.startswith("listening on"):
            line = process.stdout.readline()
            assert line, "the sink exited before listening"
        port = int(line.rsplit(":", 1)[1])
        url = f"http://127.0.0.1:{port}"
        for i in range(50):
            post_event(url, f"r{i}", REQUEST_TYPE, V1_REQUEST, service="m")
            post_event(url, f"r{i}", RESPONSE_TYPE, V1_RESPONSE, service="m")
        post_event(url, "no-answer", REQUEST_TYPE, V1_REQUEST, service="m")
        log_pair(url, "labelled", "m", datetime.now(UTC))
        assert post_feedback(url, {"request_id": "labelled", "label": 1})[0] == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    folder = log_dir / "employment"
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    table = read_served(str(folder))
    assert table.num_rows == 104
    assert sorted(set(table.column("status").to_pylist())) == [0, 200]
    assert table.filter(pc.field("request_id") == "labelled").column("label").to_pylist() == [
        1.0, None]  # fmt: skip


def test_the_sink_manifests_are_accepted_by_a_real_api_server(kube_server):
    """The Deployment and Service, created on kube-apiserver (which validates core types in
    full: probes, ports, volumes, selectors)."""
    from kubernetes import client

    from kfpkit.serving.logger_sink import kubernetes_manifests

    kube_server.create_namespace("sink")
    deployment, service = kubernetes_manifests("sink", "ghcr.io/kfpkit/train:0.1.0",
                                               "served-logs", categorical=["SCHL"])  # fmt: skip
    with kube_server.api_client() as api:
        created = client.AppsV1Api(api).create_namespaced_deployment("sink", deployment)
        client.CoreV1Api(api).create_namespaced_service("sink", service)
        read = client.AppsV1Api(api).read_namespaced_deployment("kfpkit-logger-sink", "sink")
    assert created.spec.replicas == 1 and read.spec.strategy.type == "Recreate"
    container = read.spec.template.spec.containers[0]
    assert container.command == ["python3", "-m", "kfpkit.serving.logger_sink"]
    assert container.args == ["--log-dir", "/logs", "--port", "8080", "--categorical", "SCHL"]
    assert read.spec.template.spec.volumes[0].persistent_volume_claim.claim_name == "served-logs"
    with pytest.raises(ValueError, match="claim 'Logs'"):
        kubernetes_manifests("sink", "img", "Logs")


def post_feedback(url: str, body: object, model: str = "employment") -> tuple[int, dict]:
    """``POST /v1/models/<model>/feedback`` as a client sends it: (status, JSON answer)."""
    request = urllib.request.Request(f"{url}/v1/models/{model}/feedback", method="POST",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def metrics(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        return response.read().decode()


def log_pair(url: str, event_id: str, service: str, sent: datetime, request: dict = V1_REQUEST,
             response: dict = V1_RESPONSE) -> None:  # fmt: skip
    assert post_event(url, event_id, REQUEST_TYPE, request, service=service, sent=sent) == 202
    assert post_event(url, event_id, RESPONSE_TYPE, response, service=service,
                      sent=sent + timedelta(milliseconds=3)) == 202  # fmt: skip


def test_feedback_of_logged_requests_is_written_and_joined_by_the_reader(sink, tmp_path):
    """Events in KServe's logger format, then their labels; online_experiment reads the folder
    with read_served (its launcher's reader), which joins the sink's feedback files."""
    now = datetime.now(UTC)
    log_pair(sink.url, "r-1", "employment-2015", now)
    log_pair(sink.url, "r-2", "employment-2016", now, V2_REQUEST, V2_RESPONSE)
    # a label a row (batch), a reward
    assert post_feedback(sink.url, {"feedback": [{"request_id": "r-1", "row": 0, "label": 1},
                                                 {"request_id": "r-1", "row": 1, "label": 0}]}
                         ) == (200, {"accepted": 2})  # fmt: skip
    assert post_feedback(sink.url, {"request_id": "r-2", "reward": 0.25}) == (200, {"accepted": 1})
    sink.close()

    folder = tmp_path / "logs" / "employment"
    (feedback_file,) = (folder / "feedback").glob("feedback-*.parquet")
    assert not [p for p in (folder / "feedback").iterdir() if p.name.startswith(".")]
    rows = {(r["request_id"], r["row"]): r for r in read_served(str(folder)).to_pylist()}
    assert (rows[("r-1", 0)]["label"], rows[("r-1", 1)]["label"]) == (1.0, 0.0)
    assert rows[("r-2", 0)]["reward"] == 0.25 and rows[("r-2", 0)]["label"] is None
    assert rows[("r-2", 0)]["variant"] == "employment-2016"
    assert all(r["feedback_timestamp"] is not None for r in rows.values())
    assert pq.read_schema(feedback_file).names == ["request_id", "row", "label", "reward",
                                                   "timestamp"]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "reason", "words"),
    [
        ({"request_id": "never-logged", "label": 1}, 404, "unknown_request", "'never-logged'"),
        ({"request_id": "r-1", "label": 2}, 400, "bad_label", "got 2"),
        ({"request_id": "r-1", "row": 2, "label": 1}, 400, "bad_row", "no row 2"),
        ({"request_id": "r-1", "label": 1, "user": "x"}, 400, "unknown_field", "['user']"),
        ("not an object", 400, "bad_body", "must be an object"),
    ],
)
def test_bad_feedback_is_a_counted_4xx_naming_the_problem(sink, body, status, reason, words):
    log_pair(sink.url, "r-1", "employment-2015", datetime.now(UTC))
    answer = post_feedback(sink.url, body)
    assert answer[0] == status and answer[1]["reason"] == reason, answer
    assert words in answer[1]["error"]
    assert f'kfpkit_feedback_rejected_total{{reason="{reason}"}} 1\n' in metrics(sink.url)
    assert "kfpkit_sink_feedback_accepted_total 0\n" in metrics(sink.url)


def test_a_second_feedback_for_a_row_is_409_and_an_unknown_model_404(sink, tmp_path):
    log_pair(sink.url, "r-1", "employment-2015", datetime.now(UTC))
    assert post_feedback(sink.url, {"request_id": "r-1", "label": 1})[0] == 200
    status, answer = post_feedback(sink.url, {"request_id": "r-1", "label": 0})
    assert (status, answer["reason"]) == (409, "duplicate")
    assert "row 0 already has feedback" in answer["error"]
    # one duplicate in a batch refuses the whole batch: row 1 is still open
    twice = {"request_id": "r-1", "row": 1, "label": 1}
    assert post_feedback(sink.url, {"feedback": [twice, twice]})[0] == 409
    assert post_feedback(sink.url, {"request_id": "r-1", "row": 1, "label": 1})[0] == 200
    status, answer = post_feedback(sink.url, {"request_id": "r-1", "label": 1}, model="churn")
    assert (status, answer["reason"]) == (404, "unknown_model")
    text = metrics(sink.url)
    assert 'kfpkit_feedback_rejected_total{reason="duplicate"} 2\n' in text
    assert "kfpkit_sink_feedback_accepted_total 2\n" in text
    sink.close()
    assert read_served(str(tmp_path / "logs" / "employment")).column("label").to_pylist() == [
        1.0, 1.0]  # fmt: skip


def test_feedback_after_the_retention_is_410(tmp_path):
    sink = Sink(str(tmp_path), flush_seconds=60, feedback_retention_seconds=1.0)
    try:
        with serving(sink) as url:
            log_pair(url, "old", "employment-2015", datetime.now(UTC) - timedelta(seconds=0.5))
            time.sleep(0.7)
            status, answer = post_feedback(url, {"request_id": "old", "label": 1})
    finally:
        sink.close()
    assert (status, answer["reason"]) == (410, "expired_request")
    assert "beyond the feedback retention of 1 s" in answer["error"]


def test_a_restarted_sink_takes_feedback_for_what_it_wrote_before(tmp_path):
    """The index is read back from the folder: requests logged (one with no response, so a
    null prediction) before the restart take feedback, a row answered before stays closed."""
    now = datetime.now(UTC)
    first = Sink(str(tmp_path), flush_seconds=60)
    for kind, body in ((REQUEST_TYPE, V1_REQUEST), (RESPONSE_TYPE, V1_RESPONSE)):
        first.add(Event("r-1", kind, "src", now, "employment-2015", "predictor", "default", body,
                        model_name="employment"))  # fmt: skip
    first.add(Event("lost", REQUEST_TYPE, "src", now, "employment-2015", "predictor", "default",
                    V1_REQUEST, model_name="employment"))  # fmt: skip
    assert first.feedback("employment", b'{"request_id": "r-1", "label": 1}')[0] == 200
    first.close()  # the unpaired request is written with status 0

    again = Sink(str(tmp_path), flush_seconds=60)
    try:
        assert again.feedback("employment", b'{"request_id": "lost", "row": 1, "label": 0}') == (
            200, {"accepted": 1})  # fmt: skip
        status, answer = again.feedback("employment", b'{"request_id": "r-1", "label": 1}')
        assert (status, answer["reason"]) == (409, "duplicate")
        second_row = b'{"request_id": "r-1", "row": 1, "label": 0}'
        assert again.feedback("employment", second_row)[0] == 200
    finally:
        again.close()
    rows = {(r["request_id"], r["row"]): r for r in read_served(str(tmp_path / "employment"))
            .to_pylist()}  # fmt: skip
    assert rows[("lost", 1)]["status"] == 0 and rows[("lost", 1)]["label"] == 0.0
    assert (rows[("r-1", 0)]["label"], rows[("r-1", 1)]["label"]) == (1.0, 0.0)


def test_a_folder_that_cannot_be_read_back_still_logs_and_takes_new_feedback(tmp_path):
    """A request file in the model's folder that read_served refuses (none of the contract's
    columns but two): the sink says so, counts it, and goes on logging; feedback for what it
    logs since is accepted."""
    from kfpkit.testing.served_logs import write_requests

    folder = tmp_path / "employment"
    now = datetime.now(UTC)
    stamp = pa.array([now], pa.timestamp("us", "UTC"))
    write_requests(folder, pa.table({"AGEP": [30.0], "request_id": ["old"], "timestamp": stamp}))
    sink = Sink(str(tmp_path), flush_seconds=60)
    try:
        for kind, body in ((REQUEST_TYPE, V1_REQUEST), (RESPONSE_TYPE, V1_RESPONSE)):
            sink.add(Event("new", kind, "src", now, "employment-2015", "predictor", "default",
                           body, model_name="employment"))  # fmt: skip
        assert sink.counts["unreadable_logs"] == 1
        assert sink.feedback("employment", b'{"request_id": "new", "label": 1}') == (
            200, {"accepted": 1})  # fmt: skip
        status, answer = sink.feedback("employment", b'{"request_id": "old", "label": 1}')
        assert (status, answer["reason"]) == (404, "unknown_request")
    finally:
        sink.close()
    assert sink.counts["rows_written"] == 2
    assert len(list((folder / "feedback").glob("feedback-*.parquet"))) == 1
