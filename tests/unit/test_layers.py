"""The dependency rule: packages import only packages of lower layers, and no package cycles.

Read from the source (AST), so nothing is imported. The layers, bottom first, and why each
package sits where it does are written in ``docs/architecture.md`` ("The dependency rule").
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("tenure", "services", "streams")

LAYERS: tuple[tuple[str, ...], ...] = (
    # 0. Foundation: the error root and the settings everything may read.
    ("tenure", "tenure.errors", "tenure.config"),
    # 1. The pure core: events -> state -> view, and the event contract (schemas, envelope).
    ("tenure.domain", "tenure.contract"),
    # 2. Pure computation over many people's views: survival, cohorts, return times.
    ("tenure.analytics",),
    # 3. Adapters to one outside system each: Postgres, processes and servers, HTTP producers.
    ("tenure.storage", "tenure.runtime", "tenure.sdk"),
    # 4. Adapters built on those: the event log (Kafka; its dead letters are also kept in
    #    Postgres), the pseudonymisation boundary (uses the vault), the simulated population.
    ("tenure.eventlog", "tenure.privacy", "tenure.simulation"),
    # 5. The projection: folds the log into the read models.
    ("tenure.projection",),
    # 6. The HTTP services, the stream workers, the platform supervisor.
    ("services", "streams", "tenure.platform"),
    # 7. Entry points: one run(settings) per process, and the bootstrap that wires them.
    ("tenure.entrypoints",),
    # 8. The command line: parses arguments, builds the settings once, calls an entry point.
    ("tenure.cli",),
)

ALLOWED_UPWARD: Mapping[tuple[str, str], str] = {
    # (importing module, imported package): why it is still here and what removes it. The
    # test below fails once an entry's import is gone, so the list can only shrink.
}


def rank_of(package: str) -> int:
    """The layer of a package (fails for a package no layer names)."""
    for rank, names in enumerate(LAYERS):
        if package in names:
            return rank
    raise AssertionError(f"{package} is in no layer: place it in LAYERS and docs/architecture.md")


def package_of(module: str) -> str | None:
    """The layered package a module belongs to (``None``: outside Tenure)."""
    parts = module.split(".")
    if parts[0] == "tenure":
        return ".".join(parts[:2])
    if parts[0] in SOURCES:
        return parts[0]
    return None


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path, module: str, known: set[str]) -> Iterable[str]:
    """The modules ``path`` imports (``from a import b`` names ``a.b`` when that is a module)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                name = f"{source}.{alias.name}"
                yield name if name in known else source


def module_imports() -> dict[str, set[str]]:
    """Every Tenure module and the Tenure modules or packages it imports."""
    paths = {_module_name(p): p for source in SOURCES for p in (ROOT / source).rglob("*.py")}
    return {
        module: {m for m in _imported(path, module, set(paths)) if package_of(m) is not None}
        for module, path in sorted(paths.items())
    }


def upward_edges(imports: Mapping[str, Iterable[str]]) -> set[tuple[str, str]]:
    """``(module, package)`` for each import of a package in the same or a higher layer."""
    edges = set()
    for module, targets in imports.items():
        source = package_of(module)
        assert source is not None
        for target in targets:
            package = package_of(target)
            assert package is not None
            if package != source and rank_of(package) >= rank_of(source):
                edges.add((module, package))
    return edges


def package_cycles(imports: Mapping[str, Iterable[str]], modules: Iterable[str]) -> list[set[str]]:
    """Groups of (sub)packages that import each other, directly or through others.

    A node is a directory package (``tenure.storage``, ``services.query``...); an import
    of a package or of a module in it counts for that package.
    """
    known = set(modules)

    def node(module: str) -> str:
        while module not in known and "." in module:
            module = module.rpartition(".")[0]
        return module

    def directory(module: str, imported: bool) -> str:
        # A module's package; an imported package (its __init__) stands for itself.
        if imported and module in PACKAGES:
            return module
        return module.rpartition(".")[0] or module

    graph: dict[str, set[str]] = defaultdict(set)
    for module, targets in imports.items():
        here = directory(module, imported=False)
        for target in targets:
            there = directory(node(target), imported=True)
            if there != here and not here.startswith(there + "."):
                graph[here].add(there)
    return _strongly_connected(graph)


def _strongly_connected(graph: Mapping[str, set[str]]) -> list[set[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in list(graph):
        if v not in index:
            visit(v)
    return groups


PACKAGES = {
    _module_name(p) for source in SOURCES for p in (ROOT / source).rglob("__init__.py")
} | set(SOURCES)


def test_every_package_is_in_a_layer() -> None:
    packages = {package_of(m) for m in module_imports()}
    for package in packages:
        assert package is not None
        rank_of(package)


def test_imports_only_point_down() -> None:
    upward = upward_edges(module_imports()) - set(ALLOWED_UPWARD)
    assert not upward, "imports pointing up or sideways (see docs/architecture.md):\n" + "\n".join(
        f"  {module} -> {package}" for module, package in sorted(upward)
    )


def test_the_allowlist_only_names_edges_that_still_exist() -> None:
    stale = set(ALLOWED_UPWARD) - upward_edges(module_imports())
    assert not stale, f"fixed: remove from ALLOWED_UPWARD: {sorted(stale)}"


def test_no_cycles_between_packages() -> None:
    imports = module_imports()
    allowed = {(module, package) for module, package in ALLOWED_UPWARD}
    kept = {
        module: {t for t in targets if (module, package_of(t)) not in allowed}
        for module, targets in imports.items()
    }
    assert package_cycles(kept, imports) == []


def test_the_checks_catch_an_upward_import_and_a_cycle() -> None:
    imports = {
        "tenure.domain.x": {"tenure.projection.y"},
        "tenure.projection.y": {"tenure.domain.x"},
        "tenure.cli.z": {"services.query.app"},
    }
    assert upward_edges(imports) == {("tenure.domain.x", "tenure.projection")}
    assert package_cycles(imports, imports) == [{"tenure.domain", "tenure.projection"}]
