"""The evaluate launcher end to end through launch(), on real SavedModels and files."""

import json
from pathlib import Path

import pytest

from kfpkit import testing
from kfpkit.components.evaluate import launcher
from kfpkit.runtime.executor import EXIT_USER_ERROR, launch

OUTPUTS = {
    "metrics": "system.Metrics",
    "classification_metrics": "system.ClassificationMetrics",
    "report": "system.Markdown",
}


def executor_input(out: Path, inputs: dict[str, Path], params: dict) -> dict:
    kinds = {"test_data": "system.Dataset"}
    typed = {n: (kinds.get(n, "system.Model"), str(p)) for n, p in inputs.items()}
    params = {"label_column": "employed", **params}  # the pipelines set it; no default
    return testing.executor_input(out, params, OUTPUTS, typed, output_params=["blessed"])


def evaluate(out: Path, inputs: dict[str, Path], **params) -> dict:
    code = launch(
        launcher.run, ["--executor_input", json.dumps(executor_input(out, inputs, params))]
    )
    assert code == 0
    doc = json.loads((out / "executor_output.json").read_text())
    arts = {k: v["artifacts"][0]["metadata"] for k, v in doc["artifacts"].items()}
    return {
        "blessed": doc["parameterValues"]["blessed"],
        "blessed_file": (out / "blessed").read_text(),
        "report_text": (out / "report").read_text(),
        **arts,
    }


def test_first_model_is_judged_on_the_threshold_only(strong_model, data, tmp_path):
    got = evaluate(
        tmp_path, {"model": strong_model, "test_data": data["test"]}, slice_columns=["SEX", "year"]
    )
    assert got["blessed"] is True and got["blessed_file"] == "true"
    assert got["metrics"]["auc"] > 0.8 and got["metrics"]["count"] == 1000
    assert "No baseline model: only the absolute threshold applies" in got["report_text"]
    # slices: every value of SEX and year, in the metrics and the report
    assert {"SEX=1/auc", "SEX=2/auc", "year=2015/count", "year=2018/auc"} <= set(got["metrics"])
    assert sum(got["metrics"][f"SEX={v}/count"] for v in ("1", "2")) == 1000
    assert "## Slices by `year`" in got["report_text"]
    classification = got["classification_metrics"]
    assert [s["displayName"] for s in classification["confusionMatrix"]["annotationSpecs"]] == [
        "0",
        "1",
    ]
    assert sum(sum(r["row"]) for r in classification["confusionMatrix"]["rows"]) == 1000
    assert len(classification["confidenceMetrics"]) == 101


def test_worse_than_the_baseline_is_not_blessed(strong_model, weak_model, data, tmp_path):
    inputs = {"model": weak_model, "test_data": data["test"], "baseline_model": strong_model}
    got = evaluate(tmp_path, inputs, absolute_threshold=0.55, max_regression=0.01)
    assert got["blessed"] is False and got["blessed_file"] == "false"
    assert got["metrics"]["baseline_auc"] > got["metrics"]["auc"]
    assert "# Model evaluation: NOT BLESSED" in got["report_text"]
    assert (
        "FAIL: auc" in got["report_text"]
        and "| metric | candidate | baseline | change |" in got["report_text"]
    )


def test_better_than_the_baseline_is_blessed(strong_model, weak_model, data, tmp_path):
    inputs = {"model": strong_model, "test_data": data["test"], "baseline_model": weak_model}
    got = evaluate(tmp_path, inputs, metric="accuracy", min_improvement=0.02)
    assert got["blessed"] is True
    assert got["metrics"]["accuracy"] - got["metrics"]["baseline_accuracy"] >= 0.02


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"slice_columns": ["NOPE"]}, r"column\(s\) \['NOPE'\] not in the data"),
        ({"metric": "f1"}, "metric 'f1' is not one of"),
        ({"absolute_threshold": "high"}, "absolute_threshold must be a number, not 'high'"),
    ],
)
def test_bad_input_exits_2(strong_model, data, tmp_path, caplog, params, message):
    doc = executor_input(tmp_path, {"model": strong_model, "test_data": data["test"]}, params)
    assert launch(launcher.run, ["--executor_input", json.dumps(doc)]) == EXIT_USER_ERROR
    assert any(__import__("re").search(message, r.message) for r in caplog.records)
    assert not (tmp_path / "executor_output.json").exists()


def test_a_folder_without_a_saved_model_is_named(data, tmp_path, caplog):
    (tmp_path / "empty_model").mkdir()
    doc = executor_input(
        tmp_path, {"model": tmp_path / "empty_model", "test_data": data["test"]}, {}
    )
    assert launch(launcher.run, ["--executor_input", json.dumps(doc)]) == EXIT_USER_ERROR
    assert "model: no <version>/saved_model.pb under" in caplog.text


