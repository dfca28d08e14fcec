"""The adapter's import graph: no cycle anywhere, and the layers point one way.

Read from the source with :mod:`ast`. Imports inside functions count: a deferred import still makes
one module depend on another, it only hides the cycle from Python. Imports under ``if TYPE_CHECKING:``
do not: they exist for annotations only and never run. The picture it enforces:

    dap ─► handlers ─► dump ◄─ lsp          (dump never imports dap, handlers or lsp)

and inside the dump layer, sub-packages only import the ones listed before them in ``DUMP_LAYERS``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "adapter" / "vmcore_dap"

#: The dump layer's sub-packages, lowest first: each may import only those before it (and
#: ``vmcore_dap.dump.errors`` / ``vmcore_dap.errors``, which sit beside them).
DUMP_LAYERS = (
    "arch",
    "opening",
    "memory",
    "values",
    "kernel",
    "structures",
    "stacks",
    "disassembly",
    "sources",
    "console",
    "report",
)


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` blocks."""
    nodes: list[ast.AST] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        nodes.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                pending.extend(child.orelse)
                continue
            pending.append(child)
    return nodes


def import_graph() -> dict[str, set[str]]:
    """Map each ``vmcore_dap`` module to the ``vmcore_dap`` modules it imports anywhere in its body."""
    modules = {_module_name(p): p for p in PACKAGE_ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in _runtime_nodes(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, path.name == "__init__.py", node)
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for target in targets:
                # "from pkg import mod" names a module; "from mod import func" names mod itself.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target.startswith("vmcore_dap") and target != name:
                    graph[name].add(target)
    return graph


def unresolved_imports() -> list[str]:
    """``vmcore_dap`` modules named by an import that do not exist (mypy's ignore_missing_imports and
    ruff both let these pass; Python only fails when the import runs)."""
    modules = {_module_name(p): p for p in PACKAGE_ROOT.rglob("*.py")}
    missing = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            named: list[str] = []
            if isinstance(node, ast.Import):
                named = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                named = [_resolve(name, path.name == "__init__.py", node)]
            missing += [f"{name}: {m}" for m in named if m.startswith("vmcore_dap") and m not in modules]
    return missing


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
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
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read() -> None:
    graph = import_graph()
    assert "vmcore_dap.dump.kernel.tasks" in graph["vmcore_dap.dump.stacks.frames"]
    # A deferred (function-local) import counts; a TYPE_CHECKING one does not.
    assert "vmcore_dap.dump.console.extra_commands" in graph["vmcore_dap.dump.console.commands"]
    assert "vmcore_dap.dap.channel" not in graph["vmcore_dap.dap.session"]


def test_every_import_of_ours_names_a_module() -> None:
    assert unresolved_imports() == []


def test_no_import_cycle() -> None:
    assert _cycles(import_graph()) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _edges(sources: str, targets: tuple[str, ...]) -> set[tuple[str, str]]:
    """Imports from a module under ``sources`` of a module under one of ``targets``."""
    return {
        (src, dst)
        for src, dsts in import_graph().items()
        if src.startswith(sources)
        for dst in dsts
        if dst.startswith(targets)
    }


def test_the_dump_layer_knows_no_protocol() -> None:
    protocol = ("vmcore_dap.dap", "vmcore_dap.handlers", "vmcore_dap.lsp", "vmcore_dap.cli")
    assert _edges("vmcore_dap.dump", protocol) == set()


def test_the_language_server_never_imports_the_adapter_protocol() -> None:
    assert _edges("vmcore_dap.lsp", ("vmcore_dap.dap", "vmcore_dap.handlers")) == set()


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) >= 3 and parts[1] == "dump" and parts[2] in DUMP_LAYERS:
        return parts[2]
    return None


def test_every_dump_subpackage_has_a_layer() -> None:
    subpackages = {p.name for p in (PACKAGE_ROOT / "dump").iterdir() if (p / "__init__.py").exists()}
    assert subpackages <= set(DUMP_LAYERS)


@pytest.mark.parametrize("layer", DUMP_LAYERS)
def test_dump_layers_point_down(layer: str) -> None:
    allowed = set(DUMP_LAYERS[: DUMP_LAYERS.index(layer) + 1])
    upward = {
        (src, dst)
        for src, dsts in import_graph().items()
        if _layer(src) == layer
        for dst in dsts
        if _layer(dst) is not None and _layer(dst) not in allowed
    }
    assert upward == set()


def test_subpackages_stay_small() -> None:
    """A room of a handful of files: at most ten modules per dump sub-package."""
    sizes = {
        p.name: len([m for m in p.glob("*.py") if m.name != "__init__.py"])
        for p in (PACKAGE_ROOT / "dump").iterdir()
        if p.is_dir() and (p / "__init__.py").exists()
    }
    assert {name: n for name, n in sizes.items() if n > 10} == {}


def test_triage_uses_the_dump_layer_only() -> None:
    """Triage runs in worker processes with no client: it reads dumps, never speaks a protocol."""
    protocol = ("vmcore_dap.dap", "vmcore_dap.handlers", "vmcore_dap.lsp", "vmcore_dap.cli")
    assert _edges("vmcore_dap.triage", protocol) == set()
    assert _edges("vmcore_dap.dump", ("vmcore_dap.triage",)) == set()
    assert len(list((PACKAGE_ROOT / "triage").glob("*.py"))) <= 11  # ten modules and __init__
