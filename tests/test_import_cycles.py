"""No import cycles inside the package, between modules or between subpackages.

A cycle works until someone imports the modules in another order; this static check finds one
before a user does. It reads every ``import`` statement (at module level and inside functions,
since a deferred import is how a cycle usually hides), except those under
``if TYPE_CHECKING:``, which never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import codat_webhooks

PACKAGE_DIR = Path(codat_webhooks.__file__).parent
PACKAGE = "codat_webhooks"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(name: str, path: Path) -> set[str]:
    """The package's modules that ``name`` imports when it runs, with their parent packages."""
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    targets: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                source = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            targets.add(source)
            targets.update(f"{source}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    found: set[str] = set()
    for target in targets:
        parts = target.split(".")
        for end in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            candidate = ".".join(parts[:end])
            if candidate in MODULES and candidate != name:
                found.add(candidate)
    return found


def _parents(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:end]) for end in range(1, len(parts))}


def unit(name: str, level: str) -> str:
    """``name`` itself, or for ``level="package"`` the subpackage it belongs to."""
    return name if level == "module" else ".".join(name.split(".")[:2])


def find_cycles(level: str) -> list[list[str]]:
    """Strongly connected groups of modules or subpackages (Tarjan): cycles of imports."""
    # A submodule reaching back to its own package's __init__ is implicit in Python (and how
    # packages re-export), so it is no cycle.
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        targets = {unit(t, level) for t in _imported(name, path) if t not in _parents(name)}
        graph.setdefault(unit(name, level), set()).update(targets - {unit(name, level)})
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for name in graph:
        if name not in index:
            connect(name)
    return cycles


def test_the_checker_sees_a_cycle_through_a_deferred_import(tmp_path: Path) -> None:
    path = tmp_path / "mod.py"
    path.write_text("def f():\n    from codat_webhooks import receiver\n")
    assert "codat_webhooks.receiver" in _imported("codat_webhooks.hooks.manager", path)


@pytest.mark.parametrize("level", ["module", "package"])
def test_nothing_imports_itself_through_others(level: str) -> None:
    assert find_cycles(level) == []
