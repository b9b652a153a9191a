"""Hostile input: policy files, case imports and ballot imports, exports, and plugins.

Every reader gets real files written to ``tmp_path``: random mutations of the shipped
policy file and of valid import files, random bytes, and crafted attacks (deep
nesting, huge files, wrong encodings, duplicate keys, integers too long to convert,
devices and FIFOs behind the path, zip bombs, formula cells). For each:

* only :class:`ReviewflowError` subclasses escape (never a raw ``ValueError``,
  ``RecursionError``, ``KeyError``, ``zipfile.BadZipFile``...);
* its time and its peak of Python memory (``tracemalloc``) are measured; the figures
  go to docs/reliability.md. Memory is asserted under 100 MB; time is not asserted
  (a shared CI machine), only recorded.

Exports: no exported cell (CSV or XLSX) can run as a formula. Plugins: an installed
plugin that no configuration names is never imported.

CI form: 200 fuzzed files per reader. Long form (``REVIEWFLOW_LONG=1``): 10,000.
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
import re
import resource
import sys
import threading
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reviewflow as rf
from reviewflow import ballots, imports
from reviewflow.policy_file import DEFAULT_POLICY_FILE, load_policy
from reviewflow.testing import Cast, seed_campaign

MB = 1024 * 1024
LONG = os.environ.get("REVIEWFLOW_LONG") == "1" or os.environ.get("REVIEWFLOW_FULL") == "1"
EXAMPLES = 10_000 if LONG else 200
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
POLICY_TEXT = DEFAULT_POLICY_FILE.read_bytes()
CASES_CSV = "编号,党组织,书记,书记编号,上年问题\ns1,第一中学党支部,张三,zs,学习不够;整改不力\n" \
            "s2,第二中学党支部,李四,,\n".encode()
PAPER_CSV = "类别,好,较好,一般,差,无效,弃权,发出,收回\nparty_members,30,10,2,0,1,1,44,44\n" \
            "cadres,5,3,0,0,0,0,8,8\n".encode()


FORK = multiprocessing.get_context("fork")
#: The address space a child running one hostile input may use.
CHILD_MEMORY = 2 * 1024 * MB


def _measured(call: Callable[[], Any]) -> tuple[str, str, float, float]:
    """Run ``call`` under tracemalloc: (status, detail, seconds, peak bytes).

    status is ``ok``, the ReviewflowError class name, or ``escaped``.
    """
    tracemalloc.start()
    started = time.perf_counter()
    status, detail = "ok", ""
    try:
        call()
    except rf.ReviewflowError as exc:
        status = type(exc).__name__
    except Exception as exc:  # the finding this suite looks for (MemoryError included)
        status, detail = "escaped", f"{type(exc).__name__}: {str(exc)[:200]}"
    seconds = time.perf_counter() - started
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return status, detail, seconds, float(peak)


class Meter:
    """Run readers on hostile input; keep the worst time and memory, and what escaped."""

    def __init__(self) -> None:
        self.runs = 0
        self.worst_s = 0.0
        self.worst_mb = 0.0
        self.worst_what = ""
        self.escaped: list[str] = []
        self.errors: dict[str, int] = {}

    def run(self, what: str, call: Callable[[], Any]) -> None:
        """Call ``call``; anything but a ReviewflowError (or success) is an escape."""
        self._note(what, *_measured(call))

    def run_isolated(self, what: str, call: Callable[[], Any]) -> None:
        """Like :meth:`run`, in a forked child capped at 2 GB of address space and 60 s,
        so that a reader that reads without end fails the test, not the machine."""
        parent, child = FORK.Pipe(duplex=False)

        def target() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))
            child.send(_measured(call))

        proc = FORK.Process(target=target, daemon=True)
        proc.start()
        if parent.poll(60):
            outcome = parent.recv()
        else:
            outcome = ("escaped", f"no answer in 60 s (exit code {proc.exitcode})", 60.0, 0.0)
        proc.kill()
        proc.join(10)
        self._note(what, *outcome)

    def _note(self, what: str, status: str, detail: str, seconds: float, peak: float) -> None:
        if status == "escaped":
            self.escaped.append(f"{what}: {detail}")
        elif status != "ok":
            self.errors[status] = self.errors.get(status, 0) + 1
        self.runs += 1
        if seconds > self.worst_s:
            self.worst_s, self.worst_what = seconds, what
        self.worst_mb = max(self.worst_mb, peak / MB)

    def figures(self) -> dict[str, Any]:
        """Return the figures for docs/reliability.md."""
        return {"inputs": self.runs, "escaped": len(self.escaped),
                "worst_seconds": round(self.worst_s, 3), "slowest": self.worst_what[:80],
                "worst_peak_mb": round(self.worst_mb, 1), "errors": self.errors}

    def check(self, known: tuple[str, ...] = ()) -> None:
        """Assert nothing escaped (but the ``known`` findings, each with an xfail test of
        its own) and memory stayed under 100 MB."""
        assert [e for e in self.escaped if not any(k in e for k in known)] == []
        assert self.worst_mb < 100


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Apply byte edits (position, kind 0=flip/1=insert/2=delete, byte) to ``data``."""
    out = bytearray(data)
    for pos, kind, byte in edits:
        if not out:
            out.append(byte)
            continue
        i = pos % len(out)
        if kind == 0:
            out[i] = byte
        elif kind == 1:
            out.insert(i, byte)
        else:
            del out[i]
    return bytes(out)


