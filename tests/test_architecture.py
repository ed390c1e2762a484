"""The data flow is visible in the imports: no import cycle, no import against the flow.

Every ``import gifemo...`` / ``from gifemo... import`` in the package (module level and inside
functions) is read with ``ast``; the graph of gifemo modules must be acyclic, and each layer
may import only the layers listed in :data:`ALLOWED` (data -> models -> features -> training;
evaluation metrics beside them; the paper's report, the labelling app and the entry points on
top).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "gifemo"

BASE = {"atomic_file", "file_hash", "plain_config"}
ALLOWED = {  # layer -> layers it may import (besides itself and BASE)
    "base": set(),
    "data": set(),
    "eval": {"data"},
    "models": {"data", "eval.metrics"},
    "features": {"data", "models"},
    "checkpoint": {"data", "models"},
    "training": {"data", "models", "features", "eval", "checkpoint"},
    "rank": {"data", "models", "features", "checkpoint"},
    "ranking": {"data", "models", "features", "checkpoint", "rank"},
    "paper": {"data", "models", "features", "eval", "checkpoint", "training"},
    "collect": {"data", "models", "features", "eval", "checkpoint", "rank", "training"},
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PKG.rglob("*.py")}


def _resolve(name: str, modules: dict) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """gifemo module -> the gifemo modules it imports (anywhere in the file)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names]
            for t in targets:
                if t.startswith("gifemo.") or t == "gifemo":
                    dep = _resolve(t, modules)
                    if dep and dep != name and dep != "gifemo":
                        deps.add(dep)
        graph[name] = deps
    return graph


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) < 2:
        return "base"
    if parts[1] in BASE:
        return "base"
    if module == "gifemo.eval.metrics":
        return "eval.metrics"
    return parts[1]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _allowed(src: str, dst: str) -> bool:
    a, b = layer(src), layer(dst)
    if b == "base" or a == b or (a == "eval" and b == "eval.metrics"):
        return True
    if a == "eval.metrics":
        a = "eval"
    allowed = ALLOWED.get(a)
    if allowed is None:
        return False
    return b in allowed or (b == "eval.metrics" and "eval" in allowed)


def test_no_import_cycle():
    assert _cycles(import_graph()) == []


def test_every_module_belongs_to_a_known_layer():
    unknown = sorted({layer(m) for m in import_graph()} - set(ALLOWED) - {"eval.metrics"})
    assert unknown == [], f"new top-level part(s) {unknown}: add them to ALLOWED"


def test_imports_follow_the_data_flow():
    bad = sorted(f"{src} -> {dst}" for src, deps in import_graph().items() for dst in deps
                 if not _allowed(src, dst))
    assert bad == []


def test_only_the_c3d_module_imports_c3d():
    users = sorted(m for m, deps in import_graph().items() if "gifemo.models.c3d" in deps)
    assert users == []


@pytest.mark.parametrize("graph,expected", [
    ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
])
def test_cycle_finder_on_hand_made_graphs(graph, expected):
    assert _cycles(graph) == expected


def test_direction_rules_catch_a_backwards_import():
    assert not _allowed("gifemo.data.manifest", "gifemo.features.cache")
    assert not _allowed("gifemo.eval.callbacks", "gifemo.models.solvers")
    assert not _allowed("gifemo.models.recognizer", "gifemo.features.cache")
    assert _allowed("gifemo.features.cache", "gifemo.data.manifest")
    assert _allowed("gifemo.models.selection", "gifemo.eval.metrics")
