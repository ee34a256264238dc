"""The import graph of bench/, encoders/ and heads/, read from the source: no cycles, and layers stay apart.

Every ``import`` counts, at module level or inside a function (a lazy import hides a
cycle from Python, not from this test); imports under ``if TYPE_CHECKING:`` do not run
and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "encoders", "heads")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_modules() -> dict[str, Path]:
    """Every module of the three packages, by dotted name."""
    return {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for statement in node.body for child in ast.walk(statement))
    return skipped


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports anywhere in its source (the most specific module each import names)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = source_modules()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (first module repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_graph_sees_lazy_and_relative_imports(tmp_path):
    """The reader finds a function-level import and resolves names to modules, so a hidden cycle would show."""
    graph = import_graph()
    assert "bench.training.runner" in graph["bench.cli.run"]
    assert "encoders" in graph["bench.config"]  # imported inside RunConfig.__post_init__
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


@pytest.mark.parametrize(
    ("lower", "upper"),
    [
        ("bench.inference", "bench.training"),
        ("bench.machine", "bench.training"),
        ("bench.model", "bench.training"),
        ("bench.preparation", "bench.training"),
        ("bench.evaluation", "bench.training"),
        ("bench.recording", "bench.training"),
        ("bench.baselines", "bench.training"),
    ],
)
def test_layers_do_not_import_upwards(lower: str, upper: str):
    """Prediction, the machine layer, the shared model, preparation, evaluation and recording never import training."""
    graph = import_graph()
    assert lower in graph, f"{lower} is not a package: the rule would hold for nothing"
    offending = sorted(
        f"{name} → {target}"
        for name, targets in graph.items()
        if name == lower or name.startswith(lower + ".")
        for target in targets
        if target == upper or target.startswith(upper + ".")
    )
    assert not offending, offending
