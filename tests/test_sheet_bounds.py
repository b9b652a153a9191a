"""Workbooks are read by what they hold, not by the size they declare.

A 1.6 KB workbook that declares ``A1:XFD1048576`` and holds one row at row 1,048,576 used
to make both importers fill in a million rows of 16,384 empty cells (over 10 minutes).
Every workbook here is a real .xlsx file built from its XML parts in the test.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from reviewflow import ballots, imports
from reviewflow._files import MAX_SHEET_ROWS, xlsx_rows, xlsx_sheet_rows
from reviewflow.exceptions import InputError
from reviewflow.policy_file import DEFAULT_POLICY_FILE

LAST_ROW = 1_048_576
_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def row(number: int, *values: str | int, start: str = "A") -> str:
    cells = []
    for i, value in enumerate(values):
        ref = f"{chr(ord(start) + i)}{number}"
        if isinstance(value, int):
            cells.append(f'<c r="{ref}"><v>{value}</v></c>')
        else:
            cells.append(f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>')
    return f'<row r="{number}">{"".join(cells)}</row>'


def workbook(rows: str, *, dimension: str = "A1:XFD1048576", after: str = "") -> bytes:
    """Return a real .xlsx file (the five parts Excel needs) whose one sheet holds ``rows``."""
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
            'package/2006/content-types"><Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
            f'ContentType="{_CT}.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" '
            f'ContentType="{_CT}.worksheet+xml"/></Types>'),
        "_rels/.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG}"><Relationship '
            f'Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{_NS}" xmlns:r="{_REL}">'
            '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG}"><Relationship '
            f'Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'),
        "xl/worksheets/sheet1.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{_NS}"><dimension '
            f'ref="{dimension}"/><sheetData>{rows}</sheetData>{after}</worksheet>'),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return buf.getvalue()


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REVIEWFLOW_LANG": "en"}
    for name in ("REVIEWFLOW_NOW", "REVIEWFLOW_DB", "REVIEWFLOW_CONFIG", "REVIEWFLOW_CAMPAIGN"):
        env.pop(name, None)
    # The timeout only stops a hang (before the fix: over 10 minutes); nothing here is timed.
    return subprocess.run([sys.executable, "-m", "reviewflow.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_the_padded_workbook_is_small_and_declares_the_whole_sheet() -> None:
    data = workbook(row(LAST_ROW, "编号", "党组织", "书记"))
    assert len(data) < 2048  # 1.6 KB
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert b'ref="A1:XFD1048576"' in archive.read("xl/worksheets/sheet1.xml")
    assert list(xlsx_sheet_rows(data, "padded.xlsx")) == [(LAST_ROW, ["编号", "党组织", "书记"])]


@pytest.mark.parametrize("shape", ["one row at the last row", "header, then a case at the last row"])
def test_cases_import_reads_a_padded_workbook_by_its_content(tmp_path: Path, shape: str) -> None:
    if shape == "one row at the last row":
        rows = row(LAST_ROW, "编号", "党组织", "书记")
    else:
        rows = row(1, "编号", "党组织", "书记") + row(LAST_ROW, "s1", "第一中学党支部", "张三")
    (tmp_path / "padded.xlsx").write_bytes(workbook(rows))
    shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.toml")
    assert run_cli("init", "policy.toml", cwd=tmp_path).returncode == 0
    done = run_cli("cases", "import", "padded.xlsx", "--dry-run", cwd=tmp_path)
    if shape == "one row at the last row":
        assert done.returncode == 2, done.stderr
        assert "no cases below the header row" in done.stderr
    else:
        assert done.returncode == 0, done.stderr
        assert "checked 1 rows" in done.stdout + done.stderr
        found = imports.read_cases(tmp_path / "padded.xlsx")
        assert [r["case_id"] for r in found.rows] == ["s1"]


def test_paper_count_import_reads_a_padded_workbook_by_its_content(tmp_path: Path) -> None:
    shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.toml")
    assert run_cli("init", "policy.toml", cwd=tmp_path).returncode == 0
    (tmp_path / "padded.xlsx").write_bytes(workbook(row(LAST_ROW, "类别", "好", "较好", "一般", "差")))
    done = run_cli("ballots", "import", "s1", "padded.xlsx", "--actor", "bureau", cwd=tmp_path)
    assert done.returncode == 0, done.stderr  # before the fix: no answer after 10 minutes
    assert "0 ballots imported" in done.stdout  # a header and no row of counts
    data = row(1, "类别", "好", "较好", "一般", "差", "发出") + row(LAST_ROW, "全体", 10, 5, 3, 2, 20)
    (tmp_path / "counts.xlsx").write_bytes(workbook(data))
    read = ballots.read_paper_counts(tmp_path / "counts.xlsx")
    assert len(read) == 1
    assert read[0].entry.counts["good"] == 10


def test_rows_keep_the_sheets_numbers_in_messages(tmp_path: Path) -> None:
    rows = (row(1, "编号", "党组织", "书记") + row(7, "s1", "第一中学党支部", "张三")
            + row(9, "s 2", "二中", "李四"))
    (tmp_path / "cases.xlsx").write_bytes(workbook(rows, dimension="A1:C9"))
    with pytest.raises(InputError, match=r"cases.xlsx, row 9, column A"):
        imports.read_cases(tmp_path / "cases.xlsx")


def test_formatting_only_rows_count_and_a_sheet_of_them_is_refused() -> None:
    empty = "".join(f'<row r="{n}" s="1" customFormat="1"/>' for n in range(2, MAX_SHEET_ROWS + 10))
    data = workbook(row(1, "编号", "党组织", "书记") + empty)
    assert len(data) < 2 * 1024 * 1024
    with pytest.raises(InputError, match=r"more than 250,000 rows.*\[sheet_too_large\]") as caught:
        list(xlsx_rows(data, "formatted.xlsx"))
    assert caught.value.reason == "sheet_too_large"  # type: ignore[attr-defined]
    assert "formatted.xlsx" in str(caught.value)


def test_cells_are_counted_as_wide_as_their_row() -> None:
    rows = "".join(f'<row r="{n}"><c r="XFD{n}"><v>1</v></c></row>' for n in range(1, 400))
    with pytest.raises(InputError, match=r"more than 5,000,000 cells \(reached at row 306\)"):
        list(xlsx_rows(workbook(rows, dimension="A1:XFD399"), "wide.xlsx"))
    few = list(xlsx_sheet_rows(workbook(rows, dimension="A1:XFD399"), "wide.xlsx", max_cells=10**9))
    assert len(few) == 399
    assert len(few[0][1]) == 16_384


def test_what_follows_the_data_is_never_parsed() -> None:
    merged = "<mergeCells>" + "".join(f'<mergeCell ref="A{n}:B{n}"/>' for n in range(1, 400_000)) + \
        "</mergeCells>"
    data = workbook(row(1, "编号", "党组织", "书记") + row(2, "s1", "一中", "张三"), after=merged)
    assert list(xlsx_rows(data, "merged.xlsx")) == [["编号", "党组织", "书记"], ["s1", "一中", "张三"]]


def test_the_importers_own_row_limits_are_the_ones_a_real_file_meets() -> None:
    assert imports.MAX_ROWS + 1 < MAX_SHEET_ROWS
    assert ballots.MAX_IMPORT_ROWS + 1 < MAX_SHEET_ROWS
