"""The shape of the package, checked from its source: the pipeline's direction, no import circles, small modules.

Imports are read with ``ast`` from every module, including the ones inside functions (a lazy import is still a
dependency), so these tests need no model.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "ecco_widgets"
PACKAGE = "ecco_widgets"
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _resolve(module: str, path: Path, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The package modules an import statement names (a name imported from a package may be a submodule)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith(PACKAGE)]
    if node.level:
        base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith(PACKAGE):
        return []
    found = [target] if target in MODULES else []
    found += [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
    return found or [target]


def imports_of(module: str) -> set[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(t for t in _resolve(module, path, node) if t != module)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_circle_of_imports():
    """Tarjan's strongly connected components over every import (module level and lazy): all of size one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH.get(node, ()):
            if nxt not in GRAPH:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert not circles, circles


@pytest.mark.parametrize("stage, allowed", [
    ("errors", set()),
    ("tokens", set()),
    ("memory", {"errors"}),
    ("progress", set()),
    ("writable", {"errors"}),
    ("capture", {"errors", "progress"}),
    ("patch_hooks", {"capture"}),  # beside capture: hooks that record or overwrite outputs (patching, splicing)
    ("adapter", {"errors", "capture"}),
    ("analysis", {"errors", "capture", "patch_hooks", "progress", "memory"}),
    ("results", {"errors", "analysis", "views", "memory", "progress"}),
    ("views", {"errors"}),
    ("models", {"errors", "adapter", "capture", "patch_hooks", "analysis", "results", "memory", "tokens", "progress"}),
    ("batch", {"errors", "analysis", "results", "views", "models", "memory", "progress", "writable"}),
    # Ecco's API (from ecco_widgets import ecco): a facade over the native stages, which never import it back
    ("ecco", {"errors", "tokens", "adapter", "analysis", "results", "views", "models", "memory", "progress"}),
])
def test_each_stage_imports_only_earlier_stages(stage, allowed):
    """The pipeline runs one way: loading/models -> adapter -> capture -> analysis -> results -> views."""
    wrong = {(m, t) for m, targets in GRAPH.items() if _stage(m) == stage
             for t in targets if _stage(t) not in allowed | {stage, ""}}
    assert not wrong, sorted(wrong)


def test_nothing_native_imports_the_ecco_facade():
    """The native API stays as it is: ecco_widgets.ecco adapts Ecco's calls to it, never the other way."""
    wrong = {(m, t) for m, targets in GRAPH.items() if _stage(m) != "ecco" for t in targets if _stage(t) == "ecco"}
    assert not wrong, sorted(wrong)


def test_analysis_never_imports_a_view_or_a_result():
    wrong = {(m, t) for m, targets in GRAPH.items() if _stage(m) == "analysis"
             for t in targets if _stage(t) in ("views", "results", "models")}
    assert not wrong


def test_every_module_is_small():
    sizes = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    assert not {m: n for m, n in sizes.items() if n > MAX_LINES}


def test_no_private_imports_of_other_packages():
    """The runtime uses only the public names of its dependencies (no ``pkg._private`` module or name)."""
    wrong = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module \
                    and not node.module.startswith(PACKAGE):
                parts = node.module.split(".") + [a.name for a in node.names]
                if any(p.startswith("_") and p != "__future__" for p in parts):
                    wrong.append((module, node.module, [a.name for a in node.names]))
            if isinstance(node, ast.Import):
                wrong += [(module, a.name) for a in node.names if any(p.startswith("_") for p in a.name.split("."))]
    assert not wrong, wrong


def test_captum_is_not_a_runtime_dependency():
    import tomllib

    project = tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("captum") for d in project["dependencies"])
    assert any(d.startswith("captum") for d in project["optional-dependencies"]["test"])
    assert not [m for m, p in MODULES.items() if re.search(r"^\s*(import|from) captum", p.read_text(), re.M)]