EDITS = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 2), st.integers(0, 255)),
                 min_size=1, max_size=8)
#: Lines that look like a policy file, to be shuffled with junk.
FRAGMENTS = [
    'year = 2016', 'year = 1' + '0' * 4000, 'tz = "Mars/Olympus"', '[stages.drafting]',
    'due = { at = "2016-01-18T00:00:00+08:00" }', 'due = { at = "2016-13-45" }', 'hard = true',
    'grace = "P3D"', 'grace = "-1 days"', '[[approval]]', 'name = "x"', 'roles = ["nobody"]',
    '[permissions]', 'sign_off = ["secretary"]', 'plugins = ["not-installed"]', '[scoring]',
    'scale = 7', '[content]', 'achievement_max_share = "7/0"', 'a = [' * 40 + ']' * 40,
    'b = {c = ' * 40 + '1' + '}' * 40, '[a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.aa.bb.cc.dd]',
    'name = "\\uD800"', 'x = 1979-05-27T07:32:00Z', 'year = 2016\nyear = 2017', '[stages]\n[stages]',
    'x = 1e99999', 'x = nan', '"\u0000" = 1', '[calendar]', 'holidays = ["2016-02-30"]',
]


def write(tmp: Path, name: str, data: bytes) -> Path:
    """Write ``data`` to a new file in ``tmp``."""
    path = tmp / name
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------- policy files


def test_fuzzed_policy_files(tmp_path: Path, figure: Any) -> None:
    meter = Meter()
    n = iter(range(10**9))

    @FUZZ
    @given(st.one_of(
        EDITS.map(lambda e: mutate(POLICY_TEXT, e)),
        st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=40), max_size=20)
        .map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass")),
        st.binary(max_size=2000),
    ))
    def fuzz(data: bytes) -> None:
        path = write(tmp_path, f"p{next(n)}.toml", data)
        meter.run(f"fuzz {data[:60]!r}", lambda: load_policy(path))
        path.unlink()

    fuzz()
    figure(reader="load_policy (fuzzed)", **meter.figures())
    meter.check()


