"""The import graph of `ttcdsl` has no circles, counting imports inside functions too: a module
that needs another's decision imports it, never the other way round as well. (The runtime's
executor and bandit imported each other; the planner's sweep imported the runtime's plots.)"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.paths import REPO


def _graph() -> dict[str, set[str]]:
    root = REPO / "ttcdsl"
    modules: dict[str, Path] = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                # a package and its own submodules are one unit (a package's __init__ may
                # re-export what its submodules define)
                if target in modules and target != name and not name.startswith(target + "."):
                    if not target.startswith(name + "."):
                        graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        order[v] = low[v] = len(order)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in order:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], order[w])
        if low[v] == order[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in order:
            visit(v)
    return found


def test_no_module_of_ttcdsl_imports_itself_in_a_circle() -> None:
    assert _cycles(_graph()) == []


def test_the_planner_does_not_draw_with_the_runtimes_plots() -> None:
    graph = _graph()
    for name, targets in graph.items():
        if name.startswith("ttcdsl.planner"):
            assert "ttcdsl.runtime.plots" not in targets, name


def test_the_detector_sees_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
