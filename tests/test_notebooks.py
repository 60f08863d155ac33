"""The notebooks under notebooks/ run, as a user runs them, in a Jupyter kernel of this
environment (the SDK venv), on small data; any cell error fails the test.

Add a notebook with one entry in NOTEBOOKS: its file, the environment variables it reads its
parameters from (small data, output folders, test servers), the fixtures those come from, the
marks it needs, and optionally a check of what it produced. Notebooks are committed with their
outputs cleared (test_notebooks_are_committed_without_outputs).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
KERNEL = "kfpkit-sdk"


@dataclass(frozen=True)
class Notebook:
    file: str
    # (fixture values by name, tmp_path) -> environment variables of the kernel
    env: Callable[[dict[str, Any], Path], dict[str, str]] = lambda fixtures, tmp: {}
    fixtures: tuple[str, ...] = ()
    marks: tuple[Any, ...] = ()
    timeout: int = 600  # seconds per cell
    # (executed notebook, tmp_path) -> None: asserts on what the notebook produced
    check: Callable[[Any, Path], None] | None = None


def _check_quickstart(executed: Any, tmp: Path) -> None:
    splits = list((tmp / "outputs").glob("notebook-split-*/bigquery-split/train/data-*.parquet"))
    assert splits, "the notebook's local run wrote no train split"
    printed = "".join(
        o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "train-gpu" in printed  # the GPU helper moved the task to the GPU image


def _check_continuous(executed: Any, tmp: Path) -> None:
    printed = "".join(
        o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "continuous" in printed and "frozen" in printed  # both models' scores per year


def _check_online(executed: Any, tmp: Path) -> None:
    shown = "".join(
        o.get("text", "") + "".join(o.get("data", {}).values())
        for c in executed.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    # the decision table, the bandit's regret and the drift per year came out of the JSON
    assert "rollback" in shown and "bandit regret" in shown and "<svg" in shown
    assert "| 2018 |" in shown


def _check_submit(executed: Any, tmp: Path) -> None:
    printed = "".join(
        o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "refused: pipeline 'kfpkit-training' has no parameter 'tuning_trails'" in printed
    assert "KFP cron: 0 30 2 * * *" in printed and "TZ=Europe/Paris 0 6 * * 1-5" in printed


def _check_evaluation(executed: Any, tmp: Path) -> None:
    shown = "".join(
        o.get("text", "") + "".join(o.get("data", {}).values())
        for c in executed.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    results = json.loads((tmp / "outputs" / "results.json").read_text())
    pairs = [(p["year"], p["candidate"], p["baseline"]) for p in results["pairs"]]
    assert pairs == [(2017, "2016", "2015"), (2018, "2016", "2015"), (2018, "2017", "2015")]
    for pair in results["pairs"]:
        assert pair["rows"] == 20_000 and set(pair["slice_auc"]) == {"SEX", "RAC1P", "age_band"}
        for found in pair["metrics"].values():  # every difference has a paired interval
            low, high = found["difference_ci"]
            assert low <= found["difference"] <= high
    # the verdict table, the slice tables with their gaps, and evaluate's report with its SVG
    assert "| 2018 | 2017 vs 2015 | 20,000 | auc |" in shown and "real?" in shown
    assert "Gaps over `RAC1P`" in shown and "too few rows for an interval" in shown
    assert "# Model evaluation:" in shown and "<svg" in shown
    # the top features: the candidate's attributions, overall and per slice value
    assert "| feature | all rows | SEX=1 | SEX=2 |" in shown and "| AGEP |" in shown


def _check_tracking(executed: Any, tmp: Path) -> None:
    shown = "".join(
        o.get("text", "") + "".join(o.get("data", {}).values())
        for c in executed.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    # four runs recorded in MLflow and read back; 2017 kept its model: no evaluation
    assert "4 runs in" in shown and "<svg" in shown
    assert "evaluate/auc {2015: '0.901354', 2016: '0.900884', 2017: '(absent)'" in shown


DOCKER = (pytest.mark.docker, pytest.mark.emulator)
NOTEBOOKS = [
    # the SDKs' real requests to kfpkit's local KFP and Vertex AI stand-ins: no Docker
    Notebook(
        "submit.ipynb",
        env=lambda f, tmp: {"KFPKIT_SUBMIT_TEST_SERVERS": "1"},
        check=_check_submit,
    ),
    # reads the committed replay results (benchmarks/results_continuous.json): no Docker
    Notebook("continuous_training.ipynb", check=_check_continuous),
    # records the committed replay's windows as runs in a real MLflow SQLite store, compares
    Notebook("experiment_tracking.ipynb", check=_check_tracking),
    # reads the committed online replay (benchmarks/results_online_replay.json): no server
    Notebook("online_experiments.ipynb", check=_check_online),
    # trains three models and evaluates them in the train venv (.venvs/train): 42 s idle
    Notebook(
        "evaluation.ipynb",
        env=lambda f, tmp: {"KFPKIT_NOTEBOOK_OUTPUTS": str(tmp / "outputs")},
        marks=(pytest.mark.slow,),
        check=_check_evaluation,
    ),
    Notebook(
        "quickstart.ipynb",
        env=lambda f, tmp: {
            "KFPKIT_NOTEBOOK_ROWS": "5000",
            "KFPKIT_NOTEBOOK_OUTPUTS": str(tmp / "outputs"),
        },
        marks=DOCKER,
        check=_check_quickstart,
    ),
]


def run_notebook(path: Path, env: dict[str, str], workdir: Path, timeout: int = 600) -> Any:
    """Executes ``path`` with nbclient in a kernel of this interpreter (``sys.executable``,
    i.e. the SDK venv under ``make test``), cwd the notebook's folder, ``env`` added to the
    kernel's environment; raises nbclient's CellExecutionError on the first failing cell.
    The file itself is not modified."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    spec_dir = workdir / "kernels" / KERNEL
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "kfpkit SDK venv",
                "language": "python",
                "env": env,
            }
        )
    )
    specs = KernelSpecManager(kernel_dirs=[str(workdir / "kernels")], ensure_native_kernel=False)
    manager = KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        km=manager,
        timeout=timeout,
        allow_errors=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return notebook