def _crafted_policies() -> dict[str, bytes]:
    text = POLICY_TEXT
    return {
        "1,000-deep arrays": b"x = " + b"[" * 1000 + b"]" * 1000,
        "100,000-deep arrays": b"x = " + b"[" * 100_000 + b"]" * 100_000,
        "1,000-deep inline tables": b"x = " + b"{a = " * 1000 + b"1" + b"}" * 1000,
        "deep tables over lines": b"".join(b"[" + b".".join([b"a"] * i) + b"]\n" for i in range(1, 60)),
        "1,000-part dotted key": b".".join([b"k"] * 1000) + b" = 1",
        "2 MB of comments": text + b"#" * (2 * MB),
        "just under 1 MB of keys": b"".join(b"k%d = %d\n" % (i, i) for i in range(70_000))[:MB - 10],
        "UTF-16": text.decode().encode("utf-16"),
        "GB 18030": text.decode().encode("gb18030"),
        "UTF-8 with BOM": b"\xef\xbb\xbf" + text,
        "NUL bytes": text[:100] + b"\x00" * 100 + text[100:],
        "duplicate key": text + b"\nyear = 2017\n",
        "duplicate table": text + b"\n[content]\n[content]\n",
        "4,000-digit integer": b"year = " + b"9" * 4000,
        "huge exponent": b"year = 1e999999999",
        "long string": b'name = "' + b"x" * (MB - 20) + b'"',
        "lone surrogate escape": b'name = "\\ud800"',
        "python tag (YAML attack)": b"!!python/object/apply:os.system ['true']",
        "alias bomb (YAML attack)": b"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n",
        "empty": b"",
    }


def test_crafted_policy_files(tmp_path: Path, figure: Any) -> None:
    meter = Meter()
    for name, data in _crafted_policies().items():
        path = write(tmp_path, "crafted.toml", data)
        meter.run_isolated(name, lambda p=path: load_policy(p))
    meter.run_isolated("a directory", lambda: load_policy(tmp_path))
    meter.run_isolated("missing file", lambda: load_policy(tmp_path / "none.toml"))
    (tmp_path / "zero.toml").symlink_to("/dev/zero")
    meter.run_isolated("symlink to /dev/zero", lambda: load_policy(tmp_path / "zero.toml"))
    (tmp_path / "loop.toml").symlink_to(tmp_path / "loop.toml")
    meter.run_isolated("symlink loop", lambda: load_policy(tmp_path / "loop.toml"))
    figure(reader="load_policy (crafted)", **meter.figures())
    meter.check()


def test_a_5000_digit_integer_is_a_policy_error(tmp_path: Path) -> None:
    path = write(tmp_path, "big.toml", b"year = " + b"9" * 5000)
    with pytest.raises(rf.PolicyError):
        load_policy(path)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "policy.toml"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            load_policy(fifo)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():  # unblock the reader before failing
        with open(fifo, "wb"):
            pass
        thread.join(5)
        pytest.fail("load_policy blocked on a FIFO")
    assert isinstance(outcome[0], rf.PolicyError)


# ---------------------------------------------------------------------- imports


def xlsx_bytes(rows: list[list[Any]]) -> bytes:
    """Return a workbook with ``rows`` on its first sheet."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def zip_bomb() -> bytes:
    """Return a small .xlsx-shaped zip whose sheet unpacks to 300 MB of zeros."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("xl/worksheets/sheet1.xml", "w") as sheet:
            chunk = b"0" * MB
            for _ in range(300):
                sheet.write(chunk)
    return buf.getvalue()


