"""The package's import structure: no cycle among its modules, the CLI on top, a cheap import.

The import graph is read from the source (every ``import`` and ``from … import``
anywhere in a module, inside functions too; only ``if TYPE_CHECKING:`` blocks,
which never run, are left out), so a cycle hidden in a function-level import
counts as much as one at the top of a file.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import bptt_check

PACKAGE = Path(bptt_check.__file__).parent
Graph = dict[str, dict[str, int]]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str, path: Path) -> dict[str, int]:
    """The package's modules ``name`` imports, each with the line of its first import.

    ``from .pkg import sub`` imports the submodule ``sub``; a name that is not a
    module (``from .pkg import f``) imports ``pkg`` itself.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}

    def add(target: str, line: int) -> None:
        if target in MODULES and target != name:
            found.setdefault(target, line)

    def visit(node: ast.AST) -> None:
        if _type_checking_only(node):
            for child in node.orelse:  # type: ignore[attr-defined]
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
            if len(subs) < len(node.names):
                add(target, node.lineno)
            for sub in subs:
                add(sub, node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def import_graph() -> Graph:
    return {name: imports_of(name, path) for name, path in MODULES.items()}


def find_cycle(graph: Graph) -> list[str] | None:
    """One cycle ``[a, b, …, a]`` of the graph, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in graph:
        if state.get(root):
            continue
        path: list[str] = [root]
        stack = [iter(graph[root])]
        state[root] = 1
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append(iter(graph.get(child, {})))
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {}}) is None
    assert find_cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {}, "b": {"c": 1}, "c": {"b": 1}}) == ["b", "c", "b"]


def test_imports_inside_functions_are_counted() -> None:
    graph = import_graph()
    assert sum(len(v) for v in graph.values()) > 50, "the scan no longer reads the imports"
    assert "bptt_check.numeric" in graph["bptt_check.truth"]  # imported only inside a method
    assert "bptt_check.grading.command" in graph["bptt_check.cli"]  # imported inside build_parser


def test_no_import_cycle_among_the_packages_modules() -> None:
    graph = import_graph()
    cycle = find_cycle(graph)
    if cycle:
        steps = [f"{a} (line {graph[a][b]}) imports {b}" for a, b in zip(cycle, cycle[1:])]
        raise AssertionError("import cycle:\n  " + "\n  ".join(steps))


def test_only_the_entry_points_import_the_cli() -> None:
    graph = import_graph()
    importers = sorted(name for name, targets in graph.items() if "bptt_check.cli" in targets)
    assert importers == ["bptt_check.__main__"]


def test_grading_exports_no_command() -> None:
    import bptt_check.grading as grading

    assert not {"add_grade_command", "cmd_grade"} & set(grading.__all__)
    assert not hasattr(grading, "add_grade_command")


def test_importing_the_package_and_its_pytest_plugin_loads_neither_jax_nor_sympy() -> None:
    code = (
        "import sys, bptt_check, bptt_check.pytest_plugin, bptt_check.vocabulary, bptt_check.errors;"
        "print(sorted(m for m in ('jax', 'sympy', 'lark') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PACKAGE.parent, timeout=120
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_importing_every_module_changes_no_global_setting() -> None:
    """jax's config, numpy's error and print state, warnings filters, the recursion limit, hypothesis's profile."""
    code = """
import importlib, pkgutil, sys, warnings
import hypothesis, jax, lark, numpy as np, rich, sympy  # their own import-time state is theirs

def state():
    return (jax.config.jax_enable_x64, jax.config.jax_compilation_cache_dir, jax.config.jax_default_matmul_precision,
            sys.getrecursionlimit(), list(warnings.filters), np.geterr(), np.get_printoptions(),
            sorted(hypothesis.settings._profiles), repr(hypothesis.settings.default))

before = state()
import pytest

import bptt_check
for info in pkgutil.walk_packages(bptt_check.__path__, "bptt_check."):
    if not info.name.endswith("__main__"):
        importlib.import_module(info.name)
after = state()
print([(a, b) for a, b in zip(before, after) if a != b])
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PACKAGE.parent, timeout=300
    ).stdout
    assert out.strip() == "[]"
