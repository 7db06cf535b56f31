"""The import graph of licscan (docs/architecture.md, "Layers"): no cycle between modules, and no layer imports a
layer above it. Every import counts, also those inside functions (they hide cycles, they do not remove them)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "licscan"

# Layers, lowest first: a module may import the layers listed before its own, and within its own layer only its
# own package (licscan.report.x may import licscan.report.y, not licscan.sbom.z), never a layer after it.
# Imports under `if TYPE_CHECKING:` are for annotations only and never run: they are not counted.
LAYERS = [
    {"licscan", "licscan.knowledge", "licscan.model", "licscan.findings", "licscan.vpath", "licscan.clock",
     "licscan.escape", "licscan.schemas", "licscan.streamed"},
    {"licscan.binary"},
    {"licscan.inventory"},
    {"licscan.identify"},
    {"licscan.cache"},
    {"licscan.scan"},
    {"licscan.rules"},
    {"licscan.sbom", "licscan.report"},  # siblings: neither imports the other
    {"licscan.audit"},
    {"licscan.cli"},
    {"licscan.__main__"},
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and _is_type_checking(block.test)
                 for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("licscan"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("licscan"):
                continue
            for alias in node.names:  # `from licscan.binary import elf` imports the module licscan.binary.elf
                candidate = f"{module}.{alias.name}"
                out.add(candidate if (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists()
                        or (PACKAGE.parent / candidate.replace(".", "/")).is_dir() else module)
    out.discard(name)
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules} for name, path in modules.items()}


def _layer(module: str) -> tuple[int, str]:
    """(layer index, the package of that layer the module belongs to)."""
    best, best_len, package = None, -1, ""
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len, package = index, len(prefix), prefix
    if best is None:
        pytest.fail(f"{module} belongs to no layer: add it to LAYERS and docs/architecture.md")
    return best, package


def _allowed(importer: str, imported: str) -> bool:
    (mine, my_package), (theirs, their_package) = _layer(importer), _layer(imported)
    return theirs < mine or (theirs == mine and (my_package == their_package or mine == 0))


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_upward_import():
    graph = _graph()
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if not _allowed(a, b))
    assert not upward, "imports of a higher layer:\n" + "\n".join(upward)


def test_fact_schema_matches_the_model_and_is_shipped():
    from licscan.rules import factschema

    assert factschema.problems() == []
    assert factschema.SCHEMA_FILE.read_text(encoding="utf-8") == factschema.render(), (
        "licscan/schemas/facts.schema.json is stale: run python -m licscan.rules.factschema")


def test_every_package_is_installed():
    """pyproject.toml lists the packages explicitly: a new subpackage missing there is left out of the wheel."""
    import tomllib

    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {_module_name(p.parent / "__init__.py") for p in PACKAGE.rglob("*.py") if p.name == "__init__.py"}
    assert not found - listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
    folders = {_module_name(p / "__init__.py") for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__"
               and any(p.glob("*.py"))}
    assert folders <= found, f"folders of modules without __init__.py: {sorted(folders - found)}"