def crafted_tables() -> dict[str, bytes]:
    """Hostile CSV and XLSX files shared by the case and ballot importers."""
    return {
        "csv: GBK": "编号,党组织,书记\ns1,第一中学,张三\n".encode("gbk"),
        "csv: UTF-16": CASES_CSV.decode().encode("utf-16"),
        "csv: NUL bytes": CASES_CSV.replace(b",", b"\x00,"),
        "csv: unterminated quote": b'a,b,c\n"s1,x,y\n' + b"z" * 10_000,
        "csv: 200,000-character field": b'a,b\n"' + b"x" * 200_000 + b'",1\n',
        "csv: 25 MB": b"a,b,c\n" + b"1,2,3\n" * (25 * MB // 6),
        "csv: 300,000 rows": CASES_CSV.splitlines()[0] + b"\n" + b"s,o,p\n" * 300_000,
        "csv: formula cells": "编号,党组织,书记\n=1+1,=HYPERLINK(\"http://x\"),@SUM(A1)\n"
                              "+s2,-cmd|' /C calc'!A0,\t=1\n".encode(),
        "csv: header only": CASES_CSV.splitlines()[0] + b"\n",
        "csv: 1,000 columns": b",".join(b"c%d" % i for i in range(1000)) + b"\n" + b"1," * 999 + b"1\n",
        "xlsx: not a zip": b"PK\x03\x04" + b"\x00" * 100,
        "xlsx: zip bomb": zip_bomb(),
        "xlsx: empty zip": b"PK\x05\x06" + b"\x00" * 18,
        "xlsx: formulas and errors": xlsx_bytes([["编号", "党组织", "书记", "好"],
                                                  ["=1+1", "=A1", "#REF!", "=1/0"]]),
        "xlsx: numbers, dates, None": xlsx_bytes([["编号", "党组织", "书记", "好"],
                                                   [1.5, None, 10**30, -3]]),
    }


def _suffix(name: str) -> str:
    return ".xlsx" if name.startswith("xlsx") else ".csv"


def test_crafted_imports(tmp_path: Path, figure: Any) -> None:
    cases, paper = Meter(), Meter()
    campaign, _clock = seed_campaign()
    for name, data in crafted_tables().items():
        path = write(tmp_path, f"in{_suffix(name)}", data)
        cases.run_isolated(name, lambda p=path: imports.read_cases(p))
        paper.run_isolated(name, lambda p=path: ballots.read_paper_counts(p))
        paper.run_isolated(f"campaign {name}", lambda p=path: campaign.import_paper_counts(
            p, actor=Cast.default().organizer, case_id="none"))
    figure(reader="read_cases (crafted)", **cases.figures())
    figure(reader_paper="read_paper_counts (crafted)", **{f"paper_{k}": v
                                                          for k, v in paper.figures().items()})
    cases.check()
    paper.check()


def test_case_import_from_a_device_is_refused(tmp_path: Path) -> None:
    meter = Meter()
    (tmp_path / "dev.csv").symlink_to("/dev/zero")
    meter.run_isolated("read_cases(/dev/zero)", lambda: imports.read_cases(tmp_path / "dev.csv"))
    meter.check()
    assert meter.errors == {"InputError": 1}


def test_paper_counts_from_a_device_are_refused(tmp_path: Path) -> None:
    meter = Meter()
    (tmp_path / "dev.csv").symlink_to("/dev/zero")
    meter.run_isolated("read_paper_counts(/dev/zero)",
                       lambda: ballots.read_paper_counts(tmp_path / "dev.csv"))
    assert meter.escaped == []
    assert meter.errors == {"InputError": 1}


def _flipped_workbooks(limit: int = 300, step: int = 3) -> list[bytes]:
    """Return a small workbook with every ``step``-th of its first ``limit`` bytes flipped
    in turn (its first parts: the zip headers and the first deflated streams)."""
    data = xlsx_bytes([["编号", "党组织", "书记", "好", "较好"], ["s1", "第一中学", "张三", 1, 2]])
    return [data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:] for i in range(0, min(limit, len(data)), step)]


def test_case_import_from_a_damaged_workbook(tmp_path: Path, figure: Any) -> None:
    meter = Meter()
    for i, data in enumerate(_flipped_workbooks()):
        path = write(tmp_path, "damaged.xlsx", data)
        meter.run(f"byte {i} flipped", lambda p=path: imports.read_cases(p))
    figure(reader="read_cases (damaged workbooks)", **meter.figures())
    meter.check()