@pytest.mark.parametrize("notebook", [pytest.param(n, id=n.file, marks=n.marks) for n in NOTEBOOKS])
def test_notebook_runs(notebook: Notebook, request, tmp_path):
    fixtures = {name: request.getfixturevalue(name) for name in notebook.fixtures}
    executed = run_notebook(
        NOTEBOOK_DIR / notebook.file, notebook.env(fixtures, tmp_path), tmp_path, notebook.timeout
    )
    if notebook.check is not None:
        notebook.check(executed, tmp_path)


def test_the_harness_fails_on_a_cell_error_and_runs_in_this_interpreter(tmp_path):
    import nbformat
    from nbclient.exceptions import CellExecutionError

    good = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import os, sys; print(sys.executable, os.environ['P'])")]
    )
    nbformat.write(good, tmp_path / "good.ipynb")
    executed = run_notebook(tmp_path / "good.ipynb", {"P": "small"}, tmp_path)
    assert executed.cells[0].outputs[0]["text"].split() == [sys.executable, "small"]

    bad = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("1 / 0")]
    )
    nbformat.write(bad, tmp_path / "bad.ipynb")
    with pytest.raises(CellExecutionError, match="ZeroDivisionError"):
        run_notebook(tmp_path / "bad.ipynb", {}, tmp_path)


def test_every_local_notebook_is_listed():
    """A notebook under notebooks/ is either run here or listed as needing a live service."""
    not_local: set[str] = set()  # e.g. a notebook that only submits to a real cluster
    listed = {n.file for n in NOTEBOOKS}
    found = {p.name for p in NOTEBOOK_DIR.glob("*.ipynb")}
    assert found - not_local <= listed, f"add to NOTEBOOKS: {sorted(found - not_local - listed)}"


@pytest.mark.parametrize("path", sorted(NOTEBOOK_DIR.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path: Path):
    notebook = json.loads(path.read_text())
    for i, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, (
                f"{path.name} cell {i} has outputs: clear them before committing "
                f"(Jupyter: Edit > Clear All Outputs, then save)"
            )
