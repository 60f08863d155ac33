"""Online experiments on the real server: KServe's model server on 127.0.0.1 serving several
tiny real SavedModels as variants, driven over real HTTP: routing proportions, stickiness (also
across a restart, and equal to the offline assignment), the bandit under simulated feedback,
the feedback endpoint's refusals and metric, the request and feedback logs, the policy state,
SIGTERM under load, and the starts that must be refused."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from kfpkit.serving.client import SERVER_MODULE, ServerProcess
from kfpkit.serving.routing import assign_variant
from kfpkit.serving.served_logs import read_served
from kfpkit.testing.experiments import write_broken_model, write_constant_model, write_schema

NAME = "employment"
ROW = {"AGEP": 30.0, "SEX": "1"}
ANSWER = {"a": 0.2, "b": 0.8, "c": 0.5}  # each variant's constant answer


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("variants")
    out = {name: write_constant_model(root / name, p) for name, p in ANSWER.items()}
    out["broken"] = write_broken_model(root / "broken")
    out["corrupt"] = write_model_with_corrupt_variables(root / "corrupt")
    out["schema"] = write_schema(root / "schema")
    return out


def write_model_with_corrupt_variables(path: Path) -> Path:
    """A SavedModel whose saved_model.pb is sound (it passes the check without TensorFlow) but
    whose variable's bytes were damaged on disk (same size, bytes flipped)."""
    import tensorflow as tf

    from kfpkit.serving.loading import check_saved_model

    class Mean(tf.Module):
        def __init__(self):
            self.weights = tf.Variable(tf.fill([4096], 0.5))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="AGEP"),
                                      tf.TensorSpec([None], tf.string, name="SEX")])  # fmt: skip
        def serve(self, AGEP, SEX):  # noqa: N803 - input names are the feature names
            rows = tf.shape(AGEP)[0] + 0 * tf.shape(SEX)[0]
            return {"probability": tf.fill([rows], tf.reduce_mean(self.weights))}

    module = Mean()
    tf.saved_model.save(module, str(path / "1"), signatures={"serving_default": module.serve})
    data = path / "1" / "variables" / "variables.data-00000-of-00001"
    damaged = bytearray(data.read_bytes())
    damaged[100:200] = bytes(b ^ 0xFF for b in damaged[100:200])  # inside the 16 KiB tensor
    data.write_bytes(bytes(damaged))
    check_saved_model(str(path), "variant")  # the graph file is fine: only loading can tell
    return path


def variant_args(models, weights: dict[str, float]) -> list[str]:
    args = []
    for name, weight in weights.items():
        args += ["--variant", f"{name}={models[name]}:{weight}"]
    return args


def start(args: list[str], log_dir: Path, tmp_path: Path) -> ServerProcess:
    full = ["--name", NAME, "--port", "0", "--log-dir", str(log_dir), "--log-flush-seconds",
            "0.2", *args]  # fmt: skip
    return ServerProcess.python(sys.executable, full, str(tmp_path / "server.log")).start()


