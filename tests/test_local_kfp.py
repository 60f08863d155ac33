"""The kfp versions ``kfpkit run`` supports (local_run.KFP_LOCAL_SUPPORTED): the private
kfp.local functions it patches are there with the shape it calls, and any other kfp is
refused before anything runs, naming the version."""

from __future__ import annotations

import inspect
import subprocess
from pathlib import Path

import pytest

from kfpkit import local_run

ROOT = Path(__file__).resolve().parent.parent
OLDEST = ROOT / ".venvs" / "kfp-oldest" / "bin" / "python"  # made by `make compat`


def test_the_installed_kfp_is_supported_and_has_what_is_patched():
    import kfp
    from kfp.local import docker_task_handler
    from kfp.local.orchestrator.enhanced_dag_orchestrator import ConditionEvaluator

    local_run.check_kfp_local()
    assert ".".join(kfp.__version__.split(".")[:2]) in local_run.KFP_LOCAL_SUPPORTED
    params = inspect.signature(docker_task_handler.run_docker_container).parameters
    assert list(params)[:4] == ["client", "image", "command", "volumes"]
    assert callable(docker_task_handler.add_latest_tag_if_not_present)
    assert isinstance(
        inspect.getattr_static(ConditionEvaluator, "_resolve_pipeline_channel"), staticmethod
    )
    local_run._keep_exit_codes()
    local_run._resolve_task_output_conditions()
    assert docker_task_handler.run_docker_container._kfpkit  # type: ignore[attr-defined]


@pytest.mark.parametrize("version", ["2.7.0", "2.16.1", "3.0.0"])
def test_other_kfp_versions_are_refused_naming_them(version):
    with pytest.raises(RuntimeError, match=f"kfp {version}"):
        local_run.check_kfp_local(version)


@pytest.mark.skipif(not OLDEST.exists(), reason="no kfp-oldest venv (make compat)")
def test_the_oldest_kfp_of_the_range_is_refused_by_kfpkit_run(tmp_path):
    proc = subprocess.run(
        [str(OLDEST), "-m", "kfpkit.cli", "run", "training", "--local",
         "--pipeline-root", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "kfp 2.7.0" in proc.stderr and "kfpkit run supports kfp 2.17.x" in proc.stderr
