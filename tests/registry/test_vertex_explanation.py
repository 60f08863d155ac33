"""Vertex AI's explanationSpec from evaluate's attribution summary (kfpkit.explain.vertex): the
upload carries it as google-cloud-aiplatform sends it, and the stand-in applies Vertex's rules
(register_model's launcher passing it through: components/register_model/tests)."""

from __future__ import annotations

import json

import pytest

from kfpkit.explain.vertex import explanation_spec
from kfpkit.registry import CHAMPION, open_registry
from kfpkit.testing.explanations import SUMMARY
from kfpkit.testing.registry_servers import VertexModelServer


@pytest.fixture()
def server():
    with VertexModelServer() as s:
        yield s


def vertex(server):
    return open_registry("vertex", project="kfpkit-test", location="us-central1",
                         api_endpoint=server.url)  # fmt: skip


def test_the_spec_names_every_input_with_its_baseline_and_the_one_output():
    spec = explanation_spec(SUMMARY)
    assert spec["parameters"] == {"sampledShapleyAttribution": {"pathCount": 10}}
    assert spec["metadata"] == {
        "inputs": {
            "AGEP": {"inputTensorName": "AGEP", "modality": "numeric", "inputBaselines": [42.0]},
            "SEX": {"inputTensorName": "SEX", "modality": "categorical", "inputBaselines": ["1"]},
        },
        "outputs": {"output_0": {"outputTensorName": "output_0"}},
    }
    gradients = explanation_spec({**SUMMARY, "method": "integrated_gradients", "steps": 50})
    assert gradients["parameters"] == {"integratedGradientsAttribution": {"stepCount": 50}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rows": 0}, "no attributions were computed"),
        ({"paths": 60}, "1-50 Shapley paths, not 60"),
        ({"method": "integrated_gradients", "steps": 150}, "1-100 integrated gradients steps"),
        ({"method": "xrai"}, "unknown attribution method 'xrai'"),
    ],
)
def test_a_summary_vertex_would_refuse_is_refused_here(change, message):
    with pytest.raises(ValueError, match=message):
        explanation_spec({**SUMMARY, **change}, "explanation")


def test_the_upload_carries_the_spec_as_google_cloud_aiplatform_sends_it(server):
    aiplatform = pytest.importorskip("google.cloud.aiplatform")
    from google.auth.credentials import AnonymousCredentials

    registry = vertex(server)
    registry.explanation_spec = explanation_spec(SUMMARY)
    registry.register("employment", "gs://b/m/1", {}, {"auc": 0.9}, [CHAMPION])
    (ours,) = [r.body for r in server.calls("POST", r"models:upload$")]
    assert ours["model"]["explanationSpec"] == registry.explanation_spec

    saved = dict(vars(aiplatform.initializer.global_config))  # aiplatform.init is process-wide
    try:
        with VertexModelServer() as reference:
            aiplatform.init(project="kfpkit-test", location="us-central1",
                            api_endpoint=reference.url, api_transport="rest",
                            credentials=AnonymousCredentials())  # fmt: skip
            spec, model = ours["model"]["explanationSpec"], ours["model"]
            aiplatform.Model.upload(
                display_name=model["displayName"],
                model_id="employment",
                is_default_version=True,
                version_aliases=[CHAMPION],
                version_description=model["versionDescription"],
                artifact_uri=model["artifactUri"],
                serving_container_image_uri=model["containerSpec"]["imageUri"],
                explanation_metadata=aiplatform.explain.ExplanationMetadata.from_json(
                    json.dumps(spec["metadata"])
                ),
                explanation_parameters=aiplatform.explain.ExplanationParameters.from_json(
                    json.dumps(spec["parameters"])
                ),
                sync=True,
            )
            (theirs,) = [r.body for r in reference.calls("POST", r"models:upload$")]
    finally:
        vars(aiplatform.initializer.global_config).clear()
        vars(aiplatform.initializer.global_config).update(saved)
    assert ours["model"]["explanationSpec"] == theirs["model"]["explanationSpec"]


def test_the_stand_in_refuses_a_spec_vertex_refuses(server):
    registry = vertex(server)
    registry.explanation_spec = {
        "parameters": {"sampledShapleyAttribution": {"pathCount": 99}},
        "metadata": {"inputs": {"a": {}}, "outputs": {"p": {}}},
    }
    with pytest.raises(ValueError, match=r"pathCount must be in \[1, 50\]"):
        registry.register("employment", "gs://b/m/1", {}, {}, [CHAMPION])
