"""Per-target settings (kfpkit.targets): one pipeline, compiled for local, Kubeflow, Vertex AI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kfp import compiler

from kfpkit import images, targets
from kfpkit.compile import compile_all, compile_target, load_pipeline

DIGEST = "sha256:" + "0123456789abcdef" * 4


def _settings(tmp_path: Path, text: str) -> targets.Settings:
    path = tmp_path / "targets.yaml"
    path.write_text(text)
    return targets.load(path)


def _compiled(tmp_path: Path, target: targets.Target) -> tuple[dict, dict | None]:
    """The pipeline spec and (if any) the Kubernetes platform spec of training for target."""
    (path,) = [p for p in compile_target(tmp_path / "out", target) if p.name == "training.yaml"]
    docs = list(yaml.safe_load_all(path.read_text()))
    return docs[0], (docs[1] if len(docs) > 1 else None)


def _executor(spec: dict, name: str) -> dict:
    return spec["deploymentSpec"]["executors"][f"exec-{name}"]["container"]


def _task(spec: dict, name: str) -> dict:
    """A task of the pipeline, in whichever DAG (exit handler, condition) holds it."""
    dags = [spec["root"]["dag"], *(c["dag"] for c in spec["components"].values() if "dag" in c)]
    (task,) = [d["tasks"][name] for d in dags if name in d["tasks"]]
    return task


def _default(spec: dict, name: str):
    return spec["root"]["inputDefinitions"]["parameters"][name].get("defaultValue")


def test_builtin_targets():
    settings = targets.load()
    assert list(settings.targets) == ["local", "kubeflow", "vertex"]
    kubeflow = settings.get("kubeflow")
    assert kubeflow.platform == "kubeflow"
    assert kubeflow.parameters["tuning_backend"] == "katib"
    assert kubeflow.parameters["serving_backend"] == "kserve"
    assert settings.get("vertex").platform == "vertex"
    with pytest.raises(ValueError, match="Unknown target 'gke'.*local, kubeflow, vertex"):
        settings.get("gke")


def test_the_local_target_builds_the_pipeline_exactly_as_defined(tmp_path):
    """Rebuilding from the pipeline's function changes nothing a target does not set."""
    compiler.Compiler().compile(load_pipeline("training"), str(tmp_path / "direct.yaml"))
    rebuilt = targets.build(load_pipeline("training"), targets.load().get("local"))
    compiler.Compiler().compile(rebuilt, str(tmp_path / "rebuilt.yaml"))
    assert (tmp_path / "rebuilt.yaml").read_text() == (tmp_path / "direct.yaml").read_text()


def test_a_target_sets_images_accelerators_and_parameter_defaults(tmp_path):
    settings = _settings(
        tmp_path,
        f"""
targets:
  prod:
    base: vertex
    images:
      registry: europe-docker.pkg.dev/p/kfpkit
      tag: v7
      pins: {{core: "127.0.0.1:5000/kfpkit/core@{DIGEST}"}}
    accelerators:
      train: {{kind: vertex, type: NVIDIA_L4, count: 2}}
    parameters:
      serving_model_uri: gs://bucket/models/employment
      tuning_trials: 8
""",
    )
    prod = settings.get("prod")
    assert prod.platform == "vertex"  # from its base
    assert prod.parameters["serving_backend"] == "local"  # the base's, kept
    spec, platform = _compiled(tmp_path, prod)
    train = _executor(spec, "train")
    assert train["image"] == "europe-docker.pkg.dev/p/kfpkit/train-gpu:v7"  # a GPU: its image
    assert train["resources"]["accelerator"]["type"] == "NVIDIA_L4"
    assert str(train["resources"]["accelerator"]["count"]) == "2"
    assert _executor(spec, "bigquery-split")["image"] == f"127.0.0.1:5000/kfpkit/core@{DIGEST}"
    assert _executor(spec, "evaluate")["image"] == "europe-docker.pkg.dev/p/kfpkit/train:v7"
    assert "resources" not in _executor(spec, "evaluate")
    assert _executor(spec, "tfdv-validate-splits")["image"].endswith("/tfdv:v7")
    assert _default(spec, "serving_model_uri") == "gs://bucket/models/employment"
    assert spec["root"]["inputDefinitions"]["parameters"]["serving_model_uri"]["isOptional"]
    assert _default(spec, "tuning_trials") == 8
    assert platform is None  # Vertex: no Kubernetes platform spec
    assert "ghcr.io" not in json.dumps(spec["deploymentSpec"])
    # Katib's trials get the target's train image as a value
    tune = _task(spec, "katib-tune")["inputs"]["parameters"]["trial_image"]
    assert tune["runtimeValue"]["constant"] == "europe-docker.pkg.dev/p/kfpkit/train:v7"


