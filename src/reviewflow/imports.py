"""Read the cases of a campaign (organisations and secretaries) from a CSV or XLSX file.

The first row holds the column names, in Chinese or English (any order; other
columns are ignored and listed):

==================  ==============================  ========
column              also accepted                   needed
==================  ==============================  ========
case_id             编号, 案例编号, case, id          yes
organization        党组织, 党组织名称, 单位名称       yes
secretary           书记, 书记姓名, secretary_name    yes
secretary_id        书记编号, 书记账号                no: ``sec-<case_id>``
guidance_group      指导组                           no
previous_case_id    上年编号, 上年度案例编号           no
carried_over        上年问题, 上年度问题 (; separated) no
==================  ==============================  ========

Everything is checked before anything is written: a file that is not UTF-8 (CSV),
not a workbook (XLSX), too large, missing a column, with an empty or too long
cell, an id or name holding a control or format character (a zero-width space, a
direction override...), or listing a case twice raises :class:`InputError` naming
the row and the column, and :meth:`~reviewflow.Campaign.open_cases` then writes all
rows or none. Each cell is stripped of white space at both ends, and ids and names
are normalised to NFC, so ids that differ only in how an accent is encoded are one
case (listed twice).

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "branches.csv"
>>> _ = path.write_text("编号,党组织,书记\\ns1,第一中学党支部,张三\\n", encoding="utf-8")
>>> rows = read_cases(path).rows
>>> rows[0]["case_id"], rows[0]["secretary"].id
('s1', 'sec-s1')
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from reviewflow import _ids
from reviewflow._files import csv_rows, read_capped, xlsx_sheet_rows
from reviewflow.ballots import PaperCount, read_paper_counts
from reviewflow.exceptions import InputError
from reviewflow.model import Actor
from reviewflow.scoring import ScoringPolicy

__all__ = ["COLUMNS", "MAX_IMPORT_BYTES", "MAX_ROWS", "CaseImport", "read_cases",
           "read_paper_counts_by_case"]

#: Files larger than this are refused (at most this many bytes and one more are read).
MAX_IMPORT_BYTES = 20 * 1024 * 1024
#: At most this many data rows per file.
MAX_ROWS = 200_000
MAX_CELL_CHARS = 2000

#: Each column: its name, the headers that mean it, and whether it is required.
COLUMNS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("case_id", ("case_id", "case", "id", "编号", "案例编号", "单位编号", "序号编号"), True),
    ("organization", ("organization", "organisation", "org", "党组织", "党组织名称", "单位",
                      "单位名称"), True),
    ("secretary", ("secretary", "secretary_name", "书记", "书记姓名", "党组织书记", "姓名"), True),
    ("secretary_id", ("secretary_id", "书记编号", "书记账号", "书记工号", "工号"), False),
    ("guidance_group", ("guidance_group", "group", "指导组"), False),
    ("previous_case_id", ("previous_case_id", "previous", "上年编号", "上年度案例编号"), False),
    ("carried_over", ("carried_over", "上年问题", "上年度问题", "上年度问题清单"), False),
)
_HEADER_TO_COLUMN = {alias.casefold(): name for name, aliases, _r in COLUMNS for alias in aliases}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
#: Names and ids take no control character at all (tab, line breaks and C1 included), as
#: Campaign.open_cases requires: refusing them here names the row and column.
_CONTROL_STRICT = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_STRICT_COLUMNS = frozenset({"case_id", "organization", "secretary"})
_ID = re.compile(r"^[^\s/]{1,200}$")
#: Cells read as ids and as names: NFC, and no format character either (reviewflow._ids).
_ID_COLUMNS = frozenset({"case_id", "secretary_id", "guidance_group", "previous_case_id"})
_NAME_COLUMNS = frozenset({"organization", "secretary"})


@attrs.frozen(kw_only=True)
class CaseImport:
    """What a case file holds: rows ready for :meth:`Campaign.open_cases`, and what was ignored."""

    source: str
    rows: list[dict[str, Any]]
    ignored_columns: tuple[str, ...] = ()


def _col_letter(index: int) -> str:
    letters = ""
    n = index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _header(path: Path, cells: Sequence[str]) -> tuple[dict[str, int], list[str]]:
    found: dict[str, int] = {}
    ignored: list[str] = []
    for i, raw in enumerate(cells):
        name = raw.strip().lstrip("\ufeff")
        if not name:
            continue
        column = _HEADER_TO_COLUMN.get(name.casefold())
        if column is None:
            ignored.append(name)
            continue
        if column in found:
            raise InputError(f"{path}, row 1, column {_col_letter(i)} ({name}): the column "
                             f"{column} appears twice (also column {_col_letter(found[column])})")
        found[column] = i
    missing = [(n, aliases) for n, aliases, required in COLUMNS if required and n not in found]
    if missing:
        names = "; ".join(f"{n} (or {', '.join(a[1:4])})" for n, a in missing)
        raise InputError(f"{path}, row 1: missing column(s) {names}; the header row has: "
                         f"{', '.join(c for c in cells if c) or 'nothing'}")
    return found, ignored


def read_cases(
    path: str | os.PathLike[str],
    *,
    guidance_groups: Sequence[str] | None = None,
    existing: Sequence[str] = (),
) -> CaseImport:
    """Read and check a CSV or XLSX file of cases; return rows ready for ``open_cases``.

    ``guidance_groups`` (the policy's group names) and ``existing`` (case ids already
    open) are checked too, when given. Raises :class:`InputError` naming the row and
    column of the first problem; nothing is returned half-read.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".txt", ".tsv", ".xlsx", ".xlsm"):
        raise InputError(f"{p}: unknown file type {suffix or '(none)'}; give a .csv (UTF-8) or .xlsx file")
    data = read_capped(p, MAX_IMPORT_BYTES, "a case file (.csv or .xlsx)", too_large="split it")
    reader: Iterator[tuple[int, list[str]]]
    if suffix in (".xlsx", ".xlsm"):  # rows with data only, numbered as in the sheet
        reader = ((n, [_cell_text(v) for v in values]) for n, values in xlsx_sheet_rows(data, str(p)))
    else:
        reader = enumerate(csv_rows(data, str(p), delimiters=(",", "\t", ";", "，"), strict=True), 1)
    header: list[str] | None = None
    columns: dict[str, int] = {}
    ignored: list[str] = []
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    known = set(existing)
    groups = None if guidance_groups is None else set(guidance_groups)
    for line_no, cells in reader:
        if header is None:
            if not any(c.strip() for c in cells):
                raise InputError(f"{p}, row {line_no}: the first row must name the columns "
                                 "(编号, 党组织, 书记, ...)")
            header = cells
            columns, ignored = _header(p, cells)
            continue
        if not any(c.strip() for c in cells):
            continue
        if len(rows) >= MAX_ROWS:
            raise InputError(f"{p}: more than {MAX_ROWS} rows; split the file")
        rows.append(_row(p, line_no, cells, columns, header, seen, known, groups))
    if header is None:
        raise InputError(f"{p}: the file is empty; the first row must name the columns")
    if not rows:
        raise InputError(f"{p}: no cases below the header row")
    return CaseImport(source=str(p), rows=rows, ignored_columns=tuple(ignored))


