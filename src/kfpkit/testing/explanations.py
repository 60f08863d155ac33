"""evaluate's attribution summary (``explanation.json``), trimmed to what Vertex AI's
explanationSpec is built from (:mod:`kfpkit.explain.vertex`): one sample for the tests of the
spec, of the Vertex AI registry and of register_model."""

SUMMARY = {
    "method": "sampled_shapley",
    "steps": None,
    "paths": 10,
    "rows": 1000,
    "features": [{"name": "AGEP", "kind": "numeric"}, {"name": "SEX", "kind": "categorical"}],
    "output": "output_0",
    "baseline": {"AGEP": 42.0, "SEX": "1"},
}
