"""One registry of reason codes: every code reviewflow raises is in ``Reason``, with its meanings.

The source is read with ``ast``: every code given to an error's constructor (directly, or
through a helper's argument, a constant, a table or a function's return value) must be a
member of :class:`reviewflow.exceptions.Reason`; an argument the scan cannot follow fails
too, so a new way of passing a code is seen. Constructing an error with another code is
not refused at run time (a host's side step may refuse with its own code, refusal journals
are read back as written): this test is what keeps reviewflow's own codes registered.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reviewflow import i18n
from reviewflow.cli import EXIT_REFUSED, EXIT_USAGE, main
from reviewflow.exceptions import (
    BallotError,
    ConflictError,
    InputError,
    PolicyMismatch,
    Reason,
    ScrubIncomplete,
    StoreTimeout,
    TransitionRefused,
    UnknownCaseError,
    exit_code,
    reason_of,
)

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "reviewflow"
DOCS = ROOT / "docs"

#: Error classes and where their code goes: (index of the positional argument or None, keyword).
CODE_SLOTS: dict[str, tuple[int | None, str]] = {
    "TransitionRefused": (0, "reason"),
    "BallotError": (0, "reason"),
    "StoreTimeout": (0, "reason"),
    "InputError": (None, "reason"),
    "DuplicateCaseError": (None, "reason"),
    "ScrubIncomplete": (None, "reason"),
}


@dataclass
class Func:
    module: str
    node: ast.FunctionDef | ast.AsyncFunctionDef
    parent: ast.AST | None  # the enclosing function, for nested ones
    is_method: bool

    @property
    def params(self) -> list[str]:
        a = self.node.args
        return [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]

    def positional(self) -> list[str]:
        a = self.node.args
        names = [p.arg for p in (*a.posonlyargs, *a.args)]
        return names[1:] if self.is_method else names


@dataclass
class Module:
    name: str
    tree: ast.Module
    constants: dict[str, list[ast.expr]] = field(default_factory=dict)
    imports: dict[str, str] = field(default_factory=dict)  # local name -> defining module
    aliases: dict[str, str] = field(default_factory=dict)  # local name -> module it names


@dataclass
class Found:
    codes: dict[str, list[str]] = field(default_factory=dict)  # code -> where
    unresolved: list[str] = field(default_factory=list)


def _name_of(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


class Scan:
    def __init__(self, root: Path) -> None:
        self.modules: dict[str, Module] = {}
        self.funcs: list[Func] = []
        self.parent_of: dict[ast.AST, Func] = {}
        self.done: set[tuple[int, int]] = set()
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root.parent).with_suffix("")
            name = ".".join(p for p in rel.parts if p != "__init__")
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            mod = Module(name, tree)
            for stmt in tree.body:
                targets: list[ast.expr] = []
                value: ast.expr | None = None
                if isinstance(stmt, ast.Assign):
                    targets, value = stmt.targets, stmt.value
                elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                    targets, value = [stmt.target], stmt.value
                for t in targets:
                    if isinstance(t, ast.Name) and value is not None:
                        mod.constants.setdefault(t.id, []).append(value)
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module:
                    for alias in node.names:
                        mod.imports[alias.asname or alias.name] = node.module
                        mod.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.asname:
                            mod.aliases[alias.asname] = alias.name
            self.modules[name] = mod
            self._index(mod, tree, None, False)
        self.calls = [(m, [n for n in ast.walk(m.tree) if isinstance(n, ast.Call)])
                      for m in self.modules.values()]

    def _index(self, mod: Module, node: ast.AST, parent: Func | None, in_class: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                f = Func(mod.name, child, parent.node if parent else None, in_class)
                self.funcs.append(f)
                self._index(mod, child, f, False)
            elif isinstance(child, ast.ClassDef):
                self._index(mod, child, parent, True)
            else:
                self._mark(mod, child, parent)
                self._index(mod, child, parent, in_class)

    def _mark(self, mod: Module, node: ast.AST, parent: Func | None) -> None:
        if parent is not None:
            self.parent_of[node] = parent

    # ------------------------------------------------------------------ resolving

    def resolve(self, expr: ast.expr | None, func: Func | None, mod: Module, where: str,
                found: Found, seen: frozenset[object] = frozenset()) -> None:
        if expr is None:
            return
        key = (id(expr), id(func))
        if key in self.done:
            return
        self.done.add(key)
        if isinstance(expr, ast.Constant):
            if isinstance(expr.value, str):
                found.codes.setdefault(expr.value, []).append(where)
            elif expr.value is not None:
                found.unresolved.append(f"{where}: {ast.unparse(expr)}")
            return
        if isinstance(expr, ast.IfExp):
            self.resolve(expr.body, func, mod, where, found, seen)
            test, orelse = expr.test, expr.orelse
            if (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
                    and isinstance(orelse, ast.Name) and orelse.id == test.left.id
                    and [type(o) for o in test.ops] == [ast.Eq]
                    and isinstance(test.comparators[0], ast.Constant)):
                # `A if code == "x" else code`: the else branch never gives "x"
                inner = Found()
                self.resolve(orelse, func, mod, where, inner, seen)
                for code, places in inner.codes.items():
                    if code != test.comparators[0].value:
                        found.codes.setdefault(code, []).extend(places)
                found.unresolved.extend(inner.unresolved)
            else:
                self.resolve(orelse, func, mod, where, found, seen)
            return
        if isinstance(expr, ast.BoolOp):
            for v in expr.values:
                self.resolve(v, func, mod, where, found, seen)
            return
        if isinstance(expr, ast.Attribute):
            if isinstance(expr.value, ast.Name) and expr.value.id == "Reason":
                found.codes.setdefault(expr.attr.lower(), []).append(where)
            elif expr.attr != "reason":  # x.reason forwards a code an error already has
                found.unresolved.append(f"{where}: {ast.unparse(expr)}")
            return
        if isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Name):
            for table in mod.constants.get(expr.value.id, []):
                if isinstance(table, ast.Dict):
                    for v in table.values:
                        self.resolve(v, None, mod, where, found, seen)
                    return
            found.unresolved.append(f"{where}: {ast.unparse(expr)}")
            return
        if isinstance(expr, ast.Call):
            callee = _name_of(expr.func)
            if callee == "getattr" and len(expr.args) == 3:
                self.resolve(expr.args[2], func, mod, where, found, seen)
                return
            if callee in ("str", "Reason") and len(expr.args) == 1:
                self.resolve(expr.args[0], func, mod, where, found, seen)
                return
            targets = [f for f in self.funcs if f.node.name == callee]
            if not targets:
                found.unresolved.append(f"{where}: {ast.unparse(expr)}")
            for target in targets:
                for node in self._own_nodes(target.node):
                    if isinstance(node, ast.Return) and node.value is not None:
                        self.resolve(node.value, target, self.modules[target.module],
                                     where, found, seen)
            return
        if isinstance(expr, ast.Name):
            self._resolve_name(expr.id, func, mod, where, found, seen)
            return
        found.unresolved.append(f"{where}: {ast.unparse(expr)}")

    def _own_nodes(self, fn: ast.AST) -> Iterator[ast.AST]:
        """The nodes of a function, not of the functions nested in it."""
        for child in ast.iter_child_nodes(fn):
            yield child
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from self._own_nodes(child)

    def _resolve_name(self, name: str, func: Func | None, mod: Module, where: str,
                      found: Found, seen: frozenset[object]) -> None:
        scope = func
        while scope is not None:
            if name in scope.params:
                self._resolve_param(scope, name, where, found, seen)
                return
            values = [n.value for n in self._own_nodes(scope.node)
                      if isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None
                      and any(isinstance(t, ast.Name) and t.id == name
                              for t in (n.targets if isinstance(n, ast.Assign) else [n.target]))]
            if values:
                for v in values:
                    self.resolve(v, scope, mod, where, found, seen)
                return
            scope = next((f for f in self.funcs if f.node is scope.parent), None)
        if name in mod.constants:
            for v in mod.constants[name]:
                self.resolve(v, None, mod, where, found, seen)
            return
        source = mod.imports.get(name)
        if source in self.modules:
            self._resolve_name(name, None, self.modules[source], where, found, seen)
            return
        found.unresolved.append(f"{where}: {name}")

    def _resolve_param(self, target: Func, name: str, where: str, found: Found,
                       seen: frozenset[object]) -> None:
        a = target.node.args
        positional = target.positional()
        names = [p.arg for p in (*a.posonlyargs, *a.args)]
        defaults = dict(zip(names[len(names) - len(a.defaults):], a.defaults, strict=True))
        defaults.update({p.arg: d for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)
                         if d is not None})
        home = self.modules[target.module]
        if name in defaults:
            self.resolve(defaults[name], None, home, where, found, seen)
        index = positional.index(name) if name in positional else None
        for call, caller, mod in self._calls_of(target):
            arg: ast.expr | None = None
            if index is not None and index < len(call.args):
                arg = call.args[index]
            for kw in call.keywords:
                if kw.arg == name:
                    arg = kw.value
            if arg is not None:
                self.resolve(arg, caller, mod, f"{mod.name}:{call.lineno}", found, seen)

    def _calls_of(self, target: Func) -> Iterator[tuple[ast.Call, Func | None, Module]]:
        name = target.node.name
        if target.parent is not None:  # a nested function: called in its parent only
            parent = next(f for f in self.funcs if f.node is target.parent)
            home = self.modules[target.module]
            places = [(home, [n for n in ast.walk(parent.node) if isinstance(n, ast.Call)])]
        else:
            places = self.calls
        for mod, nodes in places:
            for node in nodes:
                if target.is_method:
                    ok = isinstance(node.func, ast.Attribute) and node.func.attr == name
                elif isinstance(node.func, ast.Name) and node.func.id == name:
                    ok = mod.name == target.module or mod.imports.get(name) == target.module
                else:
                    ok = (isinstance(node.func, ast.Attribute) and node.func.attr == name
                          and isinstance(node.func.value, ast.Name)
                          and mod.aliases.get(node.func.value.id) == target.module)
                if ok:
                    yield node, self.parent_of.get(node), mod

    # ------------------------------------------------------------------ the scan

    def codes(self) -> Found:
        found = Found()
        for mod in self.modules.values():
            for node in ast.walk(mod.tree):
                if isinstance(node, ast.Call) and _name_of(node.func) in CODE_SLOTS:
                    index, keyword = CODE_SLOTS[_name_of(node.func) or ""]
                    arg: ast.expr | None = None
                    if index is not None and len(node.args) > index:
                        arg = node.args[index]
                    for kw in node.keywords:
                        if kw.arg == keyword:
                            arg = kw.value
                    where = f"{mod.name}:{node.lineno}"
                    self.resolve(arg, self.parent_of.get(node), mod, where, found)
                elif isinstance(node, ast.ClassDef):  # reason = "..." on an error class
                    for stmt in node.body:
                        if isinstance(stmt, ast.FunctionDef) and stmt.name == "__init__":
                            init = next(f for f in self.funcs if f.node is stmt)
                            a = stmt.args
                            kw = dict(zip((p.arg for p in a.kwonlyargs), a.kw_defaults, strict=True))
                            names = [p.arg for p in a.args]
                            pos = dict(zip(names[len(names) - len(a.defaults):], a.defaults,
                                           strict=True))
                            default = kw.get("reason") or pos.get("reason")
                            if default is not None:
                                self.resolve(default, init, mod, f"{mod.name}:{stmt.lineno}", found)
                        if (isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant)
                                and any(isinstance(t, ast.Name) and t.id == "reason"
                                        for t in stmt.targets)):
                            self.resolve(stmt.value, None, mod, f"{mod.name}:{stmt.lineno}", found)
        return found



@pytest.fixture(scope="module")
def found() -> Found:
    return Scan(SRC).codes()


def test_the_scan_follows_every_code(found: Found) -> None:
    assert found.unresolved == [], "a code the scan cannot follow: pass a literal or a Reason"
    # the scan sees what it should: codes given directly, through helpers, tables, returns
    for code in ("not_permitted", "token_used", "bad_identifier", "exists", "lock_timeout",
                 "no_deadline", "scrub_incomplete", "policy_differs", "invalid_argument"):
        assert code in found.codes, code
    assert "sqlite_busy" not in found.codes  # mapped to lock_timeout before it is raised


def test_every_code_raised_in_src_is_registered(found: Found) -> None:
    registered = {str(r) for r in Reason}
    missing = {code: places for code, places in found.codes.items() if code not in registered}
    assert missing == {}, "add the code to reviewflow._reasons.Reason (and run tools/gen_reason_docs.py)"


def _documented() -> str:
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.rglob("*.md")))
    return re.sub(r"<!-- reason codes:.*?<!-- end of reason codes -->", "", text, flags=re.S)


def test_every_registered_code_is_raised_or_documented(found: Found) -> None:
    docs = _documented()
    idle = [str(r) for r in Reason if str(r) not in found.codes and f"`{r}`" not in docs]
    assert idle == []


def test_every_code_has_both_meanings_and_an_exit_code() -> None:
    for r in Reason:
        assert r == r.value
        assert r.name == r.value.upper()
        assert r.en, r
        assert r.en.isascii(), r
        assert re.search("[\u4e00-\u9fff]", r.zh), r
        assert r.exit_code in (EXIT_REFUSED, EXIT_USAGE) or r is Reason.LATE
    assert {str(r): (r.en, r.zh) for r in Reason} == i18n.REASONS


def test_the_docs_table_is_the_registry() -> None:
    spec = importlib.util.spec_from_file_location("gen_reason_docs", ROOT / "tools" / "gen_reason_docs.py")
    assert spec is not None
    assert spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    page = (DOCS / "reference" / "errors.md").read_text(encoding="utf-8")
    assert page == tool.page_with_table(page), "run tools/gen_reason_docs.py"
    for r in Reason:
        assert f"| `{r}` |" in page


def test_exit_codes_come_from_the_registry() -> None:
    assert exit_code(TransitionRefused("not_permitted", "no")) == EXIT_REFUSED
    assert exit_code(TransitionRefused("invalid_data", "no")) == EXIT_USAGE
    assert exit_code(BallotError("token_used", "used")) == EXIT_REFUSED
    assert exit_code(InputError("there", reason="exists")) == EXIT_USAGE
    assert exit_code(StoreTimeout("lock_timeout", "waited")) == EXIT_USAGE
    assert exit_code(ScrubIncomplete("busy")) == EXIT_USAGE
    assert exit_code(PolicyMismatch("other")) == EXIT_USAGE
    # without a registered code: refusals exit 1, anything else 2
    assert exit_code(TransitionRefused("closed", "a host's own code")) == EXIT_REFUSED
    assert exit_code(ConflictError("s1", 2, 3)) == EXIT_REFUSED
    assert exit_code(InputError("bad")) == EXIT_USAGE
    assert exit_code(UnknownCaseError("s9")) == EXIT_USAGE
    assert reason_of(TransitionRefused("closed", "x")) is None
    assert reason_of(InputError("x", reason="exists")) is Reason.EXISTS


def test_the_cli_prints_the_meaning_of_any_code(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["--lang", "zh", "diagram", "--out", "no/such/diagram.svg"])  # an InputError
    assert code == Reason.NO_DIRECTORY.exit_code == EXIT_USAGE
    assert f"no_directory ({Reason.NO_DIRECTORY.zh})" in capsys.readouterr().err
    assert main(["--lang", "en", "diagram", "--out", "no/such/diagram.svg"]) == EXIT_USAGE
    assert f"no_directory ({Reason.NO_DIRECTORY.en})" in capsys.readouterr().err
