"""kfp.local evaluates dsl.If on a named task output once kfpkit's local run has set it up."""

import pytest
from kfp import dsl, local

from kfpkit.local_run import _resolve_task_output_conditions


@dsl.component
def decide(value: bool, blessed: dsl.OutputPath(bool)):  # type: ignore[valid-type]
    with open(blessed, "w") as f:
        f.write("true" if value else "false")


@dsl.component
def follow_up() -> str:
    return "ran"


@dsl.pipeline(name="gate")
def gate(value: bool):
    decision = decide(value=value)
    with dsl.If(decision.outputs["blessed"] == True):  # noqa: E712 - a KFP condition
        follow_up()


@pytest.mark.parametrize("value", [True, False])
def test_branch_follows_the_named_output(tmp_path, value, caplog):
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path))
    _resolve_task_output_conditions()
    gate(value=value)
    ran = any("follow-up" in p.name for p in tmp_path.glob("gate-*/*"))
    assert ran is value
    assert "Could not resolve" not in caplog.text
