"""Every pipeline compiles, compiled/ is current, component YAML loads, images are configurable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kfp import compiler, components, dsl

from kfpkit import images

ROOT = Path(__file__).resolve().parent.parent


def test_compiled_is_current(tmp_path):
    # A fresh process without image overrides: compiled/ names the default images, whatever
    # registry this machine is set up for (component images are fixed when kfpkit is imported).
    env = {k: v for k, v in os.environ.items() if not k.startswith("KFPKIT_IMAGE_")}
    subprocess.run(
        [sys.executable, "-m", "kfpkit.cli", "compile", "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        env=env,
    )
    written = sorted(tmp_path.rglob("*.yaml"))
    for path in written:
        committed = ROOT / "compiled" / path.relative_to(tmp_path)
        assert committed.exists(), f"{committed} missing: run `make compile`"
        assert committed.read_bytes() == path.read_bytes(), (
            f"{committed} is stale: run `make compile`"
        )
    committed_files = {
        p.relative_to(ROOT / "compiled") for p in (ROOT / "compiled").rglob("*.yaml")
    }
    assert committed_files == {p.relative_to(tmp_path) for p in written}


def test_compile_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):  # separate processes: protobuf map order differs between processes
        subprocess.run(
            [sys.executable, "-m", "kfpkit.cli", "compile", "--out", str(out)],
            check=True,
            capture_output=True,
        )
    for f in a.rglob("*.yaml"):
        assert f.read_bytes() == (b / f.relative_to(a)).read_bytes(), f


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
def test_oldest_supported_kfp_compiles_every_pipeline():
    """The bottom of the kfp range (make compat: kfp 2.7.0 in its own venv) compiles too."""
    proc = subprocess.run(["make", "-s", "compat"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    oldest = next((ROOT / "build").glob("compiled-kfp-2.7.0"))
    for name in ("training.yaml", "components/bigquery_split.yaml"):
        text = (oldest / name).read_text()
        assert "sdkVersion: kfp-2.7.0" in text
        assert "kfpkit.components.bigquery_split.launcher" in text


def test_each_component_runs_in_the_image_of_its_family():
    """The family a component's tests run in (images.COMPONENT_FAMILIES) is the image it names."""
    from kfpkit.compile import COMPONENTS, _load

    for name, spec in COMPONENTS.items():
        component = _load(*spec)
        image = component.component_spec.implementation.container.image
        assert image == images.image(images.COMPONENT_FAMILIES[name]), name
