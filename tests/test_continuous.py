"""The replay scores against the label the pipeline trained on: one definition of it."""

from kfpkit import continuous
from kfpkit.pipelines import defaults


def test_the_replay_label_is_the_pipelines_own_unless_the_run_sets_one():
    assert continuous.label_column({}) == defaults.LABEL_COLUMN
    assert continuous.label_column({"label_column": "churned"}) == "churned"


def _compiled_tasks(path) -> dict:  # type: ignore[no-untyped-def]
    """task name -> (its task spec, the spec of the DAG holding it), every level."""
    import yaml
    from kfp import compiler

    from kfpkit.pipelines.continuous_training import continuous_training

    compiler.Compiler().compile(continuous_training, str(path))
    doc = yaml.safe_load(path.read_text())
    found = {}
    pending = [doc["root"]["dag"]]
    while pending:
        dag = pending.pop()
        for name, task in dag["tasks"].items():
            found[name] = task
            component = doc["components"][task["componentRef"]["name"]]
            if "dag" in component:
                pending.append(component["dag"])
    return found


def test_every_registered_version_is_recorded_for_its_window_and_named_in_the_replay(tmp_path):
    tasks = _compiled_tasks(tmp_path / "continuous_training.yaml")
    # the names run_window reports (skipped steps, ...) are the pipeline's display names
    shown = {name: task["taskInfo"]["name"] for name, task in tasks.items()}
    leaves = {n: d for n, d in shown.items() if not n.startswith(("condition", "exit-handler"))}
    assert {n: continuous._TASK_DISPLAY.get(n) for n in leaves} == leaves
    # after each registration (blessed and challenger), its version goes into the state:
    # a re-run of the window registers nothing, a run that failed before registering did not
    recorded = {
        task["inputs"]["artifacts"]["registered_model"]["taskOutputArtifact"]["producerTask"]
        for task in tasks.values()
        if "registered_model" in task.get("inputs", {}).get("artifacts", {})
    }
    assert recorded == {"register-model", "register-model-2"}
    assert "record-registration" in continuous.RETRAIN_STEPS
