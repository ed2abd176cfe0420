"""The house's structure, enforced: layers import only downwards, nothing imports in a circle.

The allowed directions are written out in `docs/architecture.md`; this test is their guard.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "glaze_pipeline"

# What each part of the core may import from glaze_pipeline (besides itself). Order = height.
CORE_LAYERS: dict[str, set[str]] = {
    "core.model": {"errors"},
    "core.storage": {"errors", "config", "core.model"},
    "core.web": {"errors", "config", "core.model"},
    "core.intake": {"errors", "config", "core.model", "core.storage"},
    "core.providers": {"errors", "config", "core.aio", "core.model", "core.storage", "core.web"},
    "core.pipeline": {
        "errors",
        "config",
        "core.aio",
        "core.model",
        "core.storage",
        "core.web",
        "core.intake",
        "core.providers",
    },
    "core.aio": set(),
}
SHELL_ONLY = ("defs", "definitions", "record_defs", "record_definitions", "cli", "terminal", "runner", "api", "sandbox")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every glaze_pipeline module this file imports, at any depth (function-level imports count)."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: max(0, len(package.split(".")) - node.level + 1)]
                base = ".".join([*up, base] if base else up)
                base = "glaze_pipeline." + base
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        found |= {n.removeprefix("glaze_pipeline.") for n in names if n.startswith("glaze_pipeline")}
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer_of(name: str) -> str | None:
    return next((layer for layer in CORE_LAYERS if name == layer or name.startswith(layer + ".")), None)


def allowed(importer: str, imported: str) -> bool:
    own = layer_of(importer)
    if own is None:
        return True
    if layer_of(imported) == own:
        return True
    return any(imported == ok or imported.startswith(ok + ".") for ok in CORE_LAYERS[own])


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("core")))
def test_core_modules_import_only_their_own_layer_and_the_ones_below(name: str) -> None:
    wrong = sorted(i for i in imports_of(MODULES[name]) if i in MODULES and not allowed(name, i))
    assert not wrong, f"{name} reaches {wrong}; allowed below it: {sorted(CORE_LAYERS[layer_of(name) or ''])}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("core")))
def test_the_core_imports_no_dagster_and_nothing_of_the_shell(name: str) -> None:
    tree = ast.parse(MODULES[name].read_text())
    third_party = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    } | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not third_party & {"dagster", "dagster_postgres", "dagster_dbt", "dagster_celery"}
    assert not {i for i in imports_of(MODULES[name]) if i.split(".")[0] in SHELL_ONLY}


def test_the_layer_rule_catches_a_wrong_way_import() -> None:
    """The rule itself: web reaching into providers or storage would be refused."""
    assert not allowed("core.web.crawl_batch", "core.providers.llm.evidence")
    assert not allowed("core.web.fetch", "core.storage.cache")
    assert not allowed("core.model.fields", "core.pipeline.merge")
    assert not allowed("core.storage.landing", "core.pipeline.merge")
    assert allowed("core.providers.website", "core.web.crawl_batch")


def test_no_module_imports_in_a_circle() -> None:
    graph = {name: {i for i in imports_of(path) if i in MODULES and i != name} for name, path in MODULES.items()}
    # A package's __init__ importing its children is not a cycle of meaning; only count module → module edges.
    seen: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        if node in stack:
            cycles.append([*stack[stack.index(node) :], node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        stack.pop()

    for node in sorted(graph):
        visit(node)
    assert not cycles, " -> ".join(cycles[0])
