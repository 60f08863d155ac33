"""The training pipeline registers every evaluated model (compiled spec): the blessed one
after publication and before the push, the others as challengers, with lineage inputs."""

from __future__ import annotations

import yaml
from kfp import compiler

from kfpkit.pipelines.training import training


def _spec(tmp_path):
    path = tmp_path / "training.yaml"
    compiler.Compiler().compile(training, str(path))
    return yaml.safe_load(path.read_text())


def _tasks(spec):
    """Every task of every DAG, with the DAG (component) it is in."""
    for component, body in spec["components"].items():
        for name, task in body.get("dag", {}).get("tasks", {}).items():
            yield component, name, task


def test_blessed_and_rejected_models_are_both_registered(tmp_path):
    spec = _spec(tmp_path)
    tasks = {task["taskInfo"]["name"]: (component, task) for component, _, task in _tasks(spec)}
    champion_dag, champion = tasks["register-model"]
    challenger_dag, challenger = tasks["register-challenger"]
    assert champion_dag != challenger_dag  # dsl.If(blessed) and its dsl.Else
    model = champion["inputs"]["artifacts"]["model"]["taskOutputArtifact"]
    assert model == {"outputArtifactKey": "published_model", "producerTask": "publish-model"}
    assert (challenger["inputs"]["artifacts"]["model"]["componentInputArtifact"]
            .endswith("train-model"))  # fmt: skip
    push = tasks["push-model"][1]
    assert "register-model" in push["dependentTasks"]  # the champion moves before the push
    for task in (champion, challenger):
        artifacts, params = task["inputs"]["artifacts"], task["inputs"]["parameters"]
        assert {"metrics", "train_data", "validation_data", "statistics", "schema"} <= set(
            artifacts
        )
        assert params["pipeline_run"]["runtimeValue"]["constant"] == "{{$.pipeline_job_name}}"
        assert params["pipeline_run_id"]["runtimeValue"]["constant"] == "{{$.pipeline_job_uuid}}"
        assert task["cachingOptions"] == {} or not task["cachingOptions"].get("enableCache")
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert inputs["registry_backend"]["defaultValue"] == "mlflow"
    assert {"registry_uri", "registry_location", "registry_server_address"} <= set(inputs)


def test_local_runs_keep_the_registry_under_the_pipeline_root(tmp_path):
    from kfpkit.local_run import _local_registry

    assert _local_registry("training", tmp_path.absolute()) == {
        "registry_uri": str(tmp_path.absolute() / "registry" / "mlflow.db")
    }
