"""The target a pipeline was compiled for is recorded in the spec, and a file compiled for one
remote platform is refused on the other (the checked-in compiled/ files, as `make compile`
writes them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kfpkit import targets

COMPILED = Path(__file__).resolve().parents[2] / "compiled"


def _spec(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("pipeline", ["training", "continuous_training"])
@pytest.mark.parametrize("target", ["kubeflow", "vertex"])
def test_compiled_files_record_their_target(pipeline, target):
    spec = _spec(COMPILED / target / f"{pipeline}.yaml")
    assert targets.compiled_for(spec) == (target, target)
    assert targets.compiled_for(_spec(COMPILED / f"{pipeline}.yaml")) is None  # as defined


def test_a_file_for_the_other_platform_is_refused_naming_both():
    kubeflow = _spec(COMPILED / "kubeflow" / "training.yaml")
    with pytest.raises(ValueError) as e:
        targets.check_compiled_for(kubeflow, "vertex", "compiled/kubeflow/training.yaml")
    message = str(e.value)
    assert "compiled/kubeflow/training.yaml was compiled for target 'kubeflow' (platform " \
           "kubeflow), not for vertex" in message  # fmt: skip
    assert "kfpkit compile --target vertex" in message
    vertex = _spec(COMPILED / "vertex" / "training.yaml")
    with pytest.raises(ValueError, match="target 'vertex' .*not for kubeflow"):
        targets.check_compiled_for(vertex, "kubeflow", "vertex.yaml")


def test_local_builds_and_files_without_a_record_go_anywhere():
    local = _spec(COMPILED / "training.yaml")
    for platform in ("kubeflow", "vertex"):
        targets.check_compiled_for(local, platform, "training.yaml")
        targets.check_compiled_for(_spec(COMPILED / platform / "training.yaml"), platform, "x")
    unmarked = {"pipelineInfo": {"name": "p", "description": "no record"}}
    assert targets.compiled_for(unmarked) is None
    targets.check_compiled_for(unmarked, "vertex", "p.yaml")


def test_a_user_target_records_its_own_name_and_platform(tmp_path):
    settings = tmp_path / "targets.yaml"
    settings.write_text("targets:\n  prod:\n    base: vertex\n")
    target = targets.load(settings).get("prod")
    line = targets.compiled_for_line(target)
    spec = {"pipelineInfo": {"description": f"A pipeline. {line}"}}
    assert targets.compiled_for(spec) == ("prod", "vertex")
    with pytest.raises(ValueError, match="target 'prod' \\(platform vertex\\), not for kubeflow"):
        targets.check_compiled_for(spec, "kubeflow", "p.yaml")