def test_the_newest_published_version_is_the_baseline(strong_model, weak_model, data, tmp_path):
    import shutil

    from kfpkit.runtime.model_versions import latest_version_dir

    serving = tmp_path / "serving"
    inputs = {"model": weak_model, "test_data": data["test"]}
    first = evaluate(tmp_path / "a", inputs, baseline_model_dir=str(serving), max_regression=0.01)
    assert first["blessed"] is True and "baseline_auc" not in first["metrics"]
    assert "No baseline model" in first["report_text"]
    shutil.copytree(latest_version_dir(str(weak_model)), serving / "1")
    shutil.copytree(latest_version_dir(str(strong_model)), serving / "2")
    later = evaluate(tmp_path / "b", inputs, baseline_model_dir=str(serving), max_regression=0.01)
    assert later["blessed"] is False  # the weak model loses to the strong one now deployed
    assert later["metrics"]["baseline_auc"] > later["metrics"]["auc"]


def test_baseline_artifact_and_directory_together_are_refused(strong_model, data, tmp_path):
    inputs = {"model": strong_model, "test_data": data["test"], "baseline_model": strong_model}
    doc = executor_input(tmp_path, inputs, {"baseline_model_dir": str(tmp_path / "serving")})
    assert launch(launcher.run, ["--executor_input", json.dumps(doc)]) == EXIT_USER_ERROR


def test_intervals_in_the_metrics_and_the_report_and_reproducible(
    strong_model, weak_model, data, tmp_path
):
    inputs = {"model": strong_model, "test_data": data["test"], "baseline_model": weak_model}
    params = {"slice_columns": ["SEX", "year"], "bootstrap_resamples": 200, "seed": 3}
    got = evaluate(tmp_path / "a", inputs, **params)
    metrics = got["metrics"]
    for name in ("auc", "accuracy", "log_loss"):
        assert metrics[f"{name}_low"] <= metrics[name] <= metrics[f"{name}_high"]
        low, high = metrics[f"baseline_{name}_low"], metrics[f"baseline_{name}_high"]
        assert low <= metrics[f"baseline_{name}"] <= high
    # the strong model is really better than the SEX-only one on these 1,000 rows
    assert metrics["difference_auc_low"] > 0
    assert "the candidate is better" in got["report_text"]
    assert metrics["SEX=1/auc_low"] <= metrics["SEX=1/auc"] <= metrics["SEX=1/auc_high"]
    # per slice, the paired change: within a SEX value the SEX-only model ranks nothing
    for value in ("1", "2"):
        assert metrics[f"SEX={value}/baseline_auc"] == 0.5
        assert metrics[f"SEX={value}/difference_auc_low"] > 0.2
    assert (
        "| baseline auc | change in auc | change 95 % CI (paired) | tell apart? |"
        in (got["report_text"])
    )
    assert "change in auc, 95 % CI (paired)</text>" in got["report_text"]  # the chart
    assert 0 <= metrics["SEX/demographic_parity_difference"] <= 1
    assert 0 <= metrics["expected_calibration_error"] < 0.2
    assert "## Calibration" in got["report_text"] and "<svg" in got["report_text"]
    again = evaluate(tmp_path / "b", inputs, **params)
    assert again["metrics"] == metrics


def test_a_model_against_itself_differs_by_exactly_zero(strong_model, data, tmp_path):
    inputs = {"model": strong_model, "test_data": data["test"], "baseline_model": strong_model}
    got = evaluate(
        tmp_path,
        inputs,
        bootstrap_resamples=100,
        require_noninferiority=True,
        slice_columns=["SEX"],
        slice_bins={"AGEP": [45]},
    )
    assert got["metrics"]["difference_auc_low"] == got["metrics"]["difference_auc_high"] == 0
    for found in ("SEX=1", "SEX=2", "AGEP=<45", "AGEP=>=45"):
        assert got["metrics"][f"{found}/difference_auc_low"] == 0, found
        assert got["metrics"][f"{found}/difference_auc_high"] == 0, found
    assert got["blessed"] is True
    assert "[+0.0000, +0.0000]: not distinguishable" in got["report_text"]


def test_a_slice_below_its_threshold_blocks_the_blessing(strong_model, data, tmp_path):
    inputs = {"model": strong_model, "test_data": data["test"]}
    got = evaluate(
        tmp_path,
        inputs,
        slice_columns=["SEX"],
        bootstrap_resamples=50,
        slice_thresholds={"SEX=1": 0.5, "SEX=2": 0.999},
    )
    assert got["blessed"] is False
    assert "PASS: slice SEX=1: auc" in got["report_text"]
    assert "FAIL: slice SEX=2: auc" in got["report_text"]


