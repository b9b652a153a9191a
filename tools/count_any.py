"""Count ``Any`` in the public signatures of reviewflow.

A public signature is a function or method whose name and every enclosing name (module
path, class) has no leading underscore (``__init__`` and other dunders count as public).
Each ``Any`` in a parameter or return annotation counts once; ``--list`` prints them.

    python tools/count_any.py [--list] [SRC]
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path


def _public(name: str) -> bool:
    return not name.startswith("_") or (name.startswith("__") and name.endswith("__"))


def _anys(node: ast.expr | None) -> int:
    if node is None:
        return 0
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a string annotation
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return 0
    return sum(1 for n in ast.walk(node)
               if (isinstance(n, ast.Name) and n.id == "Any")
               or (isinstance(n, ast.Attribute) and n.attr == "Any"))


_Function = ast.FunctionDef | ast.AsyncFunctionDef


def _functions(body: list[ast.stmt], where: str) -> Iterator[tuple[str, _Function]]:
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _public(node.name):
            yield f"{where}.{node.name}", node
        elif isinstance(node, ast.ClassDef) and _public(node.name):
            yield from _functions(node.body, f"{where}.{node.name}")


def count(src: Path) -> list[tuple[str, int]]:
    """Return (qualified name, number of Any) for every public signature holding one."""
    found = []
    for path in sorted(src.rglob("*.py")):
        parts = path.relative_to(src.parent).with_suffix("").parts
        if not all(_public(p) for p in parts):
            continue
        module = ".".join(p for p in parts if p != "__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name, fn in _functions(tree.body, module):
            a = fn.args
            params = [*a.posonlyargs, *a.args, *a.kwonlyargs,
                      *([a.vararg] if a.vararg else []), *([a.kwarg] if a.kwarg else [])]
            n = sum(_anys(p.annotation) for p in params) + _anys(fn.returns)
            if n:
                found.append((name, n))
    return found


def main(argv: list[str]) -> int:
    listing = "--list" in argv
    args = [a for a in argv if a != "--list"]
    src = Path(args[0]) if args else Path(__file__).resolve().parent.parent / "src" / "reviewflow"
    found = count(src)
    if listing:
        for name, n in found:
            print(f"{n:3}  {name}")
    print(sum(n for _, n in found))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