def call(server: ServerProcess, path: str, body, headers: dict | None = None):
    """(status, response headers in lower case, decoded JSON body) of one real HTTP request."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        conn.request("POST", path, json.dumps(body).encode(),
                     {"Content-Type": "application/json", **(headers or {})})  # fmt: skip
        response = conn.getresponse()
        raw = response.read()
        found = {k.lower(): v for k, v in response.getheaders()}
        return response.status, found, json.loads(raw) if raw else None
    finally:
        conn.close()


def predict(server, rows=(ROW,), headers=None, **extra):
    return call(server, f"/v1/models/{NAME}:predict", {"instances": list(rows), **extra}, headers)


def feedback(server, body):
    return call(server, f"/v1/models/{NAME}/feedback", body)


def metric(server, name: str, reason: str) -> float:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    for line in text.splitlines():
        if line.startswith(f'{name}{{reason="{reason}"}}'):
            return float(line.split()[-1])
    return 0.0


def within(count: int, total: int, p: float) -> bool:
    return abs(count - total * p) <= 5 * (total * p * (1 - p)) ** 0.5


@pytest.fixture(scope="module")
def fixed(models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fixed")
    server = start(
        [*variant_args(models, {"a": 1, "b": 3}), "--routing", "fixed", "--schema",
         str(models["schema"]), "--feedback-retention-seconds", "8"],
        tmp / "logs", tmp,
    )  # fmt: skip
    yield server, tmp / "logs" / NAME
    server.stop()


def test_fixed_weights_route_requests_and_every_answer_names_its_variant(fixed):
    server, _ = fixed
    seen, ids = [], set()
    for _ in range(400):
        status, headers, body = predict(server)
        assert status == 200, body
        assert body["variant"] == headers["x-variant"]
        assert body["request_id"] == headers["x-request-id"]
        assert body["predictions"] == pytest.approx([ANSWER[body["variant"]]])  # that model
        seen.append(body["variant"])
        ids.add(body["request_id"])
    assert len(ids) == 400
    assert within(seen.count("a"), 400, 0.25), seen.count("a")


def test_v2_answers_carry_variant_and_request_id_and_stay_v2(fixed):
    server, _ = fixed
    body = {"id": "v2-req-1", "inputs": [
        {"name": "AGEP", "shape": [2], "datatype": "FP32", "data": [30.0, 40.0]},
        {"name": "SEX", "shape": [2], "datatype": "BYTES", "data": ["1", "2"]}]}  # fmt: skip
    status, headers, answer = call(server, f"/v2/models/{NAME}/infer", body)
    assert status == 200, answer
    variant = answer["parameters"]["variant"]
    assert variant == headers["x-variant"] and answer["model_version"] == "1"
    assert answer["parameters"]["request_id"] == headers["x-request-id"] == "v2-req-1"
    assert answer["id"] == "v2-req-1"
    assert answer["outputs"][0]["data"] == pytest.approx([ANSWER[variant]] * 2)


def test_request_log_has_the_contract_columns_and_flags_out_of_domain_values(fixed):
    server, folder = fixed
    rows = [ROW, {"AGEP": -5.0, "SEX": "3"}, {"AGEP": None, "SEX": None}]
    status, headers, body = predict(server, rows, headers={"X-Request-Id": "logged-1"})
    assert status == 200 and body["request_id"] == "logged-1"
    again = predict(server, headers={"X-Request-Id": "logged-1"})
    assert again[0] == 409 and "already used" in again[2]["error"]  # ids join feedback
    time.sleep(1.0)
    table = read_served(str(folder)).to_pylist()
    mine = sorted((r for r in table if r["request_id"] == "logged-1"), key=lambda r: r["row"])
    assert [r["out_of_domain"] for r in mine] == ["", "AGEP,SEX", ""]
    assert {(r["variant"], r["model_version"], r["status"], r["protocol"]) for r in mine} == {
        (body["variant"], "1", 200, "v1")}  # fmt: skip
    assert all(r["latency_ms"] > 0 for r in mine)
    assert [r["prediction"] for r in mine] == pytest.approx([ANSWER[body["variant"]]] * 3)
    assert not [f for f in os.listdir(folder) if f.startswith(".")]  # no temporary files left


def test_feedback_is_appended_and_every_bad_case_is_a_counted_4xx(fixed):
    server, folder = fixed
    _, _, first = predict(server, [ROW, ROW])
    _, _, second = predict(server)
    rid = first["request_id"]
    assert feedback(server, {"request_id": rid, "row": 1, "label": 1})[0] == 200
    status, _, body = feedback(server, {"feedback": [
        {"request_id": rid, "row": 0, "label": 0},
        {"request_id": second["request_id"], "reward": 0.25}]})  # fmt: skip
    assert status == 200 and body["accepted"] == 2
    cases = [
        ({"request_id": "never-served", "label": 1}, 404, "unknown_request", "never-served"),
        ({"request_id": rid, "row": 1, "label": 0}, 409, "duplicate", "already has feedback"),
        ({"request_id": rid, "row": 5, "label": 0}, 400, "bad_row", "no row 5"),
        ({"request_id": second["request_id"], "label": 2}, 400, "bad_label", "got 2"),
        ({"request_id": second["request_id"]}, 400, "missing_field", "neither 'label'"),
        ({"label": 1}, 400, "missing_field", "lacks 'request_id'"),
        ({"feedback": [{"request_id": second["request_id"], "label": 1}, {"label": 1}]}, 400,
         "missing_field", "feedback item 1"),
    ]  # fmt: skip
    for body, status, reason, words in cases:
        before = metric(server, "kfpkit_feedback_rejected_total", reason)
        got, _, answer = feedback(server, body)
        assert (got, reason) == (status, answer.get("reason")), answer
        assert words in answer["error"]
        assert metric(server, "kfpkit_feedback_rejected_total", reason) == before + 1
    # the refused batch accepted nothing: its good item still takes feedback
    assert feedback(server, {"request_id": second["request_id"], "label": 1})[0] == 409
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    conn.request("POST", f"/v1/models/{NAME}/feedback", b"{not json",
                 {"Content-Type": "application/json"})  # fmt: skip
    response = conn.getresponse()
    assert response.status == 400 and b"not JSON" in response.read()
    conn.close()
    assert call(server, "/v1/models/other/feedback", {"request_id": rid, "label": 1})[0] == 404
    time.sleep(1.0)
    logged = {(r["request_id"], r["row"]): (r["label"], r["reward"])
              for r in read_served(str(folder)).to_pylist()}  # fmt: skip
    assert logged[(rid, 0)] == (0.0, None) and logged[(rid, 1)] == (1.0, None)
    assert logged[(second["request_id"], 0)] == (None, 0.25)


def test_feedback_after_the_retention_window_is_refused(fixed):
    server, _ = fixed
    _, _, body = predict(server)
    time.sleep(9)  # the server keeps request ids for 8 s
    status, _, answer = feedback(server, {"request_id": body["request_id"], "label": 1})
    assert status in (404, 410) and "retention" in answer["error"], answer


def test_ab_is_sticky_across_requests_and_restarts_and_equals_the_offline_assignment(
    models, tmp_path
):
    args = [*variant_args(models, {"a": 1, "b": 1}), "--routing", "ab", "--unit-header",
            "X-User-Id"]  # fmt: skip
    users = [f"user-{i}" for i in range(60)]
    offline = {u: assign_variant(u, ["a", "b"], [1, 1], salt=NAME) for u in users}
    assert set(offline.values()) == {"a", "b"}
    for _ in range(2):  # the second server is a restart on the same log folder
        server = start(args, tmp_path / "logs", tmp_path)
        try:
            for user in users:
                for _ in range(2):
                    status, headers, body = predict(server, headers={"X-User-Id": user})
                    assert status == 200 and headers["x-variant"] == offline[user], user
            status, _, body = predict(server)
            assert status == 400 and "X-User-Id" in body["error"]
        finally:
            assert server.stop() == 0
    state = json.loads((tmp_path / "logs" / NAME / "policy.json").read_text())
    assert sum(arm["requests"] for arm in state["arms"].values()) == 2 * 2 * len(users)


def test_ab_unit_from_a_request_field(models, tmp_path):
    args = [*variant_args(models, {"a": 1, "b": 1}), "--routing", "ab", "--unit-field", "id"]
    server = start(args, tmp_path / "logs", tmp_path)
    try:
        for i in range(30):
            expected = assign_variant(i, ["a", "b"], [1, 1], salt=NAME)
            # in the request's parameters, or in every instance (not a model feature: dropped)
            _, _, one = predict(server, parameters={"id": i})
            _, _, two = predict(server, [ROW | {"id": i}, ROW | {"id": i}])
            assert one["variant"] == two["variant"] == expected
        status, _, body = predict(server, [ROW | {"id": 1}, ROW | {"id": 2}])
        assert status == 400 and "one unit a request" in body["error"]
        status, _, body = predict(server, parameters={"id": 1.5})
        assert status == 400 and "unit value 1.5" in body["error"]
    finally:
        server.stop()


def run_bandit(server, rounds: int, success: dict[str, float], rng) -> list[str]:
    chosen = []
    for _ in range(rounds):
        _, _, body = predict(server)
        reward = float(rng.random() < success[body["variant"]])
        status, _, answer = feedback(server, {"request_id": body["request_id"], "reward": reward})
        assert status == 200, answer
        chosen.append(body["variant"])
    return chosen


def test_bandit_shifts_traffic_to_the_better_variant_and_its_state_survives_a_restart(
    models, tmp_path
):
    args = [*variant_args(models, {"a": 1, "b": 1}), "--routing", "bandit", "--bandit",
            "thompson", "--bandit-floor", "0.05", "--seed", "7"]  # fmt: skip
    rng = np.random.default_rng(1)
    success = {"a": 0.9, "b": 0.2}
    server = start(args, tmp_path / "logs", tmp_path)
    try:
        early = run_bandit(server, 40, success, rng)
        assert {"a", "b"} <= set(early[:20])  # no feedback yet: both are tried
        run_bandit(server, 260, success, rng)
        late = run_bandit(server, 200, success, rng)
        assert late.count("b") / len(late) < 0.2, late.count("b")
        assert late.count("b") > 0  # the floor: the worse variant is never starved
    finally:
        assert server.stop() == 0
    policy = tmp_path / "logs" / NAME / "policy.json"
    state = json.loads(policy.read_text())
    assert sum(arm["feedback"] for arm in state["arms"].values()) == 500
    assert state["arms"]["a"]["traffic_share"] > 0.8
    restarted = start(args, tmp_path / "logs", tmp_path)
    try:
        after = run_bandit(restarted, 100, success, rng)
        assert after.count("b") / len(after) < 0.25  # it goes on from what it learnt
    finally:
        restarted.stop()
    other = subprocess.run(
        [sys.executable, "-m", SERVER_MODULE, "--name", NAME, "--port", "0", "--log-dir",
         str(tmp_path / "logs"), *variant_args(models, {"a": 1, "c": 1}), "--routing", "bandit"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert other.returncode == 2, other.stderr[-2000:]
    assert "policy.json" in other.stderr and "['a', 'b']" in other.stderr


def test_sigterm_under_load_flushes_logs_feedback_and_policy(models, tmp_path):
    args = [*variant_args(models, {"a": 1, "b": 1}), "--routing", "bandit",
            "--log-batch-rows", "1000000", "--log-flush-seconds", "3600"]  # fmt: skip
    server = start(args, tmp_path / "logs", tmp_path)
    served, accepted = [], []
    stop = threading.Event()

    def load():
        while not stop.is_set():
            try:
                status, _, body = predict(server, [ROW, ROW])
                if status != 200:
                    continue
                served.append(body["request_id"])
                status, _, _ = feedback(server, {"request_id": body["request_id"], "label": 1})
                if status == 200:
                    accepted.append(body["request_id"])
            except OSError:
                return  # the server has closed its socket

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(3)
    assert served, "no request was answered before the signal"
    server.process.send_signal(signal.SIGTERM)  # a real signal, while the clients send
    code = server.process.wait(120)
    stop.set()
    for t in threads:
        t.join(30)
    assert code == 0, server.output()[-3000:]
    folder = tmp_path / "logs" / NAME
    names = [p.name for p in folder.rglob("*")]
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")], names
    for file in folder.rglob("*.parquet"):
        pq.read_table(file)  # every file complete
    table = read_served(str(folder)).to_pylist()
    assert {r["request_id"] for r in table} == set(served)  # every answered request logged
    assert len(table) == 2 * len(served)
    labelled = {r["request_id"] for r in table if r["label"] is not None}
    assert labelled == set(accepted)
    state = json.loads((folder / "policy.json").read_text())
    assert sum(arm["feedback"] for arm in state["arms"].values()) == len(accepted)
    assert sum(arm["requests"] for arm in state["arms"].values()) == len(served)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--variant", "a={a}", "--variant", "broken={broken}"], ["variant 'broken'", "{broken}"]),
        (
            ["--variant", "a={a}", "--variant", "corrupt={corrupt}"],
            ["variant 'corrupt'", "{corrupt}", "Checksum does not match"],
        ),
        (["--variant", "a={a}:0", "--variant", "b={b}:0"], ["sum to 0.0"]),
        (["--variant", "a={a}:-1", "--variant", "b={b}"], ["weight of variant 'a'"]),
        (["--variant", "a={a}", "--variant", "a={b}"], ["['a'] given more than once"]),
        (["--variant", "a={a}", "--routing", "ab"], ["--unit-field or --unit-header"]),
    ],
)
def test_refused_starts_exit_2_naming_the_problem(models, tmp_path, args, words):
    paths = {k: str(v) for k, v in models.items()}
    command = [sys.executable, "-m", SERVER_MODULE, "--name", NAME, "--port", "0",
               *[a.format(**paths) for a in args]]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    for w in words:
        assert w.format(**paths) in done.stderr, done.stderr[-3000:]


def test_a_log_folder_with_files_of_two_schemas_refuses_the_start(models, tmp_path):
    from datetime import UTC, datetime

    import pyarrow as pa

    from kfpkit.serving.served_logs import REQUEST_COLUMNS
    from kfpkit.testing.served_logs import write_requests

    def table(agep_type):
        now = datetime.now(UTC)
        values = {"prediction": 0.5, "model_name": NAME, "model_version": "1", "variant": "a",
                  "protocol": "v1", "request_id": f"r-{agep_type}", "row": 0, "timestamp": now,
                  "latency_ms": 1.0, "status": 200, "out_of_domain": "",
                  "attributions": None}  # fmt: skip
        columns = {"AGEP": pa.array([30.0 if agep_type == "double" else "30"]),
                   "SEX": pa.array(["1"])}  # fmt: skip
        columns |= {k: pa.array([values[k]], t) for k, t in REQUEST_COLUMNS.items()}
        return pa.table(columns)

    folder = tmp_path / "logs" / NAME
    first = write_requests(folder, table("double"))
    second = write_requests(folder, table("string"))
    done = subprocess.run(
        [sys.executable, "-m", SERVER_MODULE, "--name", NAME, "--port", "0", "--log-dir",
         str(tmp_path / "logs"), *variant_args(models, {"a": 1})],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert first.name in done.stderr and second.name in done.stderr, done.stderr[-2000:]
