"""The shape of the package: no import cycles between its modules, no oversized module.

The import graph is read from the source with :mod:`ast`, not by importing,
so it sees every import at any depth: at the top of a module, inside
functions, and under ``if TYPE_CHECKING:`` (those are kept too: a cycle that
only type checkers follow still means two modules that each need the other,
and it turns into a runtime cycle the day one of those imports is needed at
run time).

Each import becomes an edge to the one module of ``moa_local`` it names:

* ``import moa_local.a.b`` and ``from moa_local.a.b import X`` name
  ``moa_local.a.b`` (a package's ``__init__`` when it is a package);
* ``from .pkg import X`` names ``pkg`` (its ``__init__``), but
  ``from .pkg import mod`` names ``pkg.mod`` when that is a module, and
  ``from . import mod`` likewise names the sibling module.

Importing ``pkg.mod`` also runs ``pkg/__init__.py`` first, but that is not an
edge of the importer: from inside ``pkg`` it would always close a loop with
the ``__init__`` that imports its own submodules. What does count is an import
that names the package itself: ``from moa_local.engine import Plan`` in
``moa_local/engine/run.py`` is an edge to ``moa_local/engine/__init__.py``,
which therefore must not import ``run`` back.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator, Mapping
from pathlib import Path

PACKAGE = "moa_local"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
MAX_LINES = 450

# module -> {imported module: line of the first such import}
Graph = dict[str, dict[str, int]]


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module under ``root`` by dotted name (a package by its ``__init__``)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imports(module: str, path: Path, modules: Mapping[str, Path]) -> Iterator[tuple[str, int]]:
    """The modules of the package that ``module`` imports, with the line of each import."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # The package a relative import starts from: the module itself
                # for an __init__, else its parent; each further dot goes up one.
                here = module.split(".") if is_package else module.split(".")[:-1]
                here = here[: len(here) - (node.level - 1)]
                base = ".".join([*here, node.module] if node.module else here)
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:
                    yield submodule, node.lineno
                elif base in modules:  # not another package's, nor a folder without __init__
                    yield base, node.lineno


def import_graph(root: Path, package: str) -> Graph:
    """Which module of ``package`` (at ``root``) imports which, self-imports left out."""
    modules = module_files(root, package)
    graph: Graph = {name: {} for name in modules}
    for name, path in modules.items():
        for target, line in _imports(name, path, modules):
            if target != name:
                graph[name].setdefault(target, line)
    return graph


def find_cycle(graph: Graph) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None when it has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, {})):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def describe(cycle: list[str], graph: Graph, root: Path, package: str) -> str:
    """Each step of ``cycle`` with the file and line of the import that makes it."""
    modules = module_files(root, package)
    steps = []
    for source, target in itertools.pairwise(cycle):
        where = modules[source].relative_to(root.parent)
        steps.append(f"  {source} -> {target}  ({where}:{graph[source][target]})")
    return "\n".join(steps)


def test_the_modules_import_one_another_without_a_cycle() -> None:
    graph = import_graph(ROOT, PACKAGE)
    assert sum(map(len, graph.values())) > 50, "the import graph came out nearly empty"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle:\n" + describe(cycle or [], graph, ROOT, PACKAGE)


def test_no_module_is_over_450_lines() -> None:
    sizes = {
        path.relative_to(ROOT.parent).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in module_files(ROOT, PACKAGE).values()
    }
    over = {name: lines for name, lines in sorted(sizes.items()) if lines > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them by job): " + ", ".join(
        f"{name} ({lines})" for name, lines in over.items()
    )


def package_of(module: str) -> str:
    """The room a module lives in: a top-level module, or a subpackage of ``moa_local``."""
    return ".".join(module.split(".")[:2])


def package_graph(graph: Graph) -> Graph:
    """Which room imports which, with one importing line of each (first by module name)."""
    rooms: Graph = {}
    for source in sorted(graph):
        for target, line in graph[source].items():
            a, b = package_of(source), package_of(target)
            if a != b:
                rooms.setdefault(a, {}).setdefault(b, line)
    return rooms


def test_the_packages_import_one_another_one_way() -> None:
    graph = import_graph(ROOT, PACKAGE)
    rooms = package_graph(graph)
    named = {f"{PACKAGE}.{room}" for room in ("engine", "checks", "models", "machine", "backends")}
    assert named <= {package_of(module) for module in graph}, "a package the design names is gone"
    cycle = find_cycle(rooms)
    assert cycle is None, "packages that import each other: " + " -> ".join(cycle or [])


# What the engine must never reach: the front doors and whatever prints, listens or exits.
FRONT_DOORS = ("cli", "serve", "evals", "compat", "moa", "planning", "doctor", "chat")
OUTSIDE_LIBRARIES = ("click", "tqdm", "uvicorn", "starlette", "prompt_toolkit", "matplotlib")


def test_the_engine_knows_nothing_of_its_front_doors() -> None:
    graph = import_graph(ROOT, PACKAGE)
    reached = {
        f"{source} -> {target}"
        for source, targets in graph.items()
        if source.startswith(f"{PACKAGE}.engine")
        for target in targets
        if package_of(target).removeprefix(f"{PACKAGE}.") in FRONT_DOORS
    }
    assert not reached, "the engine imports a front door: " + ", ".join(sorted(reached))
    for path in (ROOT / "engine").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            for name in names:
                assert name.split(".")[0] not in OUTSIDE_LIBRARIES, f"{path}: imports {name}"


def test_checks_stand_on_their_own() -> None:
    """Checks run model-written code; they know nothing of models, the machine or the engine."""
    rooms = package_graph(import_graph(ROOT, PACKAGE))
    assert set(rooms.get(f"{PACKAGE}.checks", {})) <= {f"{PACKAGE}.errors"}
