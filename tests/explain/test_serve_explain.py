"""``POST /v1/models/<name>:explain`` on the real model server (a child process on
127.0.0.1) serving the real candidate SavedModel (AGEP float, SEX string; numpy twin in
kfpkit.testing.serving): exact attributions, the baselines it starts with, bad requests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kfpkit.serving.client import ServerProcess, server_args
from kfpkit.testing.serving import candidate_probability

ROWS = [{"AGEP": 30.0, "SEX": "2"}, {"AGEP": 70.0, "SEX": "1"}]


def start(model: Path, tmp_path: Path, *extra: str) -> ServerProcess:
    args = server_args(str(model), name="candidate", extra=list(extra))
    return ServerProcess.python(sys.executable, args, str(tmp_path / "server.log")).start()


def post(server: ServerProcess, body: object, verb: str = "explain") -> tuple[int, dict]:
    status, answer = server.client().request(
        "POST", f"/v1/models/candidate:{verb}", json.dumps(body).encode()
    )
    return status, answer if isinstance(answer, dict) else {"text": answer}


@pytest.fixture(scope="module")
def baseline_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("baseline") / "explanation.json"
    doc = {"method": "sampled_shapley", "baseline": {"AGEP": 45.0, "SEX": "1"}}
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="module")
def server(mixed_model, baseline_file, tmp_path_factory):
    process = start(mixed_model, tmp_path_factory.mktemp("serve"),
                    "--explain-baseline", str(baseline_file))  # fmt: skip
    yield process
    process.stop()


def exact_shapley(age: float, sex: str, base_age: float, base_sex: str) -> dict[str, float]:
    """Two features: the Shapley value is the mean of both orders' marginal gains."""

    def f(a: float, s: str) -> float:
        return float(candidate_probability(np.array([a], np.float32), np.array([s]))[0])

    return {
        "AGEP": 0.5 * (f(age, base_sex) - f(base_age, base_sex) + f(age, sex) - f(base_age, sex)),
        "SEX": 0.5 * (f(base_age, sex) - f(base_age, base_sex) + f(age, sex) - f(age, base_sex)),
    }


def test_each_row_gets_its_exact_attributions_in_vertex_layout(server):
    status, answer = post(server, {"instances": ROWS})
    assert status == 200, answer
    assert answer["method"] == "sampled_shapley"
    assert answer["baseline"] == {"AGEP": 45.0, "SEX": "1"}
    status, predicted = post(server, {"instances": ROWS}, "predict")
    assert answer["predictions"] == pytest.approx(predicted["predictions"], abs=1e-6)
    for row, explanation in zip(ROWS, answer["explanations"], strict=True):
        (found,) = explanation["attributions"]
        expected = exact_shapley(row["AGEP"], row["SEX"], 45.0, "1")
        assert found["featureAttributions"] == pytest.approx(expected, abs=1e-6)
        assert found["baselineOutputValue"] == pytest.approx(0.5, abs=1e-6)  # sigmoid(0)
        total = found["baselineOutputValue"] + sum(found["featureAttributions"].values())
        assert total == pytest.approx(found["instanceOutputValue"], abs=1e-6)
        assert found["approximationError"] < 1e-6 and found["outputName"] == "probability"
    assert answer["model_version"] == "1" and answer["request_id"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": [{"AGEP": 30.0}]}, r"lacks feature(s) ['SEX']"),
        ({"instances": [{"AGEP": 30.0, "SEX": "1", "X": 1}]}, "unknown feature(s) ['X']"),
        ({"instances": [ROWS[0]] * 101}, "100"),
        ({"rows": []}, "instances"),
    ],
)
def test_bad_explain_requests_are_400_naming_the_fault(server, body, message):
    status, answer = post(server, body)
    assert status == 400
    assert message in json.dumps(answer).replace("\\", "")


def test_without_a_baseline_the_missing_row_is_the_baseline(imputing_model, tmp_path):
    server = start(imputing_model, tmp_path)
    try:
        status, answer = post(server, {"instances": [ROWS[0]]})
    finally:
        server.stop()
    assert status == 200, answer
    assert answer["baseline"] == {"AGEP": None, "SEX": ""}
    (found,) = answer["explanations"][0]["attributions"]
    assert found["baselineOutputValue"] == pytest.approx(0.4, abs=1e-6)  # age 45, SEX not "1"
    assert found["featureAttributions"] == pytest.approx(
        exact_shapley(30.0, "2", 45.0, ""), abs=1e-6
    )


def test_a_model_that_cannot_fill_missing_values_needs_a_baseline_to_explain(mixed_model, tmp_path):
    server = start(mixed_model, tmp_path)  # the candidate fails on a missing age
    try:
        status, answer = post(server, {"instances": [ROWS[0]]})
        predicted, _ = post(server, {"instances": [ROWS[0]]}, "predict")
    finally:
        server.stop()
    assert predicted == 200  # serving itself is unaffected
    assert status == 400 and "start the server with --explain-baseline" in answer["error"]


def test_a_parquet_baseline_is_its_median_and_most_frequent_value(mixed_model, tmp_path):
    data = tmp_path / "reference.parquet"
    pq.write_table(pa.table({"AGEP": [20.0, 40.0, 60.0], "SEX": ["2", "2", "1"]}), data)
    server = start(mixed_model, tmp_path, "--explain-baseline", str(data))
    try:
        status, answer = post(server, {"instances": [ROWS[0]]})
    finally:
        server.stop()
    assert status == 200 and answer["baseline"] == {"AGEP": 40.0, "SEX": "2"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--explain-method", "shap"], "attribution method 'shap' is not one of"),
        (["--explain-method", "integrated_gradients"], "are strings"),
        (["--explain-baseline", "/nonexistent.json"], "does not exist"),
        (["--explain-baseline", "BAD"], "cannot be explained from"),
    ],
)
def test_a_bad_explain_setting_stops_the_server_at_start(mixed_model, tmp_path, extra, message):
    if "BAD" in extra:  # a baseline the candidate fails on: age 95 > its maximum 90
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"AGEP": 95.0, "SEX": "1"}))
        extra = [str(bad) if e == "BAD" else e for e in extra]
    with pytest.raises(ValueError, match=message):  # the server's refusal (exit 2)
        start(mixed_model, tmp_path, *extra)


def test_explained_rows_are_logged_with_their_attributions(imputing_model, tmp_path):
    from kfpkit.serving.served_logs import read_served

    logs = tmp_path / "logs"
    server = start(imputing_model, tmp_path, "--log-dir", str(logs),
                   "--log-flush-seconds", "0.2")  # fmt: skip
    try:
        assert post(server, {"instances": ROWS}, "predict")[0] == 200
        status, answer = post(server, {"instances": ROWS})
        assert status == 200, answer
    finally:
        server.stop()
    table = read_served(str(logs / "candidate")).to_pylist()
    predicted = [r for r in table if r["attributions"] is None]
    explained = [r for r in table if r["attributions"] is not None]
    assert len(predicted) == 2 and len(explained) == 2
    assert {r["request_id"] for r in explained} == {answer["request_id"]}
    for row in explained:
        found = answer["explanations"][row["row"]]["attributions"][0]
        assert json.loads(row["attributions"]) == found["featureAttributions"]
        assert row["prediction"] == pytest.approx(found["instanceOutputValue"])
