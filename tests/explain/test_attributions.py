"""Attributions on real SavedModels: completeness (the sum is the prediction minus the
baseline's), exact values where the model's formula gives them, the baseline, bad settings."""

from __future__ import annotations

import numpy as np
import pytest

from kfpkit import tabular
from kfpkit.explain import attributions as attr
from kfpkit.explain import baseline as baselines
from kfpkit.testing.serving import candidate_probability

RNG = np.random.default_rng(7)


def numeric_rows(rows: int) -> dict[str, np.ndarray]:
    return {n: RNG.normal(0, 2, rows).astype(np.float32) for n in ("a", "b", "c")}


def test_integrated_gradients_are_complete_and_leave_an_unused_input_at_zero(nonlinear_model):
    model = tabular.ServingModel(str(nonlinear_model))
    features = numeric_rows(300)
    base = baselines.from_arrays(features, model.feature_specs)
    found = attr.attribute(model, features, base, attr.Settings(steps=50))
    assert found.method == attr.INTEGRATED_GRADIENTS
    assert np.abs(found.completeness_gap()).max() < 1e-5
    assert np.abs(found.values[:, found.features.index("c")]).max() == 0.0
    np.testing.assert_allclose(found.predictions, model.predict(features), atol=1e-6)
    # the check can fail: one point (the midpoint) misses the curvature
    coarse = attr.attribute(model, features, base, attr.Settings(steps=1))
    assert np.abs(coarse.completeness_gap()).max() > 1e-3


def test_integrated_gradients_of_a_linear_model_are_weight_times_distance(linear_model):
    model = tabular.ServingModel(str(linear_model))
    features = numeric_rows(50)
    base = {"a": 1.0, "b": -2.0, "c": 0.5}
    found = attr.attribute(model, features, base)
    expected = np.stack([0.1 * (features["a"] - 1.0), -0.05 * (features["b"] + 2.0),
                         np.zeros(50)], axis=1)  # fmt: skip
    np.testing.assert_allclose(found.values, expected, atol=1e-5)
    assert found.baseline_prediction == pytest.approx(0.5 + 0.1 + 0.1, abs=1e-6)


def test_a_missing_numeric_value_gets_no_attribution_and_the_path_stays_complete(linear_model):
    model = tabular.ServingModel(str(linear_model))
    features = {"a": np.array([np.nan, 3.0], np.float32), "b": np.array([1.0, 1.0], np.float32),
                "c": np.array([0.0, 0.0], np.float32)}  # fmt: skip
    found = attr.attribute(model, features, {"a": 1.0, "b": 0.0, "c": 0.0})
    assert found.values[0, 0] == 0.0
    assert np.abs(found.completeness_gap()).max() < 1e-6


def test_sampled_shapley_on_two_features_is_the_exact_shapley_value(mixed_model):
    # with two features, an order and its reverse are all the orders: the estimate is exact
    model = tabular.ServingModel(str(mixed_model))
    age = np.array([20.0, 45.0, 70.0, 60.0], np.float32)
    sex = np.array(["1", "2", "2", "9"], dtype=object)
    base = {"AGEP": 40.0, "SEX": "1"}
    found = attr.attribute(model, {"AGEP": age, "SEX": sex}, base)
    assert found.method == attr.SAMPLED_SHAPLEY
    b_age, b_sex = np.float32(40.0), np.array(["1"] * 4, dtype=object)

    def f(a, s):  # type: ignore[no-untyped-def]
        return candidate_probability(np.broadcast_to(a, (4,)), np.asarray(s)).astype(float)

    age_value = 0.5 * ((f(age, b_sex) - f(b_age, b_sex)) + (f(age, sex) - f(b_age, sex)))
    sex_value = 0.5 * ((f(b_age, sex) - f(b_age, b_sex)) + (f(age, sex) - f(age, b_sex)))
    np.testing.assert_allclose(found.values[:, found.features.index("AGEP")], age_value,
                               atol=1e-6)  # fmt: skip
    np.testing.assert_allclose(found.values[:, found.features.index("SEX")], sex_value,
                               atol=1e-6)  # fmt: skip
    assert np.abs(found.completeness_gap()).max() < 1e-6


def test_sampled_shapley_is_complete_seeded_and_agrees_with_integrated_gradients(
    nonlinear_model,
):
    model = tabular.ServingModel(str(nonlinear_model))
    features = numeric_rows(200)
    base = baselines.from_arrays(features, model.feature_specs)
    shapley = attr.attribute(model, features, base, attr.Settings(method="sampled_shapley"))
    assert np.abs(shapley.completeness_gap()).max() < 1e-6
    again = attr.attribute(model, features, base, attr.Settings(method="sampled_shapley"))
    np.testing.assert_array_equal(shapley.values, again.values)
    other_seed = attr.attribute(model, features, base,
                                attr.Settings(method="sampled_shapley", seed=1))  # fmt: skip
    assert not np.array_equal(shapley.values, other_seed.values)
    gradients = attr.attribute(model, features, base)
    # two methods, one model: the same ranking of global importance (c: nothing)
    assert list(shapley.importance()) == list(gradients.importance())
    assert shapley.importance()["c"] < 1e-6  # float32 rounding between batches


def test_importance_is_the_mean_absolute_attribution_largest_first(mixed_model):
    model = tabular.ServingModel(str(mixed_model))
    features = {"AGEP": np.array([20.0, 80.0, 45.0], np.float32),
                "SEX": np.array(["2", "2", "1"], dtype=object)}  # fmt: skip
    found = attr.attribute(model, features, {"AGEP": 45.0, "SEX": "1"})
    importance = found.importance()
    assert importance == {
        name: float(np.abs(found.values[:, found.features.index(name)]).mean())
        for name in importance
    }
    assert list(importance.values()) == sorted(importance.values(), reverse=True)
    assert found.importance(np.array([False, False, True])) == {"AGEP": 0.0, "SEX": 0.0}


def test_integrated_gradients_refuse_string_inputs_by_name(mixed_model):
    model = tabular.ServingModel(str(mixed_model))
    with pytest.raises(ValueError, match=r"\['SEX'\] are strings"):
        attr.attribute(
            model,
            {"AGEP": np.zeros(1, np.float32), "SEX": np.array(["1"], object)},
            {"AGEP": 0.0, "SEX": "1"},
            attr.Settings(method="integrated_gradients"),
        )


@pytest.mark.parametrize(("settings", "message"), [
    ({"method": "shap"}, "not one of"),
    ({"steps": 0}, "steps must be a whole number >= 1"),
    ({"paths": 1.5}, "paths must be"),
])  # fmt: skip
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        attr.Settings(**settings)


def test_the_baseline_is_the_median_and_the_most_frequent_category():
    specs = [tabular.FeatureSpec("x", tabular.NUMERIC), tabular.FeatureSpec("s", "categorical")]
    features = {"x": np.array([1.0, np.nan, 3.0, 10.0], np.float32),
                "s": np.array(["b", "", "a", "b"], dtype=object)}  # fmt: skip
    assert baselines.from_arrays(features, specs) == {"x": 3.0, "s": "b"}
    with pytest.raises(ValueError, match="'s' has no values"):
        baselines.from_arrays({"x": features["x"], "s": np.array(["", ""], object)}, specs)
    with pytest.raises(ValueError, match=r"lacks feature\(s\) \['s'\]"):
        baselines.check({"x": 1.0}, specs, "test")
    with pytest.raises(ValueError, match="'x' must be a finite number"):
        baselines.check({"x": "1", "s": "a"}, specs, "test")
