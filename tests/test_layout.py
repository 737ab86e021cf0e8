"""The package's shape: no import cycles between modules, and inference never reaches training code."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _graph() -> dict[str, set[str]]:
    """Module -> modules it imports (top-level and inside functions), within voicebox."""
    mods: dict[str, Path] = {}
    for path in (SRC / "voicebox").rglob("*.py"):
        parts = path.with_suffix("").relative_to(SRC).parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package
                    for _ in range(node.level - 1):
                        up = up.rpartition(".")[0]
                    base = f"{up}.{base}" if base else up
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names
                ]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                # a package's __init__ importing its own children is not a cycle
                if target in mods and target != name and not target.startswith(name + "."):
                    graph[name].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or None (depth-first search over every module)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n) :] + [n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_cycles():
    cycle = _cycle(_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_inference_never_imports_training_code():
    graph = _graph()
    inference = [m for m in graph if not m.startswith("voicebox.model.training")]
    leaks = [(m, n) for m in inference for n in graph[m] if n.startswith("voicebox.model.training")]
    # only the commands that train or build corpora may reach it
    allowed = {"voicebox.cli.model", "voicebox.cli.data"}
    assert [(m, n) for m, n in leaks if m not in allowed] == []