def _row(p: Path, line_no: int, cells: Sequence[str], columns: dict[str, int], header: Sequence[str],
         seen: dict[str, int], known: set[str], groups: set[str] | None) -> dict[str, Any]:
    def where(column: str) -> str:
        i = columns[column]
        name = header[i] if i < len(header) else column
        return f"{p}, row {line_no}, column {_col_letter(i)} ({name})"

    def get(column: str) -> str:
        i = columns.get(column)
        if i is None or i >= len(cells):
            return ""
        value = cells[i].strip()
        if len(value) > MAX_CELL_CHARS:
            raise InputError(f"{where(column)}: longer than {MAX_CELL_CHARS} characters")
        pattern = _CONTROL_STRICT if column in _STRICT_COLUMNS else _CONTROL
        if pattern.search(value):
            raise InputError(f"{where(column)}: contains control characters (a tab, line break "
                             "or other invisible character); remove them and import again")
        if column in _NAME_COLUMNS:
            return _ids.name(value, where(column))
        if column in _ID_COLUMNS:
            return _ids.identifier(value, where(column))
        return value

    for column in ("case_id", "organization", "secretary"):
        if not get(column):
            raise InputError(f"{where(column)}: empty; every case needs its {column}")
    case_id = get("case_id")
    if not _ID.match(case_id):
        raise InputError(f"{where('case_id')}: {case_id!r} is not a usable case id (no spaces or "
                         "'/', at most 200 characters)")
    if case_id in seen:
        raise InputError(f"{where('case_id')}: case {case_id!r} is listed twice (also row "
                         f"{seen[case_id]}); each case once")
    if case_id in known:
        raise InputError(f"{where('case_id')}: case {case_id!r} is already open in the campaign; "
                         "remove the row or give it a new id")
    seen[case_id] = line_no
    secretary_id = get("secretary_id") or f"sec-{case_id}"
    if not _ID.match(secretary_id):
        raise InputError(f"{where('secretary_id')}: {secretary_id!r} is not a usable id")
    row: dict[str, Any] = {
        "case_id": case_id,
        "organization": get("organization"),
        "secretary": Actor(secretary_id, get("secretary"), roles={"secretary"}),
    }
    group = get("guidance_group")
    if group:
        if groups is not None and group not in groups:
            raise InputError(f"{where('guidance_group')}: unknown guidance group {group!r}; the "
                             f"policy has: {', '.join(sorted(groups)) or 'none'}")
        row["guidance_group"] = group
    previous = get("previous_case_id")
    if previous:
        row["previous_case_id"] = previous
    carried = get("carried_over")
    if carried:
        row["carried_over"] = [x.strip() for x in re.split(r"[;；\n]", carried) if x.strip()]
    return row


def read_paper_counts_by_case(source: str | os.PathLike[str] | IO[bytes], *,
                              policy: ScoringPolicy, case_id: str | None = None,
                              ) -> dict[str, list[PaperCount]]:
    """Read a paper-count file (:func:`reviewflow.ballots.read_paper_counts`) and group
    its entries by case: the case its row names, else ``case_id``.

    The whole file is checked first: a row naming no case (and no ``case_id`` given), or
    naming another case than ``case_id``, raises InputError naming the row.
    """
    by_case: dict[str, list[PaperCount]] = {}
    for r in read_paper_counts(source, policy=policy):
        target = r.case_id or case_id
        if target is None:
            raise InputError(f"row {r.row}: no case named; add a 述职对象/case column or "
                             f"import for one case")
        if case_id is not None and r.case_id not in (None, case_id):
            raise InputError(f"row {r.row}: case {r.case_id!r} in a file imported for {case_id!r}")
        by_case.setdefault(target, []).append(r.entry)
    return by_case