def test_a_slice_too_small_for_an_interval_is_reported(strong_model, data, tmp_path):
    inputs = {"model": strong_model, "test_data": data["test"]}
    got = evaluate(tmp_path, inputs, slice_columns=["AGEP"], bootstrap_resamples=50)
    assert "too few rows for an interval" in got["report_text"] and got["blessed"] is True


def test_a_numeric_column_is_sliced_into_bands(strong_model, data, tmp_path):
    inputs = {"model": strong_model, "test_data": data["test"]}
    got = evaluate(
        tmp_path,
        inputs,
        slice_bins={"AGEP": [25, 45, 65]},
        bootstrap_resamples=50,
        slice_thresholds={"AGEP=25-45": 0.5, "AGEP=>=65": 0.999},
    )
    metrics, report = got["metrics"], got["report_text"]
    # the sample's test rows: 298 under 25, 217 from 25 to 45, 292 from 45 to 65, 193 older
    counts = {band: metrics[f"AGEP={band}/count"] for band in ("<25", "25-45", "45-65", ">=65")}
    assert counts == {"<25": 298, "25-45": 217, "45-65": 292, ">=65": 193}
    assert metrics["AGEP=<25/auc_low"] <= metrics["AGEP=<25/auc"] <= metrics["AGEP=<25/auc_high"]
    # thresholds by band label; the bands in their order in the report
    assert got["blessed"] is False
    assert "PASS: slice AGEP=25-45: auc" in report and "FAIL: slice AGEP=>=65: auc" in report
    rows = [line.split(" | ")[0] for line in report.split("## Slices by `AGEP`")[1].splitlines()]
    assert [r for r in rows if r in ("| <25", "| 25-45", "| 45-65", "| >=65")] == [
        "| <25",
        "| 25-45",
        "| 45-65",
        "| >=65",
    ]
    assert "AGEP/demographic_parity_difference" in metrics


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"slice_bins": {"NOPE": [1]}}, r"column\(s\) \['NOPE'\] not in the data"),
        ({"slice_bins": {"SEX": [1]}}, "slice_bins: column 'SEX' is string, not numeric"),
        ({"slice_bins": {"AGEP": [45, 25]}}, r"slice_bins\['AGEP'\]: the edges \[45, 25\] are not"),
        ({"slice_bins": {"AGEP": []}}, r"slice_bins\['AGEP'\]: the edges must be a non-empty"),
        (
            {"slice_bins": {"AGEP": [25]}, "slice_thresholds": {"AGEP=<30": 0.5}},
            r"\['AGEP=<30'\] not in the evaluated slices .*'AGEP=<25', 'AGEP=>=25'",
        ),
        ({"bootstrap_resamples": 0}, "bootstrap_resamples must be > 0, not 0"),
        ({"bootstrap_resamples": -3}, "bootstrap_resamples must be > 0"),
        ({"bootstrap_resamples": 2.5}, "bootstrap_resamples must be a whole number, not 2.5"),
        (
            {"slice_columns": ["SEX"], "slice_thresholds": {"SEX=9": 0.5}},
            r"\['SEX=9'\] not in the evaluated slices .*'SEX=1', 'SEX=2'",
        ),
        (
            {"slice_columns": ["SEX"], "slice_thresholds": {"NOPE=1": 0.5}},
            r"\['NOPE=1'\] not in the evaluated slices",
        ),
        ({"confidence": 1.0}, r"confidence must be in \[0.5, 1\)"),
    ],
)
def test_bad_interval_and_slice_inputs_exit_2(
    strong_model, data, tmp_path, caplog, params, message
):
    doc = executor_input(tmp_path, {"model": strong_model, "test_data": data["test"]}, params)
    assert launch(launcher.run, ["--executor_input", json.dumps(doc)]) == EXIT_USER_ERROR
    assert any(__import__("re").search(message, r.message) for r in caplog.records)
    assert not (tmp_path / "executor_output.json").exists()


def test_left_out_parameters_take_the_one_default_of_each(data, tmp_path):
    from kfpkit.components.evaluate import defaults, evaluator, intervals
    from kfpkit.components.evaluate import metrics as m
    from kfpkit.runtime.executor import Executor

    inputs = {"model": tmp_path / "model", "test_data": data["test"]}
    request = launcher.request_from(Executor(executor_input(tmp_path, inputs, {})))
    assert request.rule == m.BlessingRule() and request.rule.metric == defaults.METRIC
    assert request.bootstrap == intervals.BootstrapSettings()
    assert request.bootstrap.resamples == defaults.BOOTSTRAP_RESAMPLES
    assert request.explain_rows == defaults.EXPLAIN_ROWS
    assert request.attribution.method == defaults.ATTRIBUTION_METHOD
    assert request.slice_bins == evaluator.EvaluateRequest("m", "t", "y").slice_bins == {}
