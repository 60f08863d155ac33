"""evaluate's feature attributions through launch(), on the real SavedModels of conftest:
global importance overall and per slice in the metrics, the report and explanation.json."""

import json
import re
from pathlib import Path

import pytest

from kfpkit import testing
from kfpkit.components.evaluate import launcher
from kfpkit.runtime.executor import EXIT_USER_ERROR, launch

OUTPUTS = {
    "metrics": "system.Metrics",
    "classification_metrics": "system.ClassificationMetrics",
    "report": "system.Markdown",
    "explanation": "system.Artifact",
}


def executor_input(out: Path, model: Path, data: dict[str, Path], params: dict) -> dict:
    inputs = {"model": ("system.Model", str(model)), "test_data": ("system.Dataset",
              str(data["test"]))}  # fmt: skip
    params = {"label_column": "employed", "bootstrap_resamples": 20, **params}
    return testing.executor_input(out, params, OUTPUTS, inputs, output_params=["blessed"])


def run(out: Path, model: Path, data: dict[str, Path], **params) -> dict:
    doc = executor_input(out, model, data, params)
    assert launch(launcher.run, ["--executor_input", json.dumps(doc)]) == 0
    written = json.loads((out / "executor_output.json").read_text())
    explanation = written["artifacts"]["explanation"]["artifacts"][0]
    return {
        "metrics": written["artifacts"]["metrics"]["artifacts"][0]["metadata"],
        "report": (out / "report").read_text(),
        "summary": json.loads((out / "explanation" / "explanation.json").read_text()),
        "explanation_metadata": explanation["metadata"],
    }


def test_global_importance_overall_and_per_slice(strong_model, data, tmp_path):
    got = run(tmp_path, strong_model, data, slice_columns=["SEX"], explain_rows=300)
    summary = got["summary"]
    assert summary["method"] == "sampled_shapley"  # the model reads categorical strings
    assert summary["rows"] == 300 and summary["max_completeness_gap"] < 1e-5
    importance = summary["importance"]
    assert set(importance) == {f["name"] for f in summary["features"]}
    assert list(importance.values()) == sorted(importance.values(), reverse=True)
    assert max(importance.values()) > 0.01  # a trained model's features matter
    # the same numbers as scalars in the metrics
    assert {k: got["metrics"][f"attribution/{k}"] for k in importance} == importance
    sexes = summary["slices"]["SEX"]
    assert set(sexes) == {"1", "2"} and sum(v["count"] for v in sexes.values()) == 300
    # the mean over all rows is the row-weighted mean of the slices' means
    for name, value in importance.items():
        weighted = sum(v["count"] * v["importance"][name] for v in sexes.values()) / 300
        assert weighted == pytest.approx(value, rel=1e-9, abs=1e-12)
    assert "## Feature attributions" in got["report"]
    assert "Mean |attribution| by `SEX`" in got["report"]
    top = next(iter(importance))
    assert re.search(rf"\| {top} \| {importance[top]:.4f} \|", got["report"])
    assert got["explanation_metadata"]["rows"] == 300


def test_a_model_on_one_feature_gives_it_everything(weak_model, data, tmp_path):
    summary = run(tmp_path, weak_model, data, explain_rows=100)["summary"]
    assert list(summary["importance"]) == ["SEX"]
    assert summary["baseline"]["SEX"] in ("1", "2")


def test_the_sample_is_seeded(weak_model, data, tmp_path):
    first = run(tmp_path / "a", weak_model, data, explain_rows=50, seed=1)["summary"]
    again = run(tmp_path / "b", weak_model, data, explain_rows=50, seed=1)["summary"]
    other = run(tmp_path / "c", weak_model, data, explain_rows=50, seed=2)["summary"]
    assert first == again
    assert first["baseline_prediction"] == other["baseline_prediction"] or first != other


def test_zero_rows_turns_attributions_off(weak_model, data, tmp_path):
    got = run(tmp_path, weak_model, data, explain_rows=0)
    assert got["summary"] == {"rows": 0}
    assert not any(k.startswith("attribution/") for k in got["metrics"])
    assert "Feature attributions" not in got["report"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"explain_rows": -1}, "explain_rows must be >= 0"),
        ({"attribution_method": "shap"}, "attribution method 'shap' is not one of"),
        ({"attribution_method": "integrated_gradients"}, r"categorical input\(s\) \[.*'SEX'"),
    ],
)
def test_bad_attribution_settings_exit_2(strong_model, data, tmp_path, caplog, params, message):
    doc = executor_input(tmp_path, strong_model, data, params)
    assert launch(launcher.run, ["--executor_input", json.dumps(doc)]) == EXIT_USER_ERROR
    assert any(re.search(message, r.message) for r in caplog.records)
    assert not (tmp_path / "executor_output.json").exists()
