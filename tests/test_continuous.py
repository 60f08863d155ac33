"""The replay scores against the label the pipeline trained on: one definition of it."""

from kfpkit import continuous
from kfpkit.pipelines import defaults


def test_the_replay_label_is_the_pipelines_own_unless_the_run_sets_one():
    assert continuous.label_column({}) == defaults.LABEL_COLUMN
    assert continuous.label_column({"label_column": "churned"}) == "churned"
