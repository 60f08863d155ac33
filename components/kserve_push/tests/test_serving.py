"""KServe's model server on 127.0.0.1, driven over real HTTP: answers, refusals, load, shadow,
request logs and the loopback-only socket."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from kfpkit.serving.client import Client
from kfpkit.testing.serving import CANDIDATE_MAX_AGE, candidate_probability

# float32 model outputs; a row's answer can move in the last bits with the batch it is in
TOLERANCE = 1e-6


def kinds(in_process) -> dict[str, str]:
    return {s.name: s.kind for s in in_process.specs}


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_v1_and_v2_answers_equal_in_process_predictions(server, test_rows, in_process, batch):
    rows = test_rows[:128]
    expected = in_process(rows)
    client = server.client()
    v1, v2 = [], []
    for start in range(0, len(rows), batch):
        part = rows[start : start + batch]
        v1 += client.predict_v1("employment", part)
        v2 += client.infer_v2("employment", part, kinds(in_process))
    np.testing.assert_allclose(v1, expected, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(v2, expected, rtol=0, atol=TOLERANCE)
    assert len(set(np.round(expected, 3))) > 20  # a real model, not a constant


def test_v2_answer_names_model_version_and_output(server, test_rows, in_process):
    status, body = server.client().post(
        "/v2/models/employment/infer",
        {"id": "req-7", **_v2(test_rows[:3], in_process)},
    )
    assert status == 200, body
    assert (body["model_name"], body["model_version"], body["id"]) == ("employment", "1", "req-7")
    assert body["outputs"][0]["name"] == in_process.output_name  # the signature's own
    assert body["outputs"][0]["shape"] == [3]


def test_v2_metadata_lists_the_model_inputs_and_output(server, in_process):
    status, body = server.client().request("GET", "/v2/models/employment")
    assert status == 200, body
    assert {(i["name"], i["datatype"]) for i in body["inputs"]} == {
        (s.name, "BYTES" if s.kind == "categorical" else "FP32") for s in in_process.specs
    }
    assert body["outputs"] == [{"name": in_process.output_name, "datatype": "FP32", "shape": [-1]}]


def _v2(rows, in_process):
    from kfpkit.serving.client import v2_body

    return v2_body(rows, kinds(in_process))


def _bad_requests(row: dict, in_process) -> list[tuple[str, str, bytes, int, str]]:
    """(what, path, body, expected status, text the error must contain)."""
    v1 = "/v1/models/employment:predict"
    v2 = "/v2/models/employment/infer"
    unknown = {**row, "colour": "red"}
    missing = {k: v for k, v in row.items() if k != "AGEP"}
    j = json.dumps
    v2_ok = _v2([row], in_process)
    v2_age_as_text = json.loads(j(v2_ok))
    for tensor in v2_age_as_text["inputs"]:
        if tensor["name"] == "AGEP":
            tensor["datatype"], tensor["data"] = "BYTES", ["forty"]
    v2_short = json.loads(j(v2_ok))
    v2_short["inputs"][0]["shape"] = [2]
    v2_missing = {"inputs": [t for t in v2_ok["inputs"] if t["name"] != "SEX"]}

    def v1_of(*instances) -> bytes:
        return j({"instances": list(instances)}).encode()

    age_text, age_bool, sex_number = {**row, "AGEP": "42"}, {**row, "AGEP": True}, {**row, "SEX": 1}
    huge = b'{"instances": [' + b" " * 200_001 + b"]}"
    nobody_v1, nobody_v2 = "/v1/models/nobody:predict", "/v2/models/nobody/infer"
    return [
        ("malformed JSON V1", v1, b'{"instances": [', 400, "Unrecognized request format"),
        ("malformed JSON V2", v2, b'{"inputs": [', 422, "JSON decode error"),
        ("not instances", v1, j({"rows": [row]}).encode(), 400, "instances"),
        ("instances not a list", v1, j({"instances": row}).encode(), 400, "to be a list"),
        ("empty instances", v1, v1_of(), 400, "is empty"),
        ("unknown feature", v1, v1_of(unknown), 400, "unknown feature(s) ['colour']"),
        ("missing feature", v1, v1_of(row, missing), 400, "instance 1 lacks feature(s) ['AGEP']"),
        ("text for a number", v1, v1_of(age_text), 400, "'AGEP' instance 0: expected a number"),
        ("bool for a number", v1, v1_of(age_bool), 400, "expected a number or null, got bool"),
        ("number for a category", v1, v1_of(sex_number), 400, "'SEX' instance 0: expected a str"),
        ("instance not an object", v1, v1_of([1, 2]), 400, "instance 0 must be an object"),
        ("V2 wrong datatype", v2, j(v2_age_as_text).encode(), 400, "'AGEP' is numeric: datatype"),
        ("V2 shape and data differ", v2, j(v2_short).encode(), 400, "shape [2] says 2 values"),
        ("V2 missing input", v2, j(v2_missing).encode(), 400, "lacks feature(s) ['SEX']"),
        ("too many rows", v1, v1_of(*[row] * 501), 400, "at most 500"),
        ("oversized body", v1, huge, 413, "over 200000 bytes"),
        ("unknown model V1", nobody_v1, v1_of(row), 404, "nobody does not exist"),
        ("unknown model V2", nobody_v2, j(v2_ok).encode(), 404, "nobody does not exist"),
    ]


def test_bad_requests_get_4xx_with_a_clear_message_and_the_server_keeps_answering(
    server, test_rows, in_process
):
    client = server.client()
    expected = in_process(test_rows[:5])
    for what, path, body, code, text in _bad_requests(test_rows[0], in_process):
        status, answer = client.request("POST", path, body)
        assert status == code, (what, status, answer)
        assert text in json.dumps(answer).replace('\\"', '"'), (what, answer)
        # and the next good request is answered right
        np.testing.assert_allclose(
            client.predict_v1("employment", test_rows[:5]), expected, atol=TOLERANCE
        )


def test_chunked_body_over_the_limit_is_refused_while_streaming(server):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    chunks = (b" " * 50_000 for _ in range(6))  # no Content-Length: Transfer-Encoding chunked
    conn.request("POST", "/v1/models/employment:predict", body=chunks,
                 headers={"Content-Type": "application/json"}, encode_chunked=True)  # fmt: skip
    response = conn.getresponse()
    assert response.status == 413, response.read()
    assert b"over 200000 bytes" in response.read()
    conn.close()


def test_concurrent_clients_for_a_bounded_time_get_no_errors(server, test_rows, in_process):
    rows = test_rows[:64]
    expected = in_process(rows)
    stop_at = time.monotonic() + 4.0
    results: list[tuple[int, int]] = []  # (answered, wrong) per client
    errors: list[BaseException] = []

    def run(index: int) -> None:
        client, answered, wrong = server.client(), 0, 0
        try:
            while time.monotonic() < stop_at:
                start = (answered * 5 + index) % 60
                part = slice(start, start + 1 + index % 4)
                if answered % 2:
                    got = client.infer_v2("employment", rows[part], kinds(in_process))
                else:
                    got = client.predict_v1("employment", rows[part])
                wrong += int(not np.allclose(got, expected[part], atol=TOLERANCE))
                answered += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        results.append((answered, wrong))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert len(results) == 8
    assert sum(wrong for _, wrong in results) == 0
    assert all(answered > 0 for answered, _ in results)
    assert server.client().status()["model_calls"] > 0


def _wait_for(condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_shadow_sees_every_request_its_failures_never_reach_the_client_and_agreement_is_right(
    server, test_rows, in_process
):
    client = server.client()

    def settled_report() -> dict | None:
        now = client.status()["shadow"]
        done = now["requests_compared"] + now["failed_requests"] + now["dropped_requests"]
        return now if done == now["requests_mirrored"] else None

    before = _wait_for(settled_report)  # earlier tests' requests are all compared
    old = [r for r in test_rows if r["AGEP"] >= CANDIDATE_MAX_AGE][:2]
    young = [r for r in test_rows if r["AGEP"] < CANDIDATE_MAX_AGE][:60]
    assert len(old) == 2, "the sample has people aged 90+"
    requests = [young[i : i + 6] for i in range(0, 60, 6)] + [[old[0], *young[:3]], [old[1]]]
    for part in requests:  # the candidate fails on the last two; the client must not notice
        np.testing.assert_allclose(
            client.predict_v1("employment", part), in_process(part), atol=TOLERANCE
        )

    after = _wait_for(settled_report)
    assert after["requests_mirrored"] - before["requests_mirrored"] == len(requests)
    assert after["dropped_requests"] == before["dropped_requests"]
    assert after["requests_compared"] - before["requests_compared"] == len(requests) - 2
    assert after["failed_requests"] - before["failed_requests"] == 2
    assert "age out of range" in after["last_error"]
    compared = [r for part in requests[:-2] for r in part]
    primary = in_process(compared)
    candidate = candidate_probability(
        np.array([r["AGEP"] for r in compared]), np.array([r["SEX"] for r in compared])
    ).astype(np.float64)
    assert after["rows_compared"] - before["rows_compared"] == len(compared)
    same = int(np.sum((primary >= 0.5) == (candidate >= 0.5)))
    assert after["same_class_rows"] - before["same_class_rows"] == same
    assert 0 < same < len(compared)  # the two models really differ
    diff = after["abs_difference_sum"] - before["abs_difference_sum"]
    assert diff == pytest.approx(np.abs(primary - candidate).sum(), abs=1e-4)


def _logged(log_dir: Path, model: str):
    files = sorted((log_dir / model).glob("*.parquet"))
    return pq.ParquetDataset([str(f) for f in files]).read().to_pylist() if files else []


def test_every_answered_request_is_logged_exactly_once_with_its_answer(
    server, test_rows, in_process, log_dir
):
    client = server.client()
    sent: dict[str, list[dict]] = {}
    tag = uuid.uuid4().hex[:8]
    for i in range(12):
        part = test_rows[i * 3 : i * 3 + 1 + i % 3]
        request_id = f"{tag}-{i}"
        body = json.dumps({"instances": part}).encode()
        conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        conn.request("POST", "/v1/models/employment:predict", body,
                     {"Content-Type": "application/json", "x-request-id": request_id})  # fmt: skip
        assert conn.getresponse().status == 200
        conn.close()
        sent[request_id] = part
    status, _ = client.post("/v1/models/employment:predict", {"instances": [{"AGEP": 1}]})
    assert status == 400  # refused requests are not logged

    def mine():
        rows = [r for r in _logged(log_dir, "employment") if r["request_id"].startswith(tag)]
        return rows if len(rows) >= sum(map(len, sent.values())) else None

    rows = _wait_for(mine)
    keys = [(r["request_id"], r["row"]) for r in rows]
    assert len(keys) == len(set(keys)) == sum(map(len, sent.values()))  # exactly once
    for r in rows:
        original = sent[r["request_id"]][r["row"]]
        assert r["SEX"] == original["SEX"] and r["AGEP"] == pytest.approx(original["AGEP"])
        assert (r["model_name"], r["model_version"], r["protocol"]) == ("employment", "1", "v1")
        assert r["prediction"] == pytest.approx(in_process([original])[0], abs=TOLERANCE)
        assert r["timestamp"] is not None
    # the candidate's answers are logged beside, under its own name, with its features only
    shadow_rows = _wait_for(
        lambda: [
            r for r in _logged(log_dir, "employment-shadow") if r["request_id"].startswith(tag)
        ]
    )
    assert set(shadow_rows[0]) >= {"AGEP", "SEX", "prediction"} and "SCHL" not in shadow_rows[0]


def test_logs_are_what_tfdv_components_read(server, log_dir):
    from kfpkit.runtime.files import files_under

    _wait_for(lambda: _logged(log_dir, "employment"))
    files = files_under(str(log_dir / "employment"), (".parquet",), "logs", ".parquet")
    schemas = {tuple(pq.read_schema(f).names) for f in files}
    assert len(schemas) == 1  # TFDV's reader requires one set of columns


def _other_address() -> str | None:
    """An address of this machine that is not loopback (None on a machine without one)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.123", 9))  # no packet is sent for UDP connect
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def test_server_listens_on_loopback_only(server):
    listening = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        ip_hex, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == server.port:  # 0A: LISTEN
            listening.append(socket.inet_ntoa(bytes.fromhex(ip_hex)[::-1]))
    assert listening == ["127.0.0.1"]
    other = _other_address()
    if other is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((other, server.port), timeout=5)
    assert Client(server.host, server.port).request("GET", "/v1/models/employment")[0] == 200