@pytest.mark.parametrize(
    ("accelerator", "resource", "labels"),
    [
        ("{kind: gke_gpu, type: nvidia-l4, count: 1}", "nvidia.com/gpu",
         {"cloud.google.com/gke-accelerator": "nvidia-l4"}),
        ("{kind: nvidia_gpu, count: 2, node_labels: {pool: gpu}}", "nvidia.com/gpu",
         {"pool": "gpu"}),
        ("{kind: gke_tpu, type: tpu-v5-lite-podslice, topology: 2x2}", "google.com/tpu",
         {"cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice",
          "cloud.google.com/gke-tpu-topology": "2x2"}),
    ],
)  # fmt: skip
def test_kubeflow_accelerators_land_in_the_kubernetes_platform_spec(
    tmp_path, accelerator, resource, labels
):
    settings = _settings(
        tmp_path,
        f"targets:\n  gpu:\n    base: kubeflow\n    accelerators:\n      train: {accelerator}\n",
    )
    spec, platform = _compiled(tmp_path, settings.get("gpu"))
    assert _executor(spec, "train")["resources"]["accelerator"]["type"] == resource
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(executors) == {"exec-train"}  # only the step the pipeline configured
    assert executors["exec-train"]["nodeSelector"]["labels"] == labels
    assert executors["exec-train"]["tolerations"][0]["key"] == resource
    assert _default(spec, "tuning_backend") == "katib"  # the base's parameters


