"""The package's layers: imports point one way (CLI -> repro/sweep -> labs -> core), with no cycles.

Core = ``data``, ``models``, ``train``, ``utils``, ``errors``; labs = ``dynamics``, ``attention``, ``wide``; the top
layer = ``repro``, ``sweep`` and ``cli``; ``report`` reads only the claims format (JSON), so it imports no core
training code, no lab and no reproduction. Imports are read from the source with ``ast`` (including imports inside
functions), and string literals that name a lab module count as loading it by name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "innerworks"
CORE = {"data", "models", "train", "utils", "errors"}
LABS = {"dynamics", "attention", "wide"}
TOP = {"repro", "sweep", "cli", "__main__"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in SRC.rglob("*.py")}


def _imports(path: Path, name: str) -> set[str]:
    """Every ``innerworks.*`` module this file imports (relative imports resolved), at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("innerworks")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base.startswith("innerworks"):
                found.add(base)
                found |= {f"{base}.{a.name}" for a in node.names}
    return found


def _strings(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and n.value.startswith("innerworks.")}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "innerworks"


def _graph() -> nx.DiGraph:
    mods = _modules()
    g = nx.DiGraph()
    for name, path in mods.items():
        g.add_node(name)
        for target in _imports(path, name):
            # `from innerworks.x import y` may name a module or an attribute: keep the longest module prefix
            while target not in mods and "." in target:
                target = target.rpartition(".")[0]
            if target in mods and target != name:
                g.add_edge(name, target)
    return g


def _violations(allowed: dict[str, set[str]]) -> list[str]:
    bad = []
    for a, b in _graph().edges:
        la, lb = _layer(a), _layer(b)
        if la in allowed and lb not in allowed[la] and lb != la:
            bad.append(f"{a} -> {b}")
    return bad


def test_core_imports_no_lab_report_or_top_layer() -> None:
    allowed = {layer: CORE | {"innerworks"} for layer in CORE}
    assert _violations(allowed) == []


def test_core_loads_no_lab_by_name() -> None:
    mods = _modules()
    named = {name: sorted(s for s in _strings(path) if _layer(s) in LABS | TOP | {"report"})
             for name, path in mods.items() if _layer(name) in CORE}
    assert {k: v for k, v in named.items() if v} == {}


def test_labs_import_only_core_report_figures_and_themselves() -> None:
    bad = [e for e in _violations({lab: CORE | {"innerworks", "report"} for lab in LABS})]
    assert bad == []
    # a lab may use the report's figure writer, never its claims/HTML side
    edges = [(a, b) for a, b in _graph().edges if _layer(a) in LABS and _layer(b) == "report"]
    assert all(b == "innerworks.report.figures" for _, b in edges), edges


def test_report_reads_only_the_claims_format() -> None:
    allowed = {"report": {"report", "utils", "errors", "innerworks"}}
    assert _violations(allowed) == []


def test_no_import_cycles() -> None:
    g = _graph()
    # a package's __init__ re-exporting its own submodules is not a cycle between layers of code
    g.remove_edges_from([(a, b) for a, b in list(g.edges) if b.startswith(a + ".")])
    cycles = list(nx.simple_cycles(g))
    assert cycles == [], cycles[:5]


@pytest.mark.parametrize("limit", [600])
def test_no_module_far_over_the_size_guideline(limit: int) -> None:
    """The guideline is ~500 lines a module; nothing may grow past ``limit`` unnoticed."""
    sizes = {name: len(p.read_text(encoding="utf-8").splitlines()) for name, p in _modules().items()}
    assert {k: v for k, v in sizes.items() if v > limit} == {}