def test_odd_bodies_are_never_a_server_error(server, test_rows, in_process):
    row = json.dumps(test_rows[0])
    v2 = json.dumps(_v2(test_rows[:1], in_process))
    bodies = [
        b"\xff\xfe\x00garbage",
        b"[" * 5000 + b"]" * 5000,
        b'{"instances": [{"AGEP": NaN}]}',
        row.replace('"AGEP": ', '"AGEP": 1' + "0" * 400 + ', "x": ').encode(),
        json.dumps({"instances": [{**test_rows[0], "AGEP": {"value": 3}}]}).encode(),
        json.dumps({"instances": [{**test_rows[0], "SEX": ["1"]}]}).encode(),
        json.dumps({"instances": None}).encode(),
        b"null",
        b'"instances"',
        v2.replace('"shape": [1]', '"shape": [100000000000000000000]', 1).encode(),
        v2.replace('"shape": [1]', '"shape": "one"', 1).encode(),
        v2.replace('"datatype": "FP64"', '"datatype": "FP1024"', 1).encode(),
        v2.replace('"data": [', '"data": [[[', 1).replace("]", "]]]", 1).encode(),
    ]
    client = server.client()
    for path in ("/v1/models/employment:predict", "/v2/models/employment/infer"):
        for body in bodies:
            status, answer = client.request("POST", path, body)
            assert 400 <= status < 500, (path, body[:80], status, answer)
    assert client.predict_v1("employment", test_rows[:2]) == pytest.approx(
        in_process(test_rows[:2]), abs=TOLERANCE
    )
