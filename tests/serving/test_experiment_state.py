"""The experiment object without a server: feedback for a request of a variant that is gone,
the policy file written atomically and read back, a state of other variants refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kfpkit.serving.experiment import POLICY_FILE, Experiment, ExperimentOptions


def experiment(tmp_path, variants=("a", "b")) -> Experiment:
    options = ExperimentOptions(routing="bandit", seed=1)
    return Experiment("m", list(variants), [1.0] * len(variants), options, str(tmp_path),
                      flush_seconds=0.1)  # fmt: skip


def test_feedback_updates_the_bandit_and_a_gone_variant_is_logged_only(tmp_path):
    exp = experiment(tmp_path)
    exp.served("r1", "a", np.array([0.9]), 1e12)  # far future: never expired in this test
    exp.served("r2", "old", np.array([0.9]), 1e12)  # e.g. restored from a former run's log
    body = b'{"feedback": [{"request_id": "r1", "label": 1}, {"request_id": "r2", "label": 1}]}'
    assert exp.feedback(body) == (200, {"accepted": 2})
    assert exp.router.arms["a"].successes == 1 and "old" not in exp.router.arms
    status, answer = exp.feedback(b"{not json")
    assert status == 400 and answer["reason"] == "bad_body"
    exp.close()
    state = json.loads((tmp_path / "m" / POLICY_FILE).read_text())
    assert state["arms"]["a"]["feedback"] == 1
    assert not [p for p in (tmp_path / "m").iterdir() if p.name.startswith(".")]
    assert exp.feedback_log is not None and exp.feedback_log.rows_written == 2


def test_a_saved_state_is_restored_and_one_of_other_variants_refused(tmp_path):
    exp = experiment(tmp_path)
    exp.served("r1", "b", np.array([0.2]), 1e12)
    exp.feedback(b'{"request_id": "r1", "reward": 1.0}')
    exp.close()
    again = experiment(tmp_path)
    assert again.router.arms["b"].successes == 1.0
    again.close()
    with pytest.raises(ValueError, match=r"policy.json is the state of variants \['a', 'b'\]"):
        experiment(tmp_path, ("a", "c"))
    (tmp_path / "m" / POLICY_FILE).write_text("{")
    with pytest.raises(ValueError, match="cannot read the routing state"):
        experiment(tmp_path)