def test_paper_counts_from_a_damaged_workbook(tmp_path: Path) -> None:
    meter = Meter()
    for i, data in enumerate(_flipped_workbooks()):
        path = write(tmp_path, "damaged.xlsx", data)
        meter.run(f"byte {i} flipped", lambda p=path: ballots.read_paper_counts(p))
    assert meter.escaped == []


def test_fuzzed_imports(tmp_path: Path, figure: Any) -> None:
    cases, paper = Meter(), Meter()
    n = iter(range(10**9))
    base_xlsx = xlsx_bytes([["编号", "党组织", "书记"], ["s1", "第一中学党支部", "张三"]])

    @FUZZ
    @given(st.sampled_from(["cases.csv", "paper.csv", "cases.xlsx"]), EDITS,
           st.booleans(), st.binary(max_size=500))
    def fuzz(kind: str, edits: list[tuple[int, int, int]], raw: bool, junk: bytes) -> None:
        base = {"cases.csv": CASES_CSV, "paper.csv": PAPER_CSV, "cases.xlsx": base_xlsx}[kind]
        data = junk if raw else mutate(base, edits)
        path = write(tmp_path, f"f{next(n)}{Path(kind).suffix}", data)
        cases.run(f"{kind} {data[:40]!r}", lambda: imports.read_cases(path))
        paper.run(f"{kind} {data[:40]!r}", lambda: ballots.read_paper_counts(path))
        path.unlink()

    fuzz()
    figure(reader="read_cases (fuzzed)", **cases.figures())
    figure(reader_paper="read_paper_counts (fuzzed)",
           **{f"paper_{k}": v for k, v in paper.figures().items()})
    cases.check()
    paper.check()


def _zip_version_too_new(data: bytes) -> bytes:
    """Return ``data`` with every central-directory entry asking for zip version 16.2."""
    out = bytearray(data)
    at = out.find(b"PK\x01\x02")
    while at != -1:
        out[at + 6] = 162
        at = out.find(b"PK\x01\x02", at + 4)
    return bytes(out)


def test_case_import_of_a_workbook_needing_a_newer_zip_version(tmp_path: Path) -> None:
    data = _zip_version_too_new(xlsx_bytes([["编号", "党组织", "书记"], ["s1", "第一中学", "张三"]]))
    with pytest.raises(rf.InputError):
        imports.read_cases(write(tmp_path, "new.xlsx", data))


# ---------------------------------------------------------------------- exports


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
HOSTILE_TEXT = st.one_of(
    st.sampled_from(["=1+1", "=HYPERLINK(\"http://evil\",\"x\")", "+1", "-1", "@SUM(A1:A2)",
                     "\t=1", "\r=1", "=cmd|' /C calc'!A0", "＝1+1", "'=1"]),
    st.tuples(st.sampled_from(FORMULA_START), st.text(max_size=20)).map("".join),
    st.text(max_size=30),
)


def _result_rows(names: list[str]) -> list[Any]:
    from reviewflow.export.results import ResultRow

    return [ResultRow(case_id=f"c{i}", organization=name, secretary=name, stage="closed",
                      counts={"good": 1}, valid=1, grade=name, rank=i + 1)
            for i, name in enumerate(names)]


