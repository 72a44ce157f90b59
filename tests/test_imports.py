"""No import circle among the package's modules.

The graph is read with `ast`, not by importing: every ``import`` of a ``cephalopod`` module is
an edge, at module level and inside functions alike (an import moved into a function hides a
circle, it does not remove it). Imports under ``if TYPE_CHECKING:`` are not edges: they never
run. Migration scripts are loaded by Alembic, not imported, and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cephalopod

PACKAGE = Path(cephalopod.__file__).parent

#: Edges allowed for now, each with the item that removes it (keep this empty when you can).
ALLOWED: dict[tuple[str, str], str] = {}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        if "migrations" in rel.parts:
            continue
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        modules[".".join(parts)] = path
    return modules


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden.update(id(sub) for stmt in node.body for sub in ast.walk(stmt))
    return hidden


def _imported(
    name: str, path: Path, node: ast.Import | ast.ImportFrom, modules: set[str]
) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    # "from pkg import module" names a module; "from module import function" names its module
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]


def _owner(target: str, modules: set[str]) -> str | None:
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def import_graph() -> dict[str, dict[str, int]]:
    """Module → {imported module: line of the first such import}."""
    modules = _modules()
    names = set(modules)
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        hidden = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in hidden:
                continue
            for target in _imported(name, path, node, names):
                owner = _owner(target, names) if target.startswith("cephalopod") else None
                if owner and owner != name and (name, owner) not in ALLOWED:
                    graph[name].setdefault(owner, node.lineno)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_imports_inside_functions() -> None:
    graph = import_graph()
    assert "cephalopod.app" in graph["cephalopod.cli"]  # imported inside a function there


def test_no_import_circle() -> None:
    graph = import_graph()
    report = [
        "  ".join(f"{a} -> {b} (line {graph[a][b]})" for a in group for b in graph[a] if b in group)
        for group in cycles(graph)
    ]
    assert not report, "import circles:\n" + "\n".join(report)


def test_allowances_are_still_needed() -> None:
    """An allowance whose edge is gone must be deleted with it."""
    modules = _modules()
    for source, target in ALLOWED:
        tree = ast.parse(modules[source].read_text(encoding="utf-8"))
        names = {
            owner
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for t in _imported(source, modules[source], node, set(modules))
            if (owner := _owner(t, set(modules)))
        }
        assert target in names, f"{source} -> {target} no longer exists: drop its allowance"
