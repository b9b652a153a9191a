"""The shape of the package: no import cycle, no module past 600 lines, layers kept.

The layers themselves (front ends → campaign → engine → store → pure rules → model) are
import-linter contracts in ``pyproject.toml`` (``[tool.importlinter]``), checked here and by
``lint-imports`` in ``.ci/run``. The cycle check counts every import, function-level and
``TYPE_CHECKING`` ones included: a cycle held together by a lazy import is still a knot.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import grimp
import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "reviewflow"
#: A module longer than this is two modules (docs/explanation/architecture.md).
MAX_LINES = 600


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("reviewflow", include_external_packages=False)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            recurse = False
            for j in range(i, len(edges[node])):
                nxt = edges[node][j]
                if nxt not in index:
                    work.append((node, j + 1))
                    work.append((nxt, 0))
                    recurse = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if recurse:
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    class Fake:
        modules: ClassVar[set[str]] = {"a", "b", "c"}

        @staticmethod
        def find_modules_directly_imported_by(m: str) -> set[str]:
            return {"a": {"b"}, "b": {"a"}, "c": {"a"}}[m]

    assert _cycles(Fake()) == [["a", "b"]]  # type: ignore[arg-type]


def test_no_import_cycle() -> None:
    cycles = _cycles(_graph())
    described = []
    graph = _graph()
    for component in cycles:
        first, second = component[0], component[1]
        there = graph.find_shortest_chain(importer=first, imported=second) or ()
        back = graph.find_shortest_chain(importer=second, imported=first) or ()
        described.append(f"{len(component)} modules {component}: {' -> '.join(there)} and "
                         f"{' -> '.join(back)}")
    assert described == []


def test_no_module_past_the_limit() -> None:
    long = sorted(
        f"{path.relative_to(SRC.parent)}: {n} lines"
        for path in SRC.rglob("*.py")
        if "migrations" not in path.parts
        and (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    )
    assert long == []


def test_the_library_never_imports_a_front_end() -> None:
    graph = _graph()
    front = ("reviewflow.cli", "reviewflow.web")
    offenders = []
    for module in sorted(graph.modules):
        if module.startswith(front) or module in ("reviewflow.__main__",):
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.startswith(front):
                offenders.append(f"{module} imports {imported}")
    assert offenders == []


def test_the_store_imports_no_engine_feature_or_front_end() -> None:
    graph = _graph()
    above = ("reviewflow.campaign", "reviewflow._engine", "reviewflow.cli", "reviewflow.export",
             "reviewflow.demo", "reviewflow.testing", "reviewflow.anchoring",
             "reviewflow._verify", "reviewflow._sealed", "reviewflow._policy_seal")
    offenders = sorted(
        f"{module} imports {imported}"
        for module in graph.modules if module.startswith("reviewflow.store")
        for imported in graph.find_modules_directly_imported_by(module)
        if imported.startswith(above)
    )
    assert offenders == []


def test_import_linter_contracts_hold() -> None:
    """The contracts of pyproject.toml, checked by import-linter's own command (in a
    subprocess: it sets up logging for itself, which would silence later tests' capture)."""
    pytest.importorskip("importlinter")
    root = SRC.parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC.parent), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()",
         "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_no_getattr_probe_of_the_projects_own_objects() -> None:
    """``getattr(obj, "_private", default)`` hides an access from mypy: rename the
    attribute and the code silently takes the default."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "getattr" and len(node.args) == 3
                    and isinstance(node.args[1], ast.Constant)
                    and isinstance(node.args[1].value, str)
                    and node.args[1].value.startswith("_")
                    and not node.args[1].value.startswith("__")):
                offenders.append(f"{path.relative_to(SRC.parent)}:{node.lineno} "
                                 f"getattr(..., {node.args[1].value!r}, ...)")
    assert offenders == []


def test_every_source_directory_is_a_package() -> None:
    """A directory of modules without ``__init__.py`` is a namespace package: it imports
    from a checkout, but setuptools' ``find`` leaves it out of the wheel."""
    missing = sorted(
        str(d.relative_to(SRC.parent)) for d in [SRC, *SRC.rglob("*")]
        if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py"))
        and not (d / "__init__.py").exists()
    )
    assert missing == []
