"""README.md's generated table of component inputs and outputs matches the component specs."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from kfpkit import component_table
from kfpkit.compile import COMPONENTS

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_table_is_current():
    current = component_table.current_block(README)
    expected = component_table.block()
    assert current == expected, (
        f"README.md's component table differs from the component specs: run "
        f"`{component_table.COMMAND}` (python -m kfpkit.component_table --write) and commit it"
    )


def test_every_registered_component_has_a_row_from_its_spec():
    rows = {row["name"]: row for row in component_table.component_rows()}
    assert list(rows) == list(COMPONENTS)  # the registry decides, nothing hard-coded here
    for name, (module, attr) in COMPONENTS.items():
        spec = getattr(importlib.import_module(module), attr).component_spec
        assert [i[0] for i in rows[name]["inputs"]] == list(spec.inputs or {})
        assert [o[0] for o in rows[name]["outputs"]] == list(spec.outputs or {})
        assert rows[name]["family"] in spec.implementation.container.image


def test_types_and_defaults_as_the_spec_declares_them():
    row = next(r for r in component_table.component_rows() if r["name"] == "evaluate")
    inputs = {name: (kind, default) for name, kind, default in row["inputs"]}
    assert row["family"] == "train"
    assert inputs["model"] == ("Model", "")
    assert inputs["baseline_model"] == ("Model", "optional")
    assert inputs["baseline_model_dir"] == ("String", '""')
    assert inputs["absolute_threshold"] == ("Float", "0.5")
    assert inputs["slice_columns"] == ("List", "[]")
    assert dict(row["outputs"])["blessed"] == "Boolean"
    assert dict(row["outputs"])["classification_metrics"] == "ClassificationMetrics"


def test_a_newly_registered_component_is_picked_up(monkeypatch):
    """A component added to COMPONENTS gets its row without touching the generator."""
    monkeypatch.setitem(
        COMPONENTS, "my_step", ("kfpkit.components.publish_model.component", "publish_model")
    )
    table = component_table.render(component_table.component_rows())
    assert "| `my_step` | `core` | `model` (Model)<br>`destination` (String) |" in table


def test_write_then_check_round_trip(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{component_table.BEGIN}\nold table\n{component_table.END}\nrest\n")
    cmd = [sys.executable, "-m", "kfpkit.component_table", "--readme", str(readme)]
    stale = subprocess.run([*cmd, "--check"], capture_output=True, text=True)
    assert stale.returncode == 1 and "run `make docs`" in stale.stderr
    assert subprocess.run([*cmd, "--write"], capture_output=True).returncode == 0
    text = readme.read_text()
    assert text.startswith("# x\n\n") and text.endswith(f"{component_table.END}\nrest\n")
    assert "old table" not in text and "| `evaluate` | `train` |" in text
    assert subprocess.run([*cmd, "--check"]).returncode == 0


def test_missing_markers_are_named(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no table here\n")
    with pytest.raises(ValueError, match="no component table markers"):
        component_table.write(readme)
