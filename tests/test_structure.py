"""The package's modules import each other without a cycle, and the views (charts, reports,
exports, the history) never reach the live Grid: they read plain values, so the Grid sits on top.

Every import counts: at module level, under ``if TYPE_CHECKING:`` and inside functions (a lazy
import is still a dependency, only a later one). A module's parent packages, which Python imports
first, are not counted; an explicit ``from . import name`` of a package's attribute is an import
of that package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import llmgrid_nb

PACKAGE = Path(llmgrid_nb.__file__).parent

#: Imports that close a cycle today, each with why it is there and how it goes. An entry whose
#: cycle is gone fails ``test_every_known_cycle_is_still_there``: remove it then.
KNOWN_CYCLES: Mapping[tuple[str, str], str] = {}

#: The views: they take DataFrames or a small value holding them, never the live run.
VIEWS = ("llmgrid_nb.export", "llmgrid_nb.history", "llmgrid_nb.plots", "llmgrid_nb.report", "llmgrid_nb.static_view")
#: What a view must not reach, even through other modules: the live run and its engine.
LIVE = ("llmgrid_nb.api", "llmgrid_nb.grid", "llmgrid_nb.multiplexer", "llmgrid_nb.widget")


def _modules(root: Path = PACKAGE) -> dict[str, tuple[Path, bool]]:
    """Every module of the package: dotted name -> (file, whether it is a package's __init__)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def imports_of(name: str, source: str, *, is_package: bool, known: Iterable[str]) -> set[str]:
    """The package modules that module ``name`` (with this ``source``) imports, anywhere in it."""
    known = set(known)
    top = name.split(".")[0]
    here = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()

    def target(module: str, attribute: str) -> str:
        """``from module import attribute``: the submodule when there is one, else the module."""
        return f"{module}.{attribute}" if f"{module}.{attribute}" in known else module

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == top)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] == top:
                found.update(target(module, alias.name) for alias in node.names)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: imports_of(name, path.read_text(encoding="utf-8"), is_package=is_package, known=modules)
            for name, (path, is_package) in modules.items()}


def _cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One import cycle (a list of modules, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _reachable(graph: Mapping[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _without_known_cycles(graph: Mapping[str, set[str]]) -> dict[str, set[str]]:
    return {name: {t for t in targets if (name, t) not in KNOWN_CYCLES} for name, targets in graph.items()}


def test_the_parser_sees_every_kind_of_import() -> None:
    known = {"pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.d", "pkg.f", "pkg.sub", "pkg.sub.e"}
    source = (
        "from __future__ import annotations\n"
        "import json\n"
        "from typing import TYPE_CHECKING\n"
        "from .b import thing\n"  # a name from a module
        "from . import c\n"  # a module from a package
        "from . import __version__\n"  # a name from the package itself
        "if TYPE_CHECKING:\n"
        "    from .d import Kind\n"
        "def later():\n"
        "    import pkg.f\n"
        "class K:\n"
        "    def method(self):\n"
        "        from .sub import e\n"
    )
    assert imports_of("pkg.a", source, is_package=False, known=known) == {"pkg", "pkg.b", "pkg.c", "pkg.d", "pkg.f",
                                                                          "pkg.sub.e"}
    package = "from . import e\nfrom .. import a\n"
    assert imports_of("pkg.sub", package, is_package=True, known=known) == {"pkg.sub.e", "pkg.a"}
    assert imports_of("pkg.sub.e", package, is_package=False, known=known) == {"pkg.a"}  # itself aside


def test_the_graph_covers_the_whole_package() -> None:
    graph = import_graph()
    assert {"llmgrid_nb", "llmgrid_nb.grid", "llmgrid_nb.plots", "llmgrid_nb.sources.base", "llmgrid_nb.sim.app"} \
        <= set(graph)
    assert "llmgrid_nb.plots" in graph["llmgrid_nb.grid"]  # a lazy import, inside Grid.plot
    assert "llmgrid_nb.grid" in graph["llmgrid_nb.api"]


def test_no_modules_import_each_other_in_a_circle() -> None:
    cycle = _cycle(_without_known_cycles(import_graph()))
    assert cycle is None, "an import cycle: " + " -> ".join(cycle or [])


def test_every_known_cycle_is_still_there() -> None:
    graph = import_graph()
    for (importer, imported), what in KNOWN_CYCLES.items():
        assert imported in graph[importer], f"{importer} no longer imports {imported} ({what}): drop the entry"
        assert importer in _reachable(graph, imported), f"{importer} -> {imported} closes no cycle now: drop it"


def test_views_never_reach_the_live_grid() -> None:
    graph = _without_known_cycles(import_graph())
    for view in VIEWS:
        reached = _reachable(graph, view) & set(LIVE)
        assert not reached, f"{view} imports {sorted(reached)}: views read frames or a RunRecord, never the live run"
