"""The results workbook (XLSX), and spreadsheet-safe CSV text.

No cell is ever written as a formula: text that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return (the characters spreadsheet programs read as
the start of a formula) is stored as plain text with Excel's quote prefix, so
an organisation named ``=HYPERLINK(...)`` shows as that text and runs nothing.
Characters a workbook cannot hold (control characters other than tab, line feed
and carriage return) are written as U+FFFD, so one odd name cannot stop the export.

CSV cells get an apostrophe instead (:func:`safe_text`), after every line break
inside the cell too, and :func:`csv_text` quotes every cell holding a line break,
so no reader can take the text after it for a new row.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from reviewflow.export.results import ResultRow
from reviewflow.policy import Policy
from reviewflow.scoring import GradeScale

__all__ = ["FORMULA_START", "csv_text", "safe_text", "workbook_text", "write_workbook"]

#: First characters that make a spreadsheet treat a cell as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: A line break inside a cell followed by a formula start.
_RISKY_LINE_START = re.compile(r"(\r\n|\r|\n)(?=[=+\-@\t\r])")
#: What openpyxl refuses in a cell (the same set as ``openpyxl.cell.cell.ILLEGAL_CHARACTERS_RE``).
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

def _headers(scale: GradeScale, lang: str) -> list[str]:
    """The results sheet's header: who, the scale's options (labels in Chinese), the score."""
    if lang == "zh":
        return ["名次", "案例编号", "党组织", "书记", "阶段", *[lv.label or lv.key for lv in scale.levels],
                "有效票", "得分", "等次"]
    return ["rank", "case", "organisation", "secretary", "stage", *scale.keys,
            "valid ballots", "score", "grade"]


def _formula(scale: GradeScale, lang: str) -> str:
    """The scale's formula in words: each counted option times its points, over the valid ballots."""
    counted = [lv for lv in scale.levels if lv.in_denominator]
    if lang == "zh":
        terms = " + ".join(f"{lv.label or lv.key}×{_points(lv.points)}" for lv in counted)
        return f"得分 = ({terms}) ÷ 有效票数"
    terms = " + ".join(f"{lv.key}×{_points(lv.points)}" for lv in counted)
    return f"score = ({terms}) ÷ valid"


def _points(points: Decimal) -> str:
    return str(int(points)) if points == points.to_integral_value() else f"{points.normalize():f}"


def safe_text(value: str) -> str:
    """Return text for a CSV cell that no spreadsheet will run as a formula (apostrophe prefix).

    The apostrophe goes before the cell's first character and after any line break
    that a formula character follows, for readers that split rows at line breaks.

    >>> safe_text("=1+1"), safe_text("第一中学"), safe_text("第一中学\\r=1")
    ("'=1+1", '第一中学', "第一中学\\r'=1")
    """
    value = _RISKY_LINE_START.sub(r"\1'", value)
    return "'" + value if value.startswith(FORMULA_START) else value


def csv_text(rows: Iterable[Sequence[Any]]) -> str:
    """Return rows as CSV text that is safe to open in a spreadsheet.

    Every text cell goes through :func:`safe_text`; cells holding a line break (a bare
    carriage return included) are quoted, and rows end with CR LF (RFC 4180).

    >>> csv_text([["name", "n"], ["=1+1", 2], ["一中\\r=2", 3]]).split("\\r\\n")
    ['name,n', "'=1+1,2", '"一中\\r\\'=2",3', '']
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    for row in rows:
        writer.writerow([safe_text(v) if isinstance(v, str) else v for v in row])
    return buf.getvalue()


def workbook_text(value: str) -> str:
    """Return ``value`` with each character a workbook cannot hold replaced by U+FFFD.

    >>> workbook_text("第一\\x01中学")
    '第一\ufffd中学'
    """
    return _ILLEGAL.sub("\ufffd", value)


def _put(ws: Any, row: int, col: int, value: Any) -> None:
    cell = ws.cell(row=row, column=col)
    if isinstance(value, str):
        value = workbook_text(value)
        cell.value = value
        # openpyxl turns text starting with "=" into a formula: force plain text
        cell.data_type = "s"
        if value.startswith(FORMULA_START):
            cell.quotePrefix = True
    else:
        cell.value = value


def write_workbook(
    rows: Sequence[ResultRow],
    path: str | os.PathLike[str],
    *,
    policy: Policy | None = None,
    lang: str = "zh",
    title: str | None = None,
) -> Path:
    """Write the results workbook to ``path`` (a new file, written whole) and return its path.

    The workbook is written as :func:`reviewflow._files.file_writer` writes every file:
    a temporary file created exclusively, never through a link, flushed, then renamed.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    target = Path(path)
    wb = Workbook()
    ws = wb.active
    ws.title = "结果" if lang == "zh" else "results"
    scale = policy.scoring.scale if policy is not None else GradeScale.default()
    headers = _headers(scale, "zh" if lang == "zh" else "en")
    for col, text in enumerate(headers, 1):
        _put(ws, 1, col, text)
        ws.cell(row=1, column=col).font = Font(bold=True)
    for r, row in enumerate(rows, 2):
        values: list[Any] = [row.rank, row.case_id, row.organization, row.secretary, row.stage]
        values += [row.counts.get(key, 0) for key in scale.keys]
        values += [row.valid, row.rounded, row.grade]
        for col, value in enumerate(values, 1):
            _put(ws, r, col, value)
        ws.cell(row=r, column=len(values) - 1).number_format = "0.00"
    ws.freeze_panes = "A2"
    widths = (6, 14, 28, 12, 12, *[6] * len(scale.keys), 8, 8, 6)
    for col, width in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(col)].width = width

    info = wb.create_sheet("计分办法" if lang == "zh" else "formula")
    lines: list[tuple[str, Any]] = []
    if lang == "zh":
        lines.append(("计分公式", _formula(scale, "zh")))
        lines.append(("名次", "按精确得分从高到低；得分相同名次并列"))
    else:
        lines.append(("formula", _formula(scale, "en")))
        lines.append(("rank", "by exact score, highest first; equal scores share a rank"))
    if title:
        lines.insert(0, ("标题" if lang == "zh" else "title", title))
    if policy is not None:
        lines.append(("policy", policy.name))
        lines.append(("year", policy.year))
        data = json.loads(policy.to_json())
        for key in sorted(data):
            lines.append((f"policy.{key}", json.dumps(data[key], ensure_ascii=False)))
    for r, (key, value) in enumerate(lines, 1):
        _put(info, r, 1, key)
        _put(info, r, 2, value)
    info.column_dimensions["A"].width = 24
    info.column_dimensions["B"].width = 100

    from reviewflow._files import file_writer

    target.parent.mkdir(parents=True, exist_ok=True)
    with file_writer(target) as fh:  # exclusive temporary file, no link followed, fsync, rename
        wb.save(fh)
    return target
