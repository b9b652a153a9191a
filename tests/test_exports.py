"""Exports: the results workbook (safe from formula injection), the 公示 notice, the special-report
skeleton, the diagram, and result rows (ranking)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

import reviewflow as rf
from reviewflow.export import (
    ResultRow,
    collect_results,
    mermaid,
    notice_html,
    notice_markdown,
    rank_rows,
    safe_text,
    special_report_skeleton,
    write_workbook,
)
from reviewflow.export.diagram import dot, edges
from reviewflow.export.xlsx import FORMULA_START, csv_text
from reviewflow.testing import Cast, drive_to, seed_campaign

HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx",
           "=cmd|' /C calc'!A0", "普通文字"]


def row(case_id: str, score: int | None, **kw: object) -> ResultRow:
    value = None if score is None else Decimal(score)
    return ResultRow(case_id=case_id, organization=kw.pop("organization", f"org {case_id}"),  # type: ignore[arg-type]
                     secretary=kw.pop("secretary", "张三"), stage="closed", score=value,  # type: ignore[arg-type]
                     rounded=value, **kw)  # type: ignore[arg-type]


def all_cells(path: Path) -> list[object]:
    wb = load_workbook(path)
    out = []
    for ws in wb.worksheets:
        for r in ws.iter_rows():
            out.extend(r)
    return out


def test_no_cell_of_the_workbook_is_a_formula(tmp_path: Path) -> None:
    rows = rank_rows([row(f"c{i}", 80 + i, organization=text, secretary=text, grade=text)
                      for i, text in enumerate(HOSTILE)])
    policy = rf.Policy.default(year=2016)
    path = write_workbook(rows, tmp_path / "r.xlsx", policy=policy, title="=1+1")
    cells = all_cells(path)
    assert not [c for c in cells if c.data_type == "f"]
    texts = [c.value for c in cells if isinstance(c.value, str)]
    for text in HOSTILE:
        # kept as text (XML turns a lone carriage return into a line feed)
        assert text.replace("\r", "\n") in texts
    risky = [c for c in cells if isinstance(c.value, str) and c.value.startswith(FORMULA_START)]
    assert risky
    assert all(c.quotePrefix for c in risky)


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=30).filter(lambda t: "\x00" not in t))
def test_any_organisation_name_stays_text(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    name = ILLEGAL_CHARACTERS_RE.sub("", name) or "x"
    path = write_workbook([row("c1", 90, organization=name)], tmp_path_factory.mktemp("x") / "r.xlsx")
    cells = all_cells(path)
    assert not [c for c in cells if c.data_type == "f"]


def test_the_workbook_has_one_row_per_case_and_a_formula_sheet(tmp_path: Path) -> None:
    rows = rank_rows([row("a", 90), row("b", 80), row("c", None)])
    path = write_workbook(rows, tmp_path / "r.xlsx", policy=rf.Policy.default(year=2016), lang="en")
    wb = load_workbook(path)
    results, formula = wb.worksheets
    assert results.max_row == 4
    assert [results.cell(row=r, column=2).value for r in (2, 3, 4)] == ["a", "b", "c"]
    assert [results.cell(row=r, column=1).value for r in (2, 3, 4)] == [1, 2, None]
    assert "good×100" in formula.cell(row=1, column=2).value


def test_csv_cells_get_an_apostrophe() -> None:
    assert [safe_text(t)[0] for t in HOSTILE[:6]] == ["'"] * 6
    assert safe_text("第一中学") == "第一中学"


def test_control_characters_in_names_are_written_as_a_visible_replacement(tmp_path: Path) -> None:
    names = ["第一\x01中学", "\x1b=1+1", "a\x00b\x0bc\x7fd"]
    rows = rank_rows([row(f"c{i}", 80, organization=n, secretary=n, grade=n)
                      for i, n in enumerate(names)])
    path = write_workbook(rows, tmp_path / "r.xlsx", title="标题\x02")
    texts = [c.value for c in all_cells(path) if isinstance(c.value, str)]
    assert "第一\ufffd中学" in texts
    assert "\ufffd=1+1" in texts
    assert "a\ufffdb\ufffdc\x7fd" in texts  # DEL is allowed in a workbook
    assert "标题\ufffd" in texts


def test_csv_text_quotes_line_breaks_and_guards_every_line_start() -> None:
    import csv
    import io

    text = csv_text([["name", "n"], ["第一中学\r=1+1", 1], ["-2", Decimal("-2.5")], ["普通", 3]])
    assert text.endswith("\r\n")
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        ["name", "n"], ["第一中学\r'=1+1", "1"], ["'-2", "-2.5"], ["普通", "3"]]
    assert safe_text("a\n\t=x") == "a\n'\t=x"
    assert safe_text("a\r\r=x") == "a\r'\r'=x"
    assert safe_text("a\nb") == "a\nb"


def test_equal_scores_share_a_rank() -> None:
    ranked = rank_rows([row("a", 80), row("b", 90), row("c", 80), row("d", None), row("e", 70)])
    assert [(r.case_id, r.rank) for r in ranked] == [("b", 1), ("a", 2), ("c", 2), ("e", 4), ("d", None)]


def test_the_notice_escapes_html_and_markdown() -> None:
    rows = rank_rows([row("a", 90, organization="<script>alert(1)</script>", secretary="a|b")])
    page = notice_html(rows, issuer="<b>局</b>")
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "&lt;b&gt;局&lt;/b&gt;" in page
    md = notice_markdown(rows)
    assert "a\\|b" in md
    assert "\\<script\\>" in md


def test_results_and_skeleton_from_a_real_campaign(tmp_path: Path) -> None:
    campaign, clock = seed_campaign()
    cast = Cast.default()
    campaign.open_case("s1", organization="第一中学党支部", secretary=cast.secretary("s1"))
    campaign.open_case("s2", organization="第二小学党支部", secretary=cast.secretary("s2"))
    drive_to(campaign, "s1", rf.Stage.REPORT_BACK, cast=cast, clock=clock)
    rows = collect_results(campaign)
    assert [(r.case_id, r.rank, str(r.rounded)) for r in rows] == [("s1", 1, "79.00"), ("s2", None, "None")]
    assert rows[0].counts == {"good": 10, "fairly_good": 5, "average": 3, "poor": 2}
    assert rows[0].valid == 20
    text = special_report_skeleton(campaign.case("s1"), rows[0])
    assert "组织生活不规范" in text
    assert "得分 79.00" in text
    assert "| 1 | 组织生活不规范 |" in text


def test_the_diagram_has_every_stage_and_edge() -> None:
    text = mermaid(rf.Policy.default(year=2016))
    for stage in rf.Stage:
        assert f"as {stage.value}" in text
    found = edges()
    assert (rf.Stage.APPROVAL, "return_for_revision", rf.Stage.DRAFTING) in found
    assert (rf.Stage.REPORT_BACK, "submit_special_report", rf.Stage.CLOSED) in found
    assert "due 2016-01-18 00:00:00 CST (hard)" in text
    assert "[organizer]" in text
    assert dot().startswith("digraph reviewflow {")