def test_no_exported_cell_runs_as_a_formula(tmp_path: Path, figure: Any) -> None:
    from openpyxl import load_workbook

    from reviewflow.cli._results import _csv_text
    from reviewflow.export import write_workbook

    checked = {"csv_cells": 0, "xlsx_cells": 0, "formula_cells": 0}

    @settings(max_examples=EXAMPLES // 4, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(HOSTILE_TEXT, min_size=1, max_size=8))
    def fuzz(names: list[str]) -> None:
        rows = _result_rows(names)
        for line in csv.reader(io.StringIO(_csv_text(rows), newline="")):
            for cell in line:
                checked["csv_cells"] += 1
                if cell.startswith(FORMULA_START):
                    checked["formula_cells"] += 1
        path = write_workbook(rows, tmp_path / "results.xlsx")
        for ws in load_workbook(path).worksheets:
            for row in ws.iter_rows():
                for cell in row:
                    checked["xlsx_cells"] += 1
                    if cell.data_type == "f" or (isinstance(cell.value, str)
                                                 and cell.value.startswith("=")
                                                 and not cell.quotePrefix):
                        checked["formula_cells"] += 1

    fuzz()
    figure(**checked)
    assert checked["formula_cells"] == 0


def test_a_carriage_return_in_a_name_cannot_start_a_formula_row() -> None:
    from reviewflow.cli._results import _csv_text

    text = _csv_text(_result_rows(["第一中学\r=HYPERLINK(\"http://evil\")", "\r=1+1"]))
    lines = list(csv.reader(io.StringIO(text, newline="")))
    cells = [c for line in lines for c in line]
    assert not [c for c in cells if c.startswith(FORMULA_START)]
    assert len(lines) == 3  # the header and one row per case: no row starts inside a name
    # a reader that splits at every line break still sees no formula at a line start
    assert not [s for s in re.split(r"\r\n|\r|\n", text) if s.startswith(FORMULA_START)]


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def test_control_characters_in_a_name_do_not_break_the_workbook(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    from reviewflow.export import write_workbook

    path = write_workbook(_result_rows(["第一\x01中学", "\x1b=1"]), tmp_path / "results.xlsx")
    texts = [c.value for row in load_workbook(path).worksheets[0].iter_rows() for c in row
             if isinstance(c.value, str)]
    assert "第一\ufffd中学" in texts  # shown, visibly replaced
    assert "\ufffd=1" in texts
    assert not [t for t in texts if _CONTROL.search(t)]


def test_imported_formula_names_export_as_text(tmp_path: Path) -> None:
    """End to end: cases imported with formula-like names come out as plain text."""
    from reviewflow.cli._results import _csv_text
    from reviewflow.export import collect_results

    path = write(tmp_path, "cases.csv", "编号,党组织,书记\ns1,=1+1,@SUM(A1)\ns2,+cmd,-x\n".encode())
    campaign, _clock = seed_campaign()
    campaign.open_cases(imports.read_cases(path).rows)
    cells = [c for line in csv.reader(io.StringIO(_csv_text(collect_results(campaign))))
             for c in line]
    assert "'=1+1" in cells
    assert not [c for c in cells if c.startswith(FORMULA_START)]


# ---------------------------------------------------------------------- plugins


def _install_plugin(root: Path, name: str, marker: Path) -> str:
    """Put an installed-looking plugin distribution on ``root``; return its module name."""
    module = f"rf_hostile_{name.replace('-', '_')}"
    (root / f"{module}.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('imported')\n"
        "class Plugin:\n    pass\n",
        encoding="utf-8",
    )
    info = root / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[reviewflow]\n{name} = {module}:Plugin\n",
                                           encoding="utf-8")
    return module


def test_an_unnamed_plugin_never_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reviewflow import _plugins

    marker = tmp_path / "marker.txt"
    module = _install_plugin(tmp_path, "hostile", marker)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "hostile" in _plugins.available()  # installed, visible...
    policy = rf.Policy.default(year=2016)
    campaign = rf.Campaign(policy)
    campaign.open_case("s1", organization="x", secretary=Cast.default().secretary("s1"))
    with pytest.raises(rf.PluginError):  # ...a policy naming another plugin does not load it
        rf.Campaign(attrs.evolve(policy, plugins=("something-else",)))
    assert not marker.exists()  # ...and never imported
    assert module not in sys.modules
    # positive control: named, it is loaded
    rf.Campaign(attrs.evolve(policy, plugins=("hostile",)))
    assert marker.read_text() == "imported"
    sys.modules.pop(module, None)
