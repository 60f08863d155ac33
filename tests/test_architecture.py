"""The layout is the architecture (README: Architecture): these checks keep it so.

- every folder under components/ is a component of the one list (kfpkit.catalog) and the other
  way round, with component.py, launcher.py, README.md and tests/;
- every launcher.py is the image's entry point: ``run(executor)`` and, under ``__main__``,
  ``main(run)`` from kfpkit.runtime.executor;
- no component imports or runs another component (absolute or relative imports, or a module
  path in a string: ``python3 -m``, importlib); shared code goes into a layer under src/kfpkit/;
- no layer imports a component (the host loads them by name through kfpkit.catalog), and only
  the host modules that enumerate pipelines import kfpkit.pipelines;
- the imports between kfpkit's modules (src/kfpkit, components, pipelines; at module level and
  in functions) form no cycle;
- nothing but tests imports kfpkit.testing (the wheel, and so the images, leave it out).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from kfpkit import catalog

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS_DIR = ROOT / "components"
PIPELINES_DIR = ROOT / "pipelines"
SRC = ROOT / "src" / "kfpkit"
# The folders of kfpkit's packages (pyproject.toml's package-dir).
PACKAGE_DIRS = {
    SRC: "kfpkit",
    COMPONENTS_DIR: "kfpkit.components",
    PIPELINES_DIR: "kfpkit.pipelines",
}
# Host modules that enumerate or build pipelines.
PIPELINE_USERS = {"catalog.py", "compile.py", "targets.py"}
# "BigquerySplitOp" (an export of kfpkit.components) -> "bigquery_split"
EXPORTS = {c.op_name: c.name for c in catalog.COMPONENTS}


def module_name(path: Path) -> str:
    """The dotted name of the module in ``path``: components/train/launcher.py ->
    kfpkit.components.train.launcher; a package's __init__.py -> the package."""
    top = next(folder for folder in PACKAGE_DIRS if folder in path.parents)
    parts = path.relative_to(top).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE_DIRS[top], *parts))


def imported_modules(path: Path) -> Iterator[str]:
    """What ``path`` imports anywhere (at module level or in a function), absolute or relative,
    as absolute dotted names: ``from a import b`` and ``from . import b`` in package ``a`` give
    ``a.b`` (``b`` a module, or a name in ``a``)."""
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import b, from ..a import b
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                yield base if alias.name == "*" else f"{base}.{alias.name}"


def strings_in_code(path: Path) -> Iterator[str]:
    """The string constants of ``path`` but its docstrings (prose may name any module)."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        is_string = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if is_string and id(node) not in docstrings:
            yield node.value


# A component's module in a string: importlib.import_module("kfpkit.components.x.launcher"),
# a command's [..., "-m", "kfpkit.components.x.launcher"], or "python3 -m kfpkit.components.x"
# in a script.
COMPONENT_IN_STRING = re.compile(
    r"^kfpkit\.components\.(\w+)[\w.]*$|-m\s+kfpkit\.components\.(\w+)", re.MULTILINE
)


def components_named_in(path: Path) -> Iterator[str]:
    """The components ``path`` imports, or names as a module to import or run."""
    for module in imported_modules(path):
        parts = module.split(".")
        if parts[:2] == ["kfpkit", "components"] and len(parts) > 2:
            yield EXPORTS.get(parts[2], parts[2])
    for text in strings_in_code(path):
        for match in COMPONENT_IN_STRING.finditer(text):
            yield match.group(1) or match.group(2)


def is_test_code(path: Path) -> bool:
    return "tests" in path.parts or path.name == "conftest.py"


def component_folders() -> list[str]:
    return sorted(p.name for p in COMPONENTS_DIR.iterdir() if (p / "__init__.py").exists())


def test_every_component_folder_is_in_the_one_list_and_complete():
    assert component_folders() == sorted(c.name for c in catalog.COMPONENTS)
    for name in component_folders():
        folder = COMPONENTS_DIR / name
        missing = [
            f for f in ("component.py", "launcher.py", "README.md") if not (folder / f).is_file()
        ]
        assert not missing, f"components/{name} lacks {missing}"
        assert list((folder / "tests").glob("test_*.py")), f"components/{name}/tests has no tests"
        assert catalog.component(name).family in ("core", "tfdv", "train"), name


def test_every_launcher_is_an_entry_point():
    """``python3 -m kfpkit.components.<name>.launcher`` (the command of component.py) runs the
    executor contract: ``run(executor)`` handed to kfpkit.runtime.executor's ``main``."""
    for name in component_folders():
        path = COMPONENTS_DIR / name / "launcher.py"
        tree = ast.parse(path.read_text(), str(path))
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        imported = {
            alias.asname or alias.name
            for n in tree.body
            if isinstance(n, ast.ImportFrom) and n.module == "kfpkit.runtime.executor"
            for alias in n.names
        }
        assert "run" in defined, f"{path}: no run(executor)"
        assert "main" in defined or "main" in imported, f"{path}: no main"
        entry = [
            n
            for n in tree.body
            if isinstance(n, ast.If) and ast.unparse(n.test) == "__name__ == '__main__'"
        ]
        assert entry and "main(run)" in ast.unparse(entry[0]), f"{path}: no main(run) as __main__"


