"""Every pipeline compiles, compiled/ is current, component YAML loads, images are configurable."""

import difflib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kfp import compiler, components, dsl

from kfpkit import images

ROOT = Path(__file__).resolve().parent.parent


def _compile_fresh(out: Path, *args: str) -> None:
    """``kfpkit compile`` in a fresh process without image overrides: compiled/ names the
    default images, whatever registry this machine is set up for (component images are fixed
    when kfpkit is imported)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KFPKIT_IMAGE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "kfpkit.cli", "compile", "--out", str(out), *args],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr


def _same_bytes(expected: Path, actual: Path, hint: str) -> None:
    if expected.read_bytes() == actual.read_bytes():
        return
    diff = difflib.unified_diff(
        expected.read_text().splitlines(), actual.read_text().splitlines(),
        str(expected), str(actual), lineterm="", n=2,
    )  # fmt: skip
    head = "\n".join(list(diff)[:40])
    pytest.fail(f"{expected} differs from a fresh compile: {hint}\n{head}", pytrace=False)


def _yaml_files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*.yaml")}


def test_compiled_is_current(tmp_path):
    """Golden files: every pipeline for every built-in target, and every component."""
    _compile_fresh(tmp_path)
    compiled = ROOT / "compiled"
    missing = sorted(map(str, _yaml_files(tmp_path) - _yaml_files(compiled)))
    extra = sorted(map(str, _yaml_files(compiled) - _yaml_files(tmp_path)))
    assert not missing and not extra, (
        f"compiled/ lacks {missing} and has {extra} that compile no longer writes: "
        "run `make compile`"
    )
    for rel in sorted(_yaml_files(tmp_path)):
        _same_bytes(compiled / rel, tmp_path / rel, "run `make compile` (and review the diff)")
    # the layout the README promises: local at the top, the other targets in folders
    assert {"training.yaml", "kubeflow/training.yaml", "vertex/training.yaml"} <= set(
        map(str, _yaml_files(compiled))
    )


def test_compile_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):  # separate processes: protobuf map order differs between processes
        _compile_fresh(out)
    assert _yaml_files(a) == _yaml_files(b)
    for rel in sorted(_yaml_files(a)):
        _same_bytes(a / rel, b / rel, "two compiles of the same code differ (nondeterminism)")


def test_standalone_component_yaml_loads_and_composes(tmp_path):
    split = components.load_component_from_file(
        str(ROOT / "compiled/components/bigquery_split.yaml")
    )

    @dsl.pipeline(name="user-pipeline")
    def user_pipeline(table: str):
        split(source_table=table, key_columns=["id"], destination_dataset="out", project="p1")

    compiler.Compiler().compile(user_pipeline, str(tmp_path / "p.yaml"))
    text = (tmp_path / "p.yaml").read_text()
    assert "kfpkit.components.bigquery_split.launcher" in text and "{{$}}" in text


def _compile_with_env(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kfpkit.cli", "compile", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )


def test_image_registry_and_tag_are_configurable(tmp_path):
    proc = _compile_with_env(
        tmp_path, KFPKIT_IMAGE_REGISTRY="registry.internal:5000/ml", KFPKIT_IMAGE_TAG="v9"
    )
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "training.yaml").read_text()
    assert "image: registry.internal:5000/ml/core:v9" in text and "ghcr.io" not in text


def test_bad_image_registry_is_refused(tmp_path):
    proc = _compile_with_env(tmp_path, KFPKIT_IMAGE_REGISTRY="evil registry; rm -rf /")
    assert proc.returncode != 0 and "KFPKIT_IMAGE_REGISTRY" in proc.stderr


@pytest.mark.slow
def test_oldest_supported_kfp_compiles_every_pipeline(tmp_path):
    """The bottom of the kfp range (make compat: kfp 2.7.0 in its own venv) compiles too,
    accelerators of both platforms included (kfp-kubernetes 1.2.0 for Kubeflow's)."""
    proc = subprocess.run(["make", "-s", "compat"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    oldest = next((ROOT / "build").glob("compiled-kfp-2.7.0"))
    for name in ("training.yaml", "kubeflow/training.yaml", "components/bigquery_split.yaml"):
        text = (oldest / name).read_text()
        assert "sdkVersion: kfp-2.7.0" in text
        assert "kfpkit.components.bigquery_split.launcher" in text
    (tmp_path / "gpus.yaml").write_text(
        "targets:\n"
        "  gke: {base: kubeflow, accelerators: {train: {kind: gke_gpu, type: nvidia-l4}}}\n"
        "  vx: {base: vertex, accelerators: {train: {kind: vertex, type: NVIDIA_L4}}}\n"
    )
    proc = subprocess.run(
        [str(ROOT / ".venvs/kfp-oldest/bin/python"), "-m", "kfpkit.cli", "compile",
         "--settings", str(tmp_path / "gpus.yaml"), "--out", str(tmp_path / "out")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    gke = (tmp_path / "out/gke/training.yaml").read_text()
    assert "cloud.google.com/gke-accelerator: nvidia-l4" in gke and "/train-gpu:" in gke
    assert "type: NVIDIA_L4" in (tmp_path / "out/vx/training.yaml").read_text()


def test_each_component_runs_in_the_image_of_its_family():
    """The family a component's tests run in (images.COMPONENT_FAMILIES) is the image it names."""
    from kfpkit.compile import COMPONENTS, _load

    for name, spec in COMPONENTS.items():
        component = _load(*spec)
        image = component.component_spec.implementation.container.image
        assert image == images.image(images.COMPONENT_FAMILIES[name]), name
