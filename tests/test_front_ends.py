"""The front ends sit on top: the library never imports the CLI, and the CLI has no import cycle.

Every import counts, at module level, in a function or under ``TYPE_CHECKING`` (read with ``ast``).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "reviewflow"


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__")


def _imports(path: Path) -> set[str]:
    """Every reviewflow module ``path`` imports (``from a import b`` counts ``a`` and ``a.b``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m == "reviewflow" or m.startswith("reviewflow.")}


def test_no_module_outside_the_cli_imports_the_cli() -> None:
    offenders = {
        _module(p): sorted(m for m in _imports(p) if m == "reviewflow.cli" or m.startswith("reviewflow.cli."))
        for p in SRC.rglob("*.py") if "cli" not in p.relative_to(SRC).parts[:1]
    }
    assert {m: i for m, i in offenders.items() if i} == {}


def test_the_cli_modules_import_each_other_without_a_cycle() -> None:
    paths = sorted((SRC / "cli").glob("*.py"))
    names = {_module(p) for p in paths}
    edges = {_module(p): {m for m in _imports(p) if m in names} - {_module(p)} for p in paths}
    # the package's own __init__ registers the command modules; they never import it back
    assert not any("reviewflow.cli" in edges[m] for m in names - {"reviewflow.cli"}
                   if m != "reviewflow.cli.__main__")
    state: dict[str, int] = {}

    def visit(m: str, path: tuple[str, ...]) -> None:
        if state.get(m) == 2:
            return
        assert state.get(m) != 1, f"import cycle: {' -> '.join((*path, m))}"
        state[m] = 1
        for n in sorted(edges.get(m, ())):
            visit(n, (*path, m))
        state[m] = 2

    for m in sorted(names):
        visit(m, ())
