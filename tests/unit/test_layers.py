"""Layers point one way: entry points -> core -> settings and names. Read from the source, so a
function-local import (the usual way to hide a loop) counts as much as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "santelake"
# The bottom: imports nothing of santelake but each other.
BOTTOM = {"settings", "names", "files", "errors", "digest", "locations"}
# The core: what runs in a pod. Never the local runtime, the CLI or the demo.
CORE = ("ingest", "lake", "policy", "schema", "pseudonymise", "synth", "audit", "access/enforce.py")
ENTRY_POINTS = ("santelake.runtime", "santelake.cli", "santelake.demo")
# Core modules that are entry points themselves (subcommands), or local-runtime helpers.
NOT_CORE = {"ingest/cli.py", "policy/cli.py", "pseudonymise/cli.py", "audit/cli.py"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name.startswith("santelake")}


def _modules(part: str) -> list[Path]:
    path = PACKAGE / part
    return [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))


@pytest.mark.parametrize("name", sorted(BOTTOM))
def test_the_bottom_imports_only_the_bottom(name: str) -> None:
    wrong = {m for m in _imports(PACKAGE / f"{name}.py") if m.split(".")[1] not in BOTTOM}
    assert not wrong, f"santelake/{name}.py imports {sorted(wrong)}"


@pytest.mark.parametrize("part", CORE)
def test_the_core_never_imports_an_entry_point(part: str) -> None:
    for path in _modules(part):
        if path.relative_to(PACKAGE).as_posix() in NOT_CORE:
            continue
        wrong = {m for m in _imports(path) if m.startswith(ENTRY_POINTS)}
        assert not wrong, f"{path.relative_to(PACKAGE)} imports {sorted(wrong)}"


def _graph() -> dict[str, set[str]]:
    """Module -> the santelake modules it imports anywhere in it (a package only for a name it defines)."""
    modules = {"santelake." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__"): p
               for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in modules:
                submodules = {f"{node.module}.{a.name}" for a in node.names} & set(modules)
                deps |= submodules
                if len(submodules) < len(node.names):
                    deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in modules}
        graph[name] = deps - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_loop_even_through_a_function_local_import() -> None:
    assert _cycles(_graph()) == []


def test_a_loop_is_found() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
