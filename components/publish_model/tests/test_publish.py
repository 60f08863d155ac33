"""publish_model on a real filesystem: versions, atomic rename, resume, bad inputs."""

from __future__ import annotations

import json
import os

import pytest

from kfpkit import testing
from kfpkit.components.publish_model import launcher
from kfpkit.components.publish_model.publisher import SOURCE_RECORD, publish
from kfpkit.runtime import executor
from kfpkit.runtime.model_versions import versions


def make_model(path, version=1, payload=b"graph"):
    folder = path / str(version)
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(payload)
    (folder / "variables" / "variables.index").write_bytes(b"idx")
    return path


def test_publishes_the_latest_version_as_the_next_number(tmp_path):
    model = make_model(tmp_path / "model", 1)
    make_model(model, 3, b"newest")
    serving = tmp_path / "serving"
    make_model(serving, 7, b"in production")
    done = publish("gs://b/run1/model", str(model), str(serving))
    assert (done.version, done.reused) == (8, False)
    assert (serving / "8" / "saved_model.pb").read_bytes() == b"newest"
    assert (serving / "8" / "variables" / "variables.index").exists()
    assert json.loads((serving / "8" / SOURCE_RECORD).read_text()) == {
        "source": "gs://b/run1/model/3"
    }
    assert versions(str(serving)) == [7, 8]
    assert [n for n in os.listdir(serving) if n.startswith(".")] == []  # no temporary left


def test_a_restart_finds_its_own_publication(tmp_path):
    model = make_model(tmp_path / "model")
    first = publish("gs://b/run1/model", str(model), str(tmp_path / "serving"))
    again = publish("gs://b/run1/model", str(model), str(tmp_path / "serving"))
    assert (first.version, first.reused) == (1, False)
    assert (again.version, again.reused) == (1, True)
    other = publish("gs://b/run2/model", str(model), str(tmp_path / "serving"))
    assert (other.version, other.reused) == (2, False)


@pytest.mark.parametrize(
    "setup, message",
    [(lambda p: (p / "model").mkdir(), "no <version>/saved_model.pb"),
     (lambda p: make_model(p / "model") and (p / "serving").write_text("x"), "not a directory")],
)  # fmt: skip
def test_bad_inputs_are_named(tmp_path, setup, message):
    setup(tmp_path)
    with pytest.raises(ValueError, match=message):
        publish("m", str(tmp_path / "model"), str(tmp_path / "serving"))


def run(tmp_path, destination, model_metadata=None):
    doc = testing.executor_input(
        tmp_path / "out", {"destination": destination}, {"published_model": "system.Model"},
        inputs={"model": ("system.Model", str(tmp_path / "model"))},
        output_params=["published_uri"],
        input_metadata={"model": model_metadata or {}},
    )  # fmt: skip
    return executor.launch(launcher.run, ["--executor_input", json.dumps(doc)])


def test_launcher_outputs_the_published_uri(tmp_path):
    make_model(tmp_path / "model", 2)
    assert run(tmp_path, str(tmp_path / "serving")) == 0
    out = json.loads((tmp_path / "out" / "executor_output.json").read_text())
    assert out["parameterValues"]["published_uri"] == str(tmp_path / "serving" / "1")
    meta = out["artifacts"]["published_model"]["artifacts"][0]["metadata"]
    assert meta["version"] == 1 and meta["reused"] is False
    assert "hyperparameters" not in meta


def test_the_models_hyperparameters_travel_on_for_the_registrys_lineage(tmp_path):
    make_model(tmp_path / "model", 2)
    hyperparameters = {"learning_rate": 0.002, "hidden_units": [128, 64]}
    assert run(tmp_path, str(tmp_path / "serving"), {"hyperparameters": hyperparameters}) == 0
    out = json.loads((tmp_path / "out" / "executor_output.json").read_text())
    meta = out["artifacts"]["published_model"]["artifacts"][0]["metadata"]
    assert meta["hyperparameters"] == hyperparameters


def test_launcher_refuses_an_empty_destination(tmp_path):
    make_model(tmp_path / "model")
    assert run(tmp_path, "") == executor.EXIT_USER_ERROR
    assert not (tmp_path / "out" / "executor_output.json").exists()