def test_no_component_imports_another_component():
    found = set()
    for name in component_folders():
        for path in (COMPONENTS_DIR / name).rglob("*.py"):
            if is_test_code(path):
                continue
            found.update(
                (str(path.relative_to(ROOT)), other)
                for other in components_named_in(path)
                if other != name
            )
    assert not found, sorted(found)


def test_layers_import_no_component_and_only_the_host_imports_pipelines():
    for path in SRC.rglob("*.py"):
        if path.relative_to(SRC).parts[0] == "testing":
            continue
        for module in imported_modules(path):
            assert not module.startswith("kfpkit.components"), f"{path}: imports {module}"
            if module.startswith("kfpkit.pipelines"):
                assert path.name in PIPELINE_USERS, f"{path}: imports {module}"


def import_graph() -> dict[str, set[str]]:
    """Each of kfpkit's modules (test code left out) -> the kfpkit modules it imports; an
    imported name that is no module stands for the module that holds it."""
    paths = {
        module_name(path): path
        for folder in PACKAGE_DIRS
        for path in folder.rglob("*.py")
        if not is_test_code(path)
    }
    graph = {}
    for module, path in paths.items():
        graph[module] = set()
        for imported in imported_modules(path):
            while imported not in paths and "." in imported:
                imported = imported.rpartition(".")[0]
            if imported in paths and imported != module:
                graph[module].add(imported)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each group of modules that import each other (strongly connected
    components, Tarjan's algorithm), as [a, b, ..., a]."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in sorted(graph[module]):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = {module}
            while (member := stack.pop()) != module:
                group.add(member)
            if len(group) > 1:
                groups.append(group)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return [cycle_in(graph, group) for group in groups]


def cycle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """The shortest way from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for imported in sorted(graph[module] & group):
            if imported == start:
                return [*paths[module], start]
            if imported not in paths:
                paths[imported] = [*paths[module], imported]
                queue.append(imported)
    raise AssertionError(f"no cycle in {group}")


def test_the_imports_form_no_cycle():
    cycles = import_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_cycle_finder_names_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert import_cycles(graph) == [["a", "b", "c", "a"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("top", ["src/kfpkit", "components", "pipelines"])
def test_only_tests_import_the_testing_package(top):
    for path in (ROOT / top).rglob("*.py"):
        if is_test_code(path) or (SRC / "testing") in path.parents:
            continue
        for module in imported_modules(path):
            assert not module.startswith("kfpkit.testing"), f"{path}: imports {module}"


# Host-only code that may use google-cloud-aiplatform (the `vertex` extra): `kfpkit submit`.
AIPLATFORM_USERS = {SRC / "submit" / "vertex.py"}


@pytest.mark.parametrize("top", ["src/kfpkit", "components", "pipelines"])
def test_no_code_an_image_runs_imports_aiplatform(top):
    """kfpkit's own code in the images never needs google-cloud-aiplatform: the Vertex-facing
    steps speak Vertex AI's REST API (kfpkit.vertex_api)."""
    for path in (ROOT / top).rglob("*.py"):
        if is_test_code(path) or (SRC / "testing") in path.parents or path in AIPLATFORM_USERS:
            continue
        for module in imported_modules(path):
            assert not module.startswith(("google.cloud.aiplatform", "vertexai")), (
                f"{path}: imports {module}"
            )


def test_the_core_image_ships_no_aiplatform():
    """182 MB that no core step imports (the tfdv image has it through apache-beam[gcp],
    which TFDV requires)."""
    assert "google-cloud-aiplatform==" not in (ROOT / "images/core/requirements.lock").read_text()
