"""The routing policies, without a server: proportions, stickiness, the split's hash, the bandit
under simulated feedback, bad weights and the saved state."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from kfpkit.serving import routing
from kfpkit.serving.routing import Router, assign_variant
from kfpkit.splitting import farmhash, keys


def splits_of(keys_: list[str], ratios: dict[str, float]) -> list[str]:
    """The split bigquery_split (and the embedded engine) puts a row of each key in."""
    ranges = keys.split_ranges(ratios)
    bucket = keys.buckets(farmhash.fingerprint64(pa.array(keys_, type=pa.string())))
    return [ranges[int(i)].name for i in keys.split_index(bucket, ranges)]


def share_is(count: int, total: int, p: float) -> bool:
    """Within 5 standard deviations of the binomial mean: a correct router fails about once in
    two million tests (scipy is not in the serving image family's environment)."""
    return abs(count - total * p) <= 5 * (total * p * (1 - p)) ** 0.5


def test_assignment_is_the_split_of_bigquery_split_for_the_same_key_and_ratios():
    units = [f"user-{i}" for i in range(2000)] + ["", "한국어", "a,b", "x" * 100]
    expected = splits_of(units, {"a": 0.25, "b": 0.75})
    assert [assign_variant(u, ["a", "b"], [1, 3]) for u in units] == expected
    assert routing.assign_variants(units, ["a", "b"], [1, 3]) == [
        assign_variant(u, ["a", "b"], [1, 3]) for u in units
    ]


def test_salted_key_is_the_two_column_key_salt_and_unit():
    salted = [f"model-x{keys.KEY_SEPARATOR}{i}" for i in range(300)]
    assert [assign_variant(i, ["a", "b"], [1, 1], salt="model-x") for i in range(300)] == (
        splits_of(salted, {"a": 0.5, "b": 0.5})
    )


def test_unit_values_hash_as_bigquery_casts_them_to_string():
    assert routing.unit_key(42) == routing.unit_key(42.0) == routing.unit_key("42") == "42"
    assert routing.unit_key(True) == "true"
    for bad in (1.5, float("nan"), None, [1], {"a": 1}):
        with pytest.raises(ValueError, match="unit value"):
            routing.unit_key(bad)


def test_fixed_weights_give_their_proportions():
    router = Router(["a", "b", "c"], [1, 3, 0], "fixed", seed=1)
    chosen = [router.choose() for _ in range(20_000)]
    assert chosen.count("c") == 0  # weight 0: no traffic
    assert share_is(chosen.count("a"), 20_000, 0.25)
    assert router.arms["a"].requests == chosen.count("a")


def test_ab_is_sticky_reproducible_offline_and_splits_units_by_weight():
    first = Router(["control", "treatment"], [0.9, 0.1], "ab", salt="employment", seed=1)
    second = Router(["control", "treatment"], [0.9, 0.1], "ab", salt="employment", seed=2)
    units = [f"u{i}" for i in range(20_000)]
    seen = [first.choose(u) for u in units]
    assert seen == [first.choose(u) for u in units] == [second.choose(u) for u in units]
    assert seen == [
        assign_variant(u, ["control", "treatment"], [0.9, 0.1], salt="employment") for u in units
    ]
    assert share_is(seen.count("treatment"), len(units), 0.1)
    other_salt = Router(["control", "treatment"], [0.9, 0.1], "ab", salt="other")
    moved = sum(a != other_salt.choose(u) for a, u in zip(seen, units, strict=True))
    assert moved > 1000  # another experiment reshuffles its users independently
    with pytest.raises(ValueError, match="unit value None"):
        first.choose(None)


@pytest.mark.parametrize("bandit", ["thompson", "epsilon-greedy"])
def test_bandit_without_feedback_starves_no_variant(bandit):
    router = Router(["a", "b", "c"], [1, 1, 1], "bandit", bandit=bandit, seed=3)
    chosen = [router.choose() for _ in range(3000)]
    for name in "abc":
        assert share_is(chosen.count(name), 3000, 1 / 3), (name, chosen.count(name))
    assert router.traffic_shares() == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, abs=0.03)


