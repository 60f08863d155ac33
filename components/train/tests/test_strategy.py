"""The distribution strategy is a pure function of the devices found."""

import json

import pytest

from kfpkit.training import strategy as s


@pytest.mark.parametrize(
    ("devices", "mixed", "name", "policy"),
    [
        (s.Devices(), False, s.CPU, "float32"),
        (s.Devices(), True, s.CPU, "float32"),  # declined on CPU
        (s.Devices(gpus=1), False, s.ONE_GPU, "float32"),
        (s.Devices(gpus=1), True, s.ONE_GPU, "mixed_float16"),
        (s.Devices(gpus=8), True, s.MIRRORED, "mixed_float16"),
        (s.Devices(gpus=2, workers=3), False, s.MULTI_WORKER, "float32"),
        (s.Devices(workers=2), True, s.MULTI_WORKER, "float32"),
        (s.Devices(tpu=True, gpus=0, workers=4), True, s.TPU, "mixed_bfloat16"),
    ],
)
def test_choice_follows_the_hardware(devices, mixed, name, policy):
    choice = s.choose_strategy(devices, mixed_precision=mixed)
    assert (choice.name, choice.precision_policy) == (name, policy)
    assert ("declined" in choice.note) == (mixed and policy == "float32")


def test_tf_config_workers_and_chief():
    cluster = {"chief": ["c:1"], "worker": ["w0:1", "w1:1"]}
    assert s.workers_in(None) == (1, True)
    assert s.workers_in(json.dumps({"cluster": cluster, "task": {"type": "chief"}})) == (3, True)
    worker0 = {"cluster": cluster, "task": {"type": "worker", "index": 0}}
    assert s.workers_in(json.dumps(worker0)) == (3, False)
    no_chief = {"cluster": {"worker": ["w0:1", "w1:1"]}, "task": {"type": "worker", "index": 0}}
    assert s.workers_in(json.dumps(no_chief)) == (2, True)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        s.workers_in("{not json")


def test_no_tpu_probe_without_a_hint(monkeypatch):
    for var in ("TPU_NAME", "TPU_WORKER_HOSTNAMES", "KUBE_GOOGLE_CLOUD_TPU_ENDPOINTS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    devices, resolver = s.detect_devices()
    assert resolver is None and devices == s.Devices()  # this test machine has no GPU
