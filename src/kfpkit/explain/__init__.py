"""Feature attributions of a served model: why it gave a row its probability.

Shared by ``evaluate`` (global importance, overall and per slice), ``kfpkit serve`` (KServe's
V1 ``:explain``) and ``register_model`` (Vertex AI's ``explanationSpec``), so all three
explain the same thing the same way: the SavedModel's ``serving_default`` signature on raw
features, against one baseline row.

- :mod:`kfpkit.explain.attributions`: integrated gradients (models whose inputs are all
  numeric) and sampled Shapley (any inputs: the demo's categorical strings have no gradient),
  both complete: a row's attributions sum to its prediction minus the baseline's.
- :mod:`kfpkit.explain.baseline`: the baseline row (numeric median, most frequent category).
- :mod:`kfpkit.explain.vertex`: the same method and baseline as Vertex AI's explanation spec.

No module here imports TensorFlow: the model is a :class:`kfpkit.tabular.ServingModel` the
caller loaded (train image); the core image uses the baseline and Vertex parts only.
"""