@pytest.mark.parametrize("bandit", ["thompson", "epsilon-greedy"])
def test_bandit_moves_traffic_to_the_better_variant_and_keeps_the_floor(bandit):
    success = {"good": 0.8, "bad": 0.4}
    router = Router(["good", "bad"], [1, 1], "bandit", bandit=bandit, epsilon=0.1, floor=0.05,
                    seed=4)  # fmt: skip
    rng = np.random.default_rng(5)
    late = []
    for i in range(4000):
        name = router.choose()
        router.reward(name, float(rng.random() < success[name]))
        if i >= 3000:
            late.append(name)
    bad_share = late.count("bad") / len(late)
    floor = 0.05 if bandit == "epsilon-greedy" else 0.05  # epsilon / 2 and floor: both 5 %
    assert bad_share < 0.2, bad_share
    assert share_is(late.count("bad"), len(late), floor) or bad_share > floor
    shares = router.traffic_shares()
    assert shares["good"] > 0.8 and shares["bad"] >= floor - 1e-9
    assert router.arms["bad"].feedback + router.arms["good"].feedback == 4000


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([0, 0], r"sum to 0.0: they must sum to a positive number"),
        ([1, -1], r"weight of variant 'b' must be a finite number >= 0, got -1"),
        ([1, float("nan")], r"weight of variant 'b'"),
        ([1, float("inf")], r"weight of variant 'b'"),
    ],
)
def test_weights_that_do_not_sum_to_a_positive_number_are_refused_by_name(weights, message):
    with pytest.raises(ValueError, match=message):
        Router(["a", "b"], weights, "fixed")
    with pytest.raises(ValueError, match=message):
        assign_variant("u", ["a", "b"], weights)


def test_bad_policy_settings_are_refused():
    with pytest.raises(ValueError, match="routing policy 'random'"):
        Router(["a"], [1], "random")
    with pytest.raises(ValueError, match="bandit 'ucb'"):
        Router(["a"], [1], "bandit", bandit="ucb")
    with pytest.raises(ValueError, match="--epsilon must be in"):
        Router(["a", "b"], [1, 1], "bandit", epsilon=1.5)
    with pytest.raises(ValueError, match="floor x variants"):
        Router(["a", "b", "c"], [1, 1, 1], "bandit", floor=0.5)
    with pytest.raises(ValueError, match="reward must be in"):
        Router(["a"], [1], "bandit").reward("a", 2.0)


def test_variant_flags_parse_name_folder_and_weight():
    assert routing.parse_variant("a=/m/x:3") == routing.VariantSpec("a", "/m/x", 3.0)
    assert routing.parse_variant("b=/m/x") == routing.VariantSpec("b", "/m/x", 1.0)
    assert routing.parse_variant("c=/m/with:colon") == routing.VariantSpec("c", "/m/with:colon")
    for bad, message in (("noequals", "expected NAME=MODEL_DIR"), ("a=", "expected NAME"),
                         ("bad name=/m", "variant name 'bad name'")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            routing.parse_variant(bad)
    with pytest.raises(ValueError, match=r"variant name\(s\) \['a'\] given more than once"):
        routing.check_variants([routing.VariantSpec("a", "/x"), routing.VariantSpec("a", "/y")])


def test_state_round_trip_and_a_state_of_other_variants_is_refused():
    router = Router(["a", "b"], [1, 1], "bandit", seed=1)
    for _ in range(50):
        router.reward(router.choose(), 1.0)
    state = router.state()
    again = Router(["b", "a"], [1, 1], "bandit")
    again.restore(state)
    counts = ("requests", "feedback", "successes", "failures")
    for name in ("a", "b"):
        restored = again.state()["arms"][name]
        assert [restored[c] for c in counts] == [state["arms"][name][c] for c in counts]
    assert again.arms["a"].feedback + again.arms["b"].feedback == 50
    with pytest.raises(ValueError, match=r"variants \['a', 'b'\], but this server serves "
                                         r"\['a', 'c'\]"):  # fmt: skip
        Router(["a", "c"], [1, 1], "bandit").restore(state, "policy.json")
    with pytest.raises(ValueError, match="not a kfpkit routing state"):
        again.restore({"format": 1, "variants": ["a"]})


def test_one_unit_and_a_column_of_units_hash_alike():
    units = [f"u{i}" for i in range(500)] + ["", "é" * 40, "x" * 200]
    one_by_one = [routing._fingerprint_one(u) for u in units]
    assert one_by_one == farmhash.fingerprint64(pa.array(units)).tolist()
