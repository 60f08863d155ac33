"""Reading an Experiment's status: progress notes, Katib's failure reason, the optimal trial
when the Trials cannot be listed, and no optimal trial at all."""

from __future__ import annotations

import pytest

from kfpkit.components.katib_tune import experiment as katib
from kfpkit.components.katib_tune import spec as specs

SPEC = specs.parse_spec(
    [
        {"name": "learning_rate", "type": "double", "min": 1e-4, "max": 0.1, "log": True},
        {"name": "batch_size", "type": "int", "min": 64, "max": 512},
    ],
    max_trial_count=4,
    fixed_hyperparameters={"epochs": 5},
)


def experiment(status: dict) -> dict:
    return {"metadata": {"name": "katib-tune-x", "namespace": "ns"}, "status": status}


def test_progress_states():
    running = katib.progress(
        experiment(
            {
                "trials": 3,
                "trialsRunning": 2,
                "trialsSucceeded": 1,
                "conditions": [{"type": "Running", "status": "True"}],
            }
        )
    )
    assert running.state == "pending" and running.reason.startswith("3 trials: 2 running, 1 succ")
    failed = katib.progress(
        experiment(
            {
                "conditions": [
                    {"type": "Running", "status": "False"},
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "ExperimentFailed",
                        "message": "bad",
                    },
                ]
            }
        )
    )
    assert failed.state == "failed" and failed.reason == "ExperimentFailed: bad"
    done = katib.progress(experiment({"conditions": [{"type": "Succeeded", "status": "True"}]}))
    assert done.state == "done"


def test_optimal_trial_without_trial_list():
    result = katib.experiment_result(
        SPEC,
        experiment(
            {
                "currentOptimalTrial": {
                    "bestTrialName": "katib-tune-x-abc",
                    "parameterAssignments": [
                        {"name": "learning_rate", "value": "0.003"},
                        {"name": "batch_size", "value": "128"},
                    ],
                    "observation": {"metrics": [{"name": "validation-auc", "latest": "0.87"}]},
                }
            }
        ),
        [],
    )
    assert result.best_hyperparameters == {"epochs": 5, "learning_rate": 0.003, "batch_size": 128}
    assert result.best.objective == 0.87 and result.best.name == "katib-tune-x-abc"
    assert result.experiment == "ns/katib-tune-x" and result.trials == []


def test_no_optimal_trial_is_an_error():
    with pytest.raises(RuntimeError, match="without an optimal trial"):
        katib.experiment_result(SPEC, experiment({"currentOptimalTrial": {}}), [])
