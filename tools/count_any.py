"""Count ``Any`` in the public signatures of reviewflow.

Public: every name a public module offers (its ``__all__``, else its names without a
leading underscore that reviewflow defines; and the ``reviewflow_*`` hook specifications),
wherever it is defined (a façade's re-exports count), and the public methods and
properties of public classes (``__init__`` included). Each ``Any`` in a parameter or
return annotation counts once per function, however many modules offer it. ``--list``
prints each function and its count.

    python tools/count_any.py [--list]
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import sys
from collections.abc import Callable, Iterator
from typing import Any

import reviewflow


def _anys(annotation: object) -> int:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    try:
        tree = ast.parse(text.replace("typing.", ""), mode="eval")
    except SyntaxError:
        return text.count("Any")
    return sum(1 for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "Any")


def _modules() -> Iterator[Any]:
    yield reviewflow
    for info in pkgutil.walk_packages(reviewflow.__path__, "reviewflow."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts) or "migrations" in parts:
            continue
        yield importlib.import_module(info.name)


def _public_names(module: Any) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is not None:  # and the hook specifications (reviewflow.hooks), public by name
        return [*names, *(n for n in vars(module) if n.startswith("reviewflow_"))]
    return [n for n, v in vars(module).items() if not n.startswith("_")
            and getattr(v, "__module__", "").startswith("reviewflow")]


def _functions(module: Any) -> Iterator[tuple[str, Callable[..., Any]]]:
    for name in _public_names(module):
        obj = getattr(module, name, None)
        if inspect.isfunction(obj):
            yield f"{obj.__module__}.{obj.__qualname__}", obj
        elif inspect.isclass(obj) and obj.__module__.startswith("reviewflow"):
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr != "__init__":
                    continue
                if isinstance(member, classmethod | staticmethod):
                    member = member.__func__
                elif isinstance(member, property):
                    member = member.fget
                if inspect.isfunction(member):
                    yield f"{obj.__module__}.{member.__qualname__}", member


def count() -> dict[str, int]:
    """Return {qualified name: number of Any} for every public function holding one."""
    found: dict[str, int] = {}
    seen: set[int] = set()
    for module in _modules():
        for name, fn in _functions(module):
            if id(fn) in seen:
                continue
            seen.add(id(fn))
            n = sum(_anys(a) for a in fn.__annotations__.values())
            if n:
                found[name] = n
    return found


def main(argv: list[str]) -> int:
    found = count()
    if "--list" in argv:
        for name, n in sorted(found.items()):
            print(f"{n:3}  {name}")
    print(sum(found.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
