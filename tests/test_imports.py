"""No import circle among the package's modules.

Every import counts as an edge, at the top of a module or inside a function alike (a
function-level import hides a circle from Python, not from a reader). Imports under
``if TYPE_CHECKING:`` are types only and never run: they are left out.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cephalopod
from cephalopod.settings import INSTANCE_ENV, SETTINGS_ENV

PACKAGE = Path(cephalopod.__file__).resolve().parent
ROOT = "cephalopod"

#: Edges allowed to close a circle, each named so that no other circle can hide behind it
#: (none today: the last one, admin/api.py ⇄ stats/public.py, went with admin.api.init_app).
ALLOWED_EDGES: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    found: set[str] = set()

    def target(name: str) -> str | None:
        # the module itself if it is one of ours, else the package that holds the name
        while name:
            if name in known:
                return name
            name = name.rpartition(".")[0]
        return None

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (hit := target(alias.name)) is not None:
                    found.add(hit)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            for alias in node.names:
                hit = target(f"{source}.{alias.name}") or target(source)
                if hit is not None:
                    found.add(hit)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports (migrations excluded: Alembic loads them)."""
    paths = [p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts]
    known = {_module_name(p) for p in paths}
    graph: dict[str, set[str]] = {}
    for path in paths:
        name = _module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        edges = _imports(tree, name, path.name == "__init__.py", known)
        # importing a.b.c runs a and a.b first: not an edge worth a circle (packages are thin)
        graph[name] = {e for e in edges if not name.startswith(e + ".")}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return one circle per strongly connected component larger than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                connect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def test_the_graph_sees_function_level_and_relative_imports() -> None:
    graph = import_graph()
    assert "cephalopod.app" in graph["cephalopod.worker"]
    assert "cephalopod.celery_app" in graph["cephalopod.background"]  # inside a function
    assert "cephalopod.stats.cache" not in graph["cephalopod.services"]  # TYPE_CHECKING only


def test_no_import_circle() -> None:
    graph = import_graph()
    for source, target in ALLOWED_EDGES:
        assert target in graph[source], f"{source} → {target} is gone: drop its allowance"
        graph[source].discard(target)
    cycles = find_cycles(graph)
    assert cycles == [], "import circles: " + "; ".join(" ⇄ ".join(c) for c in cycles)


def imported_modules(args: list[str], tmp_path: Path) -> set[str]:
    """The top-level packages a fresh ``python -X importtime ARGS`` imports."""
    settings = tmp_path / "settings.cfg"
    settings.write_text("SECRET_KEY = 'x'\n")
    env = {**os.environ, SETTINGS_ENV: str(settings), INSTANCE_ENV: str(tmp_path)}
    env.pop("CELERY_BROKER_URL", None)
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    names = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in lines[1:]}  # [0]: header
    assert "cephalopod" in names
    return names


@pytest.mark.parametrize(
    ("args", "absent"),
    [
        # --help: no application at all (the CLI imports commands inside them)
        (["-m", "cephalopod", "--help"], {"sqlalchemy", "aiohttp", "celery", "maxminddb"}),
        # every web process: no HTTP client (only a crawl needs it), no Celery without a broker
        (["-c", "from cephalopod.app import create_app; create_app()"], {"aiohttp", "celery"}),
    ],
    ids=["help", "create_app"],
)
def test_what_a_start_does_not_import(args: list[str], absent: set[str], tmp_path: Path) -> None:
    assert imported_modules(args, tmp_path) & absent == set()
