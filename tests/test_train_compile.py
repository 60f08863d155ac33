"""train and evaluate compile into pipelines; accelerators land in the compiled spec; the
evaluate step's metadata has kfp's ClassificationMetrics layout."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from kfp import compiler, dsl

from kfpkit import accelerators as acc
from kfpkit import images
from kfpkit.components.evaluate import metrics as eval_metrics
from kfpkit.components.evaluate.component import evaluate
from kfpkit.components.train.component import train


def compile_with(tmp_path: Path, configure) -> tuple[dict, dict]:
    """Compiles data -> train -> evaluate (-> a step when blessed); returns the pipeline spec
    and the Kubernetes platform spec of the train executor ({} when there is none)."""

    @dsl.pipeline(name="train-on-accelerators")
    def pipeline(hyperparameters: dict = {"epochs": 3}):  # noqa: B006
        data = dsl.importer(artifact_uri="gs://bucket/split", artifact_class=dsl.Dataset)
        schema = dsl.importer(artifact_uri="gs://bucket/schema", artifact_class=dsl.Artifact)
        trained = train(
            train_data=data.output,
            validation_data=data.output,
            schema=schema.output,
            label_column="employed",
            hyperparameters=hyperparameters,
        )
        configure(trained)
        judged = evaluate(
            model=trained.outputs["model"],
            test_data=data.output,
            label_column="employed",
            slice_columns=["SEX"],
        )
        with dsl.If(judged.outputs["blessed"] == True):  # noqa: E712 - a KFP condition
            evaluate(model=trained.outputs["model"], test_data=data.output, label_column="employed")

    path = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(pipeline, str(path))
    docs = list(yaml.safe_load_all(path.read_text()))
    platform = (
        docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"] if len(docs) > 1 else {}
    )
    return docs[0], platform.get("exec-train", {})


def train_container(spec: dict) -> dict:
    return spec["deploymentSpec"]["executors"]["exec-train"]["container"]


def test_components_compile_with_the_train_image_and_launchers(tmp_path):
    spec, platform = compile_with(tmp_path, lambda task: None)
    executors = spec["deploymentSpec"]["executors"]
    assert train_container(spec)["image"] == images.image("train")
    assert train_container(spec)["command"][-1] == "kfpkit.components.train.launcher"
    assert executors["exec-evaluate"]["container"]["image"] == images.image("train")
    assert "resources" not in train_container(spec) and platform == {}
    inputs = spec["components"]["comp-train"]["inputDefinitions"]["artifacts"]
    assert inputs["schema"].get("isOptional") is True
    evaluate_inputs = spec["components"]["comp-evaluate"]["inputDefinitions"]["artifacts"]
    assert evaluate_inputs["baseline_model"].get("isOptional") is True
    outputs = spec["components"]["comp-evaluate"]["outputDefinitions"]
    assert outputs["parameters"]["blessed"]["parameterType"] == "BOOLEAN"
    assert outputs["artifacts"]["classification_metrics"]["artifactType"]["schemaTitle"] == (
        "system.ClassificationMetrics"
    )


def test_gke_gpu(tmp_path):
    spec, platform = compile_with(tmp_path, lambda t: acc.use_gke_gpu(t, "nvidia-h100-80gb", 2))
    accelerator = train_container(spec)["resources"]["accelerator"]
    assert (accelerator["resourceType"], accelerator["resourceCount"]) == ("nvidia.com/gpu", "2")
    assert platform["nodeSelector"]["labels"] == {
        "cloud.google.com/gke-accelerator": "nvidia-h100-80gb"
    }
    assert platform["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    # the GPU build of the train image; evaluate, on no GPU, keeps the CPU image
    assert train_container(spec)["image"] == images.image("train-gpu")
    evaluate_container = spec["deploymentSpec"]["executors"]["exec-evaluate"]["container"]
    assert evaluate_container["image"] == images.image("train")


def test_gke_tpu(tmp_path):
    spec, platform = compile_with(
        tmp_path, lambda t: acc.use_gke_tpu(t, "tpu-v5-lite-podslice", "2x4")
    )
    accelerator = train_container(spec)["resources"]["accelerator"]
    assert (accelerator["resourceType"], accelerator["resourceCount"]) == ("google.com/tpu", "8")
    assert platform["nodeSelector"]["labels"] == {
        "cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice",
        "cloud.google.com/gke-tpu-topology": "2x4",
    }
    assert platform["tolerations"][0]["key"] == "google.com/tpu"
    assert train_container(spec)["image"] == images.image("train")  # no TPU build shipped


def test_any_kubernetes_gpu(tmp_path):
    spec, platform = compile_with(
        tmp_path, lambda t: acc.use_nvidia_gpu(t, 1, {"gpu-pool": "true"})
    )
    assert train_container(spec)["resources"]["accelerator"]["resourceCount"] == "1"
    assert platform["nodeSelector"]["labels"] == {"gpu-pool": "true"}


def test_vertex_accelerator(tmp_path):
    spec, platform = compile_with(
        tmp_path, lambda t: acc.use_vertex_accelerator(t, "NVIDIA_TESLA_T4", 1)
    )
    accelerator = train_container(spec)["resources"]["accelerator"]
    assert (accelerator["resourceType"], accelerator["resourceCount"]) == ("NVIDIA_TESLA_T4", "1")
    assert platform == {}  # Vertex reads the accelerator from the pipeline spec only
    assert train_container(spec)["image"] == images.image("train-gpu")


@pytest.mark.parametrize(
    ("configure", "message"),
    [
        (
            lambda t: acc.use_gke_gpu(t, "nvidia-tesla-k80"),
            "Unknown GKE GPU type 'nvidia-tesla-k80'",
        ),
        (lambda t: acc.use_gke_gpu(t, "nvidia-l4", 0), r"count must be an integer in \[1, 16\]"),
        (lambda t: acc.use_gke_tpu(t, "tpu-v9"), "Unknown GKE TPU type 'tpu-v9'; known: tpu-v4"),
        (lambda t: acc.use_gke_tpu(t, "tpu-v5p-slice", "4x4x4"), "multi-host slices"),
        (lambda t: acc.use_gke_tpu(t, "tpu-v6e-slice", "2by2"), "topology must look like"),
        (lambda t: acc.use_vertex_accelerator(t, "nvidia-l4"), "known: NVIDIA_TESLA_T4"),
    ],
)
def test_bad_accelerators_name_the_value(tmp_path, configure, message):
    with pytest.raises(ValueError, match=message):
        compile_with(tmp_path, configure)


def test_classification_metadata_matches_kfp():
    labels = np.array([1, 0, 1, 1, 0, 0], dtype=float)
    scores = np.array([0.9, 0.6, 0.4, 0.7, 0.2, 0.55])
    ours = {
        "confusionMatrix": eval_metrics.confusion_matrix(labels, scores),
        "confidenceMetrics": eval_metrics.roc_curve(labels, scores),
    }
    theirs = dsl.ClassificationMetrics(name="m", uri="", metadata={})
    theirs.log_confusion_matrix(
        ["0", "1"],
        [[r["row"][0], r["row"][1]] for r in ours["confusionMatrix"]["rows"]],
    )
    points = ours["confidenceMetrics"]
    theirs.log_roc_curve(
        fpr=[p["falsePositiveRate"] for p in points],
        tpr=[p["recall"] for p in points],
        threshold=[p["confidenceThreshold"] for p in points],
    )
    assert theirs.metadata == ours
