"""Importing paper counts from a CSV or Excel sheet (one row per case and category)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Literal

import attrs

from reviewflow._files import csv_rows, read_capped, size_text, xlsx_rows
from reviewflow._vote.rounds import category_key, check_entry
from reviewflow._vote.state import PaperCount
from reviewflow.exceptions import BallotError, InputError
from reviewflow.scoring import GradeScale, ScoringPolicy

#: The largest import file (bytes; at most one more byte is read) and the most rows; beyond
#: them the file is refused.
MAX_IMPORT_BYTES = 10 * 1024 * 1024
MAX_IMPORT_ROWS = 100_000

@attrs.frozen(kw_only=True)
class PaperRow:
    """One imported row: where it came from, the case it names (if any), its counts."""

    row: int
    case_id: str | None
    entry: PaperCount


_FIELD_ALIASES: Mapping[str, tuple[str, ...]] = {
    "case_id": ("case", "case_id", "case id", "述职对象", "编号", "单位"),
    "category": ("category", "类别", "人员类别", "参会人员类别"),
    "invalid": ("invalid", "无效", "无效票"),
    "blank": ("blank", "abstain", "abstention", "弃权", "空白", "弃权票", "空白票"),
    "issued": ("issued", "发出", "发放", "发出票", "发放票", "发出票数", "发放票数"),
    "returned": ("returned", "收回", "收回票", "收回票数"),
}
_ALL_NAMES = frozenset({"", "*", "all", "total", "合计", "全体", "全部"})


def _header_map(headers: list[str], scale: GradeScale, where: str) -> dict[int, str]:
    names: dict[str, str] = {}
    for field, aliases in _FIELD_ALIASES.items():
        for a in aliases:
            names[a] = field
    for lv in scale.levels:
        for n in (lv.key, lv.label):
            if n:
                names[n.lower()] = f"option:{lv.key}"
                names[f"{n.lower()}票"] = f"option:{lv.key}"
    out: dict[int, str] = {}
    for i, h in enumerate(headers):
        text = h.strip().lower()
        if not text:
            continue
        target = names.get(text)
        if target is None:
            raise InputError(
                f"{where}: column {i + 1} header {h!r} is not known; use option names "
                f"({', '.join(lv.label or lv.key for lv in scale.levels)}) and "
                f"category/invalid/blank/issued/returned (类别/无效/弃权/发出/收回)"
            )
        if target in out.values():
            raise InputError(f"{where}: column {i + 1} header {h!r} repeats an earlier column")
        out[i] = target
    if not any(f.startswith("option:") for f in out.values()):
        raise InputError(f"{where}: no option columns found in the header row")
    return out


def _cell_int(value: Any, where: str) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    if isinstance(value, bool):
        raise InputError(f"{where}: {value!r} is not a count")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float) and value.is_integer():
        n = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        n = int(value.strip())
    else:
        raise InputError(f"{where}: {value!r} is not a whole number of ballots")
    if n < 0:
        raise InputError(f"{where}: a count cannot be negative ({n})")
    return n


def _rows_csv(data: bytes, name: str) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for row in csv_rows(data, name):
        rows.append(list(row))
        if len(rows) > MAX_IMPORT_ROWS + 1:
            break
    return rows


def _rows_xlsx(data: bytes, name: str) -> list[list[Any]]:
    rows: list[list[Any]] = []
    with contextlib.closing(xlsx_rows(data, name)) as values:
        for row in values:
            rows.append(row)
            if len(rows) > MAX_IMPORT_ROWS + 1:
                break
    return rows


def read_paper_counts(
    source: str | os.PathLike[str] | IO[bytes],
    *,
    policy: ScoringPolicy | None = None,
    format: Literal["csv", "xlsx"] | None = None,
) -> list[PaperRow]:
    """Read paper-ballot counts from a CSV (UTF-8) or XLSX file, one row per category.

    Header names in Chinese or English: the options (好/较好/一般/差 or good/...),
    类别/category, 无效/invalid, 弃权/blank, 发出/issued, 收回/returned, and optionally
    述职对象/case. The whole file is checked first: any bad cell raises InputError naming
    its row and column, and nothing is returned.
    """
    policy = policy or ScoringPolicy()
    if hasattr(source, "read"):
        name = str(getattr(source, "name", "<file>"))
        try:
            data = source.read(MAX_IMPORT_BYTES + 1)
        except OSError as exc:
            raise InputError(f"{name}: cannot read the file: {exc.strerror or exc}") from None
        if not isinstance(data, bytes):
            raise InputError(f"{name}: open the file in binary mode ('rb') to import it")
        if len(data) > MAX_IMPORT_BYTES:
            raise InputError(f"{name}: the file is larger than {size_text(MAX_IMPORT_BYTES)}, "
                             "the limit for a paper-count file; split it by case")
    else:
        name = str(Path(source))
        data = read_capped(source, MAX_IMPORT_BYTES, "a paper-count file (.csv or .xlsx)",
                           too_large="split it by case")
    fmt = format or ("xlsx" if name.lower().endswith((".xlsx", ".xlsm"))
                     or data[:2] == b"PK" else "csv")
    rows = _rows_xlsx(data, name) if fmt == "xlsx" else _rows_csv(data, name)
    rows = [r for r in rows if any(c is not None and str(c).strip() for c in r)]
    if not rows:
        raise InputError(f"{name}: the file is empty; the first row must name the columns")
    if len(rows) > MAX_IMPORT_ROWS + 1:
        raise InputError(f"{name}: more than {MAX_IMPORT_ROWS} rows")
    header = ["" if c is None else str(c) for c in rows[0]]
    cols = _header_map(header, policy.scale, f"{name}: row 1")
    out: list[PaperRow] = []
    for rno, row in enumerate(rows[1:], start=2):
        fields: dict[str, Any] = {"counts": {}}
        case_id = None
        for i, field in cols.items():
            value = row[i] if i < len(row) else None
            where = f"{name}: row {rno}, column {_column(i, fmt)} ({header[i].strip()})"
            if field == "case_id":
                case_id = None if value is None else str(value).strip() or None
            elif field == "category":
                text = "" if value is None else str(value).strip()
                if text.lower() in _ALL_NAMES:
                    fields["category"] = None
                else:
                    try:
                        fields["category"] = category_key(policy.vote, text)
                    except BallotError as exc:
                        raise InputError(f"{where}: {str(exc).rsplit(' [', 1)[0]}") from None
            elif field.startswith("option:"):
                fields["counts"][field[7:]] = _cell_int(value, where)
            elif field == "returned":
                fields["returned"] = None if value in (None, "") else _cell_int(value, where)
            else:
                fields[field] = _cell_int(value, where)
        entry = PaperCount(**fields)
        try:
            entry = check_entry(entry, policy)
        except InputError as exc:
            raise InputError(f"{name}: row {rno}: {str(exc).removeprefix('paper counts ')}") \
                from None
        out.append(PaperRow(row=rno, case_id=case_id, entry=entry))
    seen: dict[tuple[str | None, str | None], int] = {}
    for pr in out:
        k = (pr.case_id, pr.entry.category)
        if k in seen:
            raise InputError(f"{name}: row {pr.row} repeats row {seen[k]} (same case and "
                             f"category); merge them into one row")
        seen[k] = pr.row
    return out


def _column(i: int, fmt: str) -> str:
    if fmt != "xlsx":
        return str(i + 1)
    letters = ""
    n = i + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters
