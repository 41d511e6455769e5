"""The package's shape: no import cycle, layers import downward only, modules stay small.

Every import counts, function-level ones included: a lazy import hides a cycle from Python,
not from the design.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "citybrain_traffic"
ROOT = "citybrain_traffic"
MAX_MODULE_LINES = 400
#: Layers that must never import the ones listed (``control`` decides; it never simulates).
FORBIDDEN = {
    "control": ("harness", "experiments", "cli", "service"),
    "harness": ("experiments", "cli", "service"),
    "optimize": ("control", "harness", "experiments"),
    "forecast": ("control", "harness", "experiments"),
    "sim": ("control", "harness", "experiments"),
}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module of the package that ``name`` imports, anywhere in its code."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            # Importing a.b.c runs a/__init__ and a/b/__init__ too.
            parts = target.split(".")
            for k in range(2, len(parts) + 1):
                candidate = ".".join(parts[:k])
                if candidate in modules and candidate != name:
                    found.add(candidate)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle():
    # A package's __init__ importing its own submodules is how packages expose their API.
    graph = {
        name: {t for t in targets if not name.startswith(t + ".")}
        for name, targets in _graph().items()
    }
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_downward_only(layer):
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in _graph().items()
        if name.startswith(f"{ROOT}.{layer}.") or name == f"{ROOT}.{layer}"
        for target in targets
        if any(target.startswith(f"{ROOT}.{other}") for other in FORBIDDEN[layer])
    )
    assert wrong == []


def test_only_the_registry_imports_every_controller():
    controllers = {
        f"{ROOT}.control.{p.stem}"
        for p in (PACKAGE / "control").glob("*.py")
        if p.stem
        not in (
            *("__init__", "base", "signal", "switching", "sensing", "realtime", "scheduled"),
            *("adaptive_setup", "sequencing", "greens"),
        )
    }
    importers = {
        name
        for name, targets in _graph().items()
        if controllers <= targets | {name} and not name.startswith(f"{ROOT}.control")
    }
    assert importers == {f"{ROOT}.experiments.registry"}


def test_no_module_is_over_the_size_limit():
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}
