"""Feedback bodies and the index of answered requests, without a server (the server's own
tests send the same cases over HTTP)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from kfpkit.serving import feedback
from kfpkit.serving.feedback import Feedback, Rejected, ServedIndex


def rejected(body, reason, status=400):
    with pytest.raises(Rejected) as e:
        feedback.parse(body)
    assert (e.value.status, e.value.reason) == (status, reason), str(e.value)
    return str(e.value)


def test_single_and_batch_bodies():
    assert feedback.parse({"request_id": "r", "label": 1}) == [Feedback("r", 0, 1.0, None)]
    assert feedback.parse({"feedback": [{"request_id": "r", "row": 2, "reward": 0.5},
                                        {"request_id": "s", "label": 0.0, "reward": -3}]}) == [
        Feedback("r", 2, None, 0.5), Feedback("s", 0, 0.0, -3.0)]  # fmt: skip


def test_bad_bodies_name_the_item_and_the_value():
    assert "lacks 'request_id'" in rejected({"label": 1}, "missing_field")
    assert "neither 'label'" in rejected({"request_id": "r"}, "missing_field")
    assert "got 2" in rejected({"request_id": "r", "label": 2}, "bad_label")
    assert "got True" in rejected({"request_id": "r", "label": True}, "bad_label")
    assert "got '1'" in rejected({"request_id": "r", "label": "1"}, "bad_label")
    rejected({"request_id": "r", "reward": float("nan")}, "bad_reward")
    rejected({"request_id": "r", "row": -1, "label": 1}, "bad_row")
    rejected({"request_id": "r", "row": 1.0, "label": 1}, "bad_row")
    assert "['lable']" in rejected({"request_id": "r", "lable": 1}, "unknown_field")
    assert "feedback item 1" in rejected(
        {"feedback": [{"request_id": "r", "label": 1}, {"request_id": "r", "label": 5}]},
        "bad_label",
    )
    rejected({"feedback": []}, "bad_body")
    rejected([1, 2], "bad_body")
    rejected({"request_id": 7, "label": 1}, "missing_field")


def test_unknown_expired_out_of_range_and_duplicate_feedback_are_refused():
    index = ServedIndex(retention_seconds=60)
    served = time.time()
    index.add("r1", "a", np.array([0.9, 0.2]), served_at=served)
    ok = index.accept([Feedback("r1", 0, 1.0, None)], now=served + 1)
    assert ok[0][1].variant == "a" and ok[0][2] == 1.0  # predicted 1, label 1: success
    for items, status, reason in (
        ([Feedback("nope", 0, 1.0, None)], 404, "unknown_request"),
        ([Feedback("r1", 0, 0.0, None)], 409, "duplicate"),
        ([Feedback("r1", 2, 0.0, None)], 400, "bad_row"),
        ([Feedback("r1", 1, 0.0, None), Feedback("r1", 1, 1.0, None)], 409, "duplicate"),
    ):
        with pytest.raises(Rejected) as e:
            index.accept(items, now=served + 1)
        assert (e.value.status, e.value.reason) == (status, reason)
    # the refused batch marked nothing: row 1 still takes one feedback
    assert index.accept([Feedback("r1", 1, 1.0, None)], now=served + 1)[0][2] == 0.0
    with pytest.raises(Rejected) as e:
        index.accept([Feedback("r1", 0, 1.0, None)], now=served + 100)
    assert (e.value.status, e.value.reason) == (410, "expired_request")


def test_bandit_rewards_outside_zero_one_are_refused():
    index = ServedIndex()
    index.add("r", "a", np.array([0.3]))
    assert index.accept([Feedback("r", 0, None, 7.0)])[0][2] is None
    index.add("s", "a", np.array([0.3]))
    with pytest.raises(Rejected, match=r"rewards in \[0, 1\], got 7.0"):
        index.accept([Feedback("s", 0, None, 7.0)], unit_rewards=True)


def test_the_oldest_requests_are_forgotten_beyond_the_retention_and_the_size():
    index = ServedIndex(retention_seconds=3600, max_requests=3)
    for i in range(5):
        index.add(f"r{i}", "a", np.array([0.5]))
    assert len(index) == 3 and "r0" not in index and "r4" in index


def test_restore_from_logged_columns():
    index = ServedIndex(retention_seconds=60)
    now = time.time()
    index.restore(
        {"request_id": np.array(["r", "r", "s"], dtype=object), "row": np.array([1, 0, 0]),
         "prediction": np.array([0.2, 0.8, 0.6]), "variant": np.array(["a", "a", "b"]),
         "timestamp": np.array([now - 5, now - 5, now - 1])},
        {"request_id": np.array(["r"], dtype=object), "row": np.array([1])},
    )  # fmt: skip
    ok = index.accept([Feedback("r", 0, 1.0, None), Feedback("s", 0, 0.0, None)], now=now)
    assert [(s.variant, r) for _, s, r in ok] == [("a", 1.0), ("b", 0.0)]
    with pytest.raises(Rejected, match="row 1 already has feedback"):
        index.accept([Feedback("r", 1, 1.0, None)], now=now)