def test_compile_writes_every_target_in_its_folder(tmp_path):
    settings = _settings(tmp_path, "targets:\n  local: {}\n  staging: {base: kubeflow}\n")
    written = compile_all(tmp_path / "out", settings, "staging")
    assert tmp_path / "out" / "staging" / "training.yaml" in written
    assert {p.parent for p in written} == {tmp_path / "out" / "staging"}
    written = compile_all(tmp_path / "all", settings)
    assert tmp_path / "all" / "training.yaml" in written
    assert tmp_path / "all" / "components" / "train.yaml" in written


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("target:\n  local: {}\n", "unknown key.*'target'.*known: targets"),
        ("targets: {}\n", "names no targets"),
        ("targets:\n  k: {platform: kubeflow, image: {}}\n", r"targets\.k: unknown key.*'image'"),
        ("targets:\n  k: {platform: gke}\n", "targets.k.platform: 'gke' is not one of"),
        ("targets:\n  Prod: {base: local}\n", "target name 'Prod'"),
        ("targets:\n  k: {base: kubeflow, images: {registy: x}}\n", "unknown key.*'registy'"),
        ("targets:\n  k: {base: kubeflow, images: {registry: 'Bad Registry'}}\n",
         "targets.k.images.registry: 'Bad Registry' is not a valid registry path"),
        ("targets:\n  k: {base: kubeflow, images: {tag: 'a b'}}\n", "images.tag: 'a b'"),
        ("targets:\n  k: {base: kubeflow, images: {pins: {core: 'x y'}}}\n",
         "images.pins.core: 'x y' is not an image reference"),
        ("targets:\n  k: {base: kubeflow, images: {pins: {gpu: 'a/b:1'}}}\n",
         "unknown image family 'gpu'"),
        ("targets:\n  k: {base: kubeflow, accelerators: {train: {kind: gpu}}}\n",
         "accelerators.train.kind: unknown accelerator kind 'gpu'"),
        ("targets:\n  k: {base: kubeflow, accelerators: {train: {kind: gke_gpu, type: t4}}}\n",
         "accelerators.train: Unknown gke_gpu accelerator type 't4'; known: nvidia-tesla-t4"),
        ("targets:\n  k: {base: vertex, accelerators: {train: {kind: vertex, type: T4}}}\n",
         "Unknown vertex accelerator type 'T4'"),
        ("targets:\n  k: {base: vertex, accelerators: {train: {kind: nvidia_gpu}}}\n",
         "'nvidia_gpu' is a kubeflow accelerator, and this target's platform is 'vertex'"),
        ("targets:\n  k: {base: kubeflow, accelerators: {train: {kind: nvidia_gpu, count: 0}}}\n",
         r"count must be an integer in \[1, 16\], not 0"),
        ("targets:\n  k: {base: kubeflow, accelerators: {train: {kind: nvidia_gpu, cnt: 1}}}\n",
         "unknown key.*'cnt'"),
        ("targets:\n  k: {base: kubeflow, accelerators: {train: {kind: gke_tpu, type: v4}}}\n",
         "'topology' is required"),
        ("targets:\n  k: {base: local, accelerators: {train: {kind: nvidia_gpu}}}\n",
         "'nvidia_gpu' is a kubeflow accelerator"),
        ("targets:\n  k: {base: kubeflow, parameters: {serving_backnd: kserve}}\n",
         "'serving_backnd' is no pipeline's parameter"),
        ("targets:\n  k: {base: kubeflow, parameters: {tuning_trials: many}}\n",
         r"parameters.tuning_trials: 'many' is not int, \w+'s type"),
        ("targets:\n  k: {base: kubeflow, parameters: {fail_on_anomalies: 1}}\n",
         "fail_on_anomalies: 1 is not bool"),
        ("targets:\n  a: {base: b}\n  b: {base: a}\n", "base cycle a -> b -> a"),
        ("targets:\n  a: {base: nowhere}\n", "targets.a.base: unknown target 'nowhere'"),
        ("targets:\n  a: {base: kubeflow, images: {lock: missing.json}}\n",
         "missing.json does not exist ..kfpkit images push. writes it"),
        ("targets: [1, 2\n", "is not YAML"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_naming_the_bad_value(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        _settings(tmp_path, text)


def test_a_lock_file_pins_digests_and_the_environment_wins(tmp_path, monkeypatch):
    lock = tmp_path / "pushed.json"
    lock.write_text(json.dumps({"images": {"train": f"reg.example/k/train@{DIGEST}"}}))
    settings = _settings(tmp_path, "targets:\n  k: {base: kubeflow, images: {lock: pushed.json}}\n")
    target = settings.get("k")
    assert target.image("train") == f"reg.example/k/train@{DIGEST}"
    assert target.image("core") == images.image("core")  # not in the lock: the default
    # a pin in the environment (KFPKIT_IMAGE_PINS) wins over the settings
    monkeypatch.setenv("KFPKIT_IMAGE_PINS", json.dumps({"train": "mine/train:dev"}))
    assert target.image("train") == "mine/train:dev"

    lock.write_text(json.dumps({"images": {"train": "reg.example/k/train:0.1.0"}}))
    with pytest.raises(ValueError, match="'reg.example/k/train:0.1.0' is not pinned by digest"):
        _settings(tmp_path, "targets:\n  k: {base: kubeflow, images: {lock: pushed.json}}\n")


def test_accelerators_for_a_step_no_pipeline_configures_write_nothing(tmp_path):
    settings = _settings(
        tmp_path,
        "targets:\n  k:\n    base: kubeflow\n    accelerators:\n"
        "      evaluate: {kind: nvidia_gpu}\n",
    )
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"step\(s\) evaluate, which no pipeline.*: train"):
        compile_all(out, settings, "k")
    assert not out.exists()


def test_configure_does_nothing_outside_a_target_build():
    task = load_pipeline("training")  # any object: untouched, returned
    assert targets.configure(task, "train") is task


def test_cli_compiles_one_target_and_names_an_unknown_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KFPKIT_IMAGE_")}
    run = [sys.executable, "-m", "kfpkit.cli", "compile", "--out", str(tmp_path)]
    proc = subprocess.run([*run, "--target", "kubeflow"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert {p.parent for p in tmp_path.rglob("*.yaml")} == {tmp_path / "kubeflow"}
    root = Path(__file__).resolve().parent.parent
    assert (tmp_path / "kubeflow/training.yaml").read_bytes() == (
        root / "compiled/kubeflow/training.yaml"
    ).read_bytes()
    proc = subprocess.run([*run, "--target", "gke"], capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "Unknown target 'gke'" in proc.stderr


def test_a_target_trains_on_several_workers(tmp_path):
    settings = _settings(
        tmp_path,
        """
targets:
  big:
    base: vertex
    images: {registry: europe-docker.pkg.dev/p/kfpkit, tag: v7}
    distribution:
      train: {workers: 4, machine_type: n1-standard-8, accelerator_type: NVIDIA_TESLA_T4,
              accelerator_count: 1, project: my-project, location: europe-west4}
  one: {base: vertex}
""",
    )
    spec, _ = _compiled(tmp_path / "big", settings.get("big"))
    given = _task(spec, "train")["inputs"]["parameters"]["distribution"]["runtimeValue"]
    assert given["constant"] == {
        "backend": "vertex", "image": "europe-docker.pkg.dev/p/kfpkit/train-gpu:v7", "workers": 4,
        "machine_type": "n1-standard-8", "accelerator_type": "NVIDIA_TESLA_T4",
        "accelerator_count": 1, "project": "my-project", "location": "europe-west4",
    }  # fmt: skip
    spec, _ = _compiled(tmp_path / "one", settings.get("one"))
    assert "distribution" not in _task(spec, "train")["inputs"]["parameters"]  # one machine
    assert targets.distribution("train") == {}  # outside a build


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("targets:\n  l: {base: local, distribution: {train: {workers: 2}}}\n",
         "local runs take no distribution"),
        ("targets:\n  k: {base: kubeflow, distribution: {evaluate: {workers: 2}}}\n",
         "distribution: unknown key.s. 'evaluate'"),
        ("targets:\n  k: {base: kubeflow, distribution: {train: {workers: 1, namespace: t}}}\n",
         "distribution.train: workers must be a whole number >= 2, not 1"),
        ("targets:\n  k: {base: kubeflow, distribution: {train: {workers: 2}}}\n",
         r"distribution.train: distribution: the kubeflow backend needs \['namespace'\]"),
        ("targets:\n  v: {base: vertex, distribution: {train: {workers: 2, gpus: 1}}}\n",
         r"unknown key\(s\) \['gpus'\]"),
        ("targets:\n  v: {base: vertex, distribution: {train: {workers: 2, image: x}}}\n",
         "backend and image come from the target"),
    ],
)  # fmt: skip
def test_bad_distribution_settings_are_refused(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        _settings(tmp_path, text)
