"""kfpkit.hyperparameters: the trainer's hyperparameters, parsed and checked without TensorFlow
(the train and katib_tune components both use it)."""

from __future__ import annotations

import json
import sys

import pytest

from kfpkit.hyperparameters import (
    KEYS,
    Hyperparameters,
    hyperparameters_dict,
    parse_hyperparameters,
)


def test_hyperparameters_defaults_json_text_and_tuner_text():
    assert parse_hyperparameters(None) == Hyperparameters()
    hp = parse_hyperparameters(
        json.dumps({"learning_rate": "0.01", "hidden_units": "128,64", "epochs": 3.0})
    )
    assert (hp.learning_rate, hp.hidden_units, hp.epochs) == (0.01, (128, 64), 3)
    assert parse_hyperparameters({"hidden_units": "[8]"}).hidden_units == (8,)
    assert parse_hyperparameters({"hidden_units": []}).hidden_units == ()
    assert parse_hyperparameters({"early_stopping_min_delta": "0"}).early_stopping_min_delta == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{learning_rate: 1", "hyperparameters is not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ({"learning_rate": 0.1, "momentum": 0.9}, r"unknown key\(s\) \['momentum'\]"),
        ({"learning_rate": 0}, r"'learning_rate'\] = 0 is out of range \(0, 10\]"),
        ({"learning_rate": -1e-3}, "'learning_rate'"),
        ({"dropout": 1.0}, r"'dropout'\] = 1.0 is out of range"),
        ({"batch_size": 0}, r"'batch_size'\] = 0 is out of range"),
        ({"epochs": 0}, r"'epochs'\] = 0"),
        ({"early_stopping_min_delta": -0.001}, r"'early_stopping_min_delta'\] = -0.001 is out"),
        ({"epochs": 2.5}, "must be a whole number, not 2.5"),
        ({"batch_size": True}, "must be a number, not True"),
        ({"learning_rate": "fast"}, "must be a number, not 'fast'"),
        ({"learning_rate": "nan"}, "must be finite"),
        ({"hidden_units": [64, 0]}, "hidden_units"),
        ({"hidden_units": "[64,"}, "hidden_units"),
    ],
)
def test_bad_hyperparameters_name_the_value(value, message):
    with pytest.raises(ValueError, match=message):
        parse_hyperparameters(value)


def test_every_problem_is_named_at_once():
    with pytest.raises(ValueError) as e:
        parse_hyperparameters({"learning_rate": -1, "bogus": 3, "epochs": 0})
    message = str(e.value)
    assert "unknown key(s) ['bogus']" in message
    assert "hyperparameters['learning_rate'] = -1 is out of range (0, 10]" in message
    assert "hyperparameters['epochs'] = 0 is out of range" in message


def test_round_trip_and_no_tensorflow():
    hp = parse_hyperparameters({"hidden_units": "128,64", "learning_rate": "0.01"})
    assert parse_hyperparameters(hyperparameters_dict(hp)) == hp
    assert set(hyperparameters_dict(hp)) == set(KEYS)
    assert "tensorflow" not in sys.modules
