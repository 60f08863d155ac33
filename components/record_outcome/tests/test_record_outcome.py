"""record_outcome on real final-status payloads (kfp.local's, Vertex AI's) and real folders."""

from __future__ import annotations

import json

import pytest

from kfpkit import testing
from kfpkit.components.record_outcome import launcher
from kfpkit.outcome import decide, failed_tasks_in_message
from kfpkit.runtime import executor

# What kfp.local 2.17 passes an exit task when the handler's body failed.
LOCAL_FAILED = {
    "state": "FAILED",
    "pipeline_job_resource_name": "local-pipeline-exit-handler-1",
    "pipeline_task_name": "exit-handler-1",
    "error": {"code": 1, "message": "Task exit-handler-1 failed."},
}


def make_run(tmp_path, finished=(), unfinished=()):
    run = tmp_path / "kfpkit-training-2026"
    for name in finished:
        (run / name).mkdir(parents=True)
        (run / name / "executor_output.json").write_text("{}")
    for name in unfinished:  # what a failed step leaves: the failure record
        doc = testing.executor_input(run / name, {}, {"model": "system.Model"})
        assert executor.launch(fail, ["--executor_input", json.dumps(doc)]) == 1
    (run / "not-started").mkdir(parents=True)  # a folder without either: neither list
    return run


def fail(_executor):
    raise RuntimeError("the disk is full")


def run_launcher(tmp_path, run, status):
    step = run / "record-outcome"
    step.mkdir(parents=True)
    doc = testing.executor_input(
        step,
        {"status": status, "pipeline_name": "kfpkit-training", "run_name": "r1"},
        {"outcome": "system.Artifact"},
    )
    assert executor.launch(launcher.run, ["--executor_input", json.dumps(doc)]) == 0
    return json.loads((step / "outcome" / launcher.OUTCOME_FILE).read_text())


def test_a_failed_local_run_names_the_step_that_did_not_finish(tmp_path):
    run = make_run(tmp_path, finished=["bigquery-split", "tfdv-validate-splits"],
                   unfinished=["train"])  # fmt: skip
    doc = run_launcher(tmp_path, run, LOCAL_FAILED)
    assert doc["state"] == "FAILED" and doc["succeeded"] is False
    assert doc["failed_steps"] == ["train"]
    assert doc["finished_steps"] == ["bigquery-split", "tfdv-validate-splits"]
    assert doc["step_errors"] == {"train": "RuntimeError: the disk is full"}
    assert doc["error_message"] == "Task exit-handler-1 failed."
    assert (doc["pipeline_name"], doc["run_name"]) == ("kfpkit-training", "r1")
    assert doc["recorded_at"].endswith("+00:00")


def test_a_succeeded_run_lists_no_failed_step(tmp_path):
    run = make_run(tmp_path, finished=["bigquery-split", "train"])
    doc = run_launcher(tmp_path, run, {"state": "SUCCEEDED", "error": {}})
    assert doc["succeeded"] is True and doc["failed_steps"] == []
    assert doc["finished_steps"] == ["bigquery-split", "train"]


def test_the_services_message_wins_over_the_folder(tmp_path):
    run = make_run(tmp_path, unfinished=["train"])
    message = ("The DAG failed because some tasks failed. The failed tasks are: "
               "[evaluate, push-model].")  # fmt: skip
    out = decide({"state": "FAILED", "error": {"code": 9, "message": message}}, str(run), "x")
    assert out.failed_steps == ["evaluate", "push-model"]


@pytest.mark.parametrize(
    "message, steps",
    [("The failed tasks are: [train].", ["train"]),
     ("failed tasks: ['split', 'train']", ["split", "train"]),
     ("Task exit-handler-1 failed.", []),
     ("", [])],
)  # fmt: skip
def test_failed_tasks_in_message(message, steps):
    assert failed_tasks_in_message(message) == steps


def test_a_cancelled_run_without_a_folder_reports_the_state(tmp_path):
    out = decide({"state": "CANCELLED", "error": {"message": "cancelled by user"}},
                 str(tmp_path / "missing"), "x")  # fmt: skip
    assert (out.state, out.succeeded, out.failed_steps) == ("CANCELLED", False, [])


@pytest.mark.parametrize("status", [[], {"error": {}}, "FAILED"])
def test_a_status_that_is_not_kfps_is_a_user_error(tmp_path, status):
    with pytest.raises(ValueError, match="status"):
        decide(status, str(tmp_path), "x")  # type: ignore[arg-type]
