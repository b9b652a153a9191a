"""Case import from CSV and XLSX: headers in Chinese or English, and every bad file refused
with its row and column, before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

import reviewflow as rf
from reviewflow.imports import MAX_IMPORT_BYTES, read_cases
from reviewflow.testing import seed_campaign


def csv_file(tmp_path: Path, text: str, name: str = "cases.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def xlsx_file(tmp_path: Path, rows: list[list[object]], name: str = "cases.xlsx") -> Path:
    wb = Workbook()
    for r in rows:
        wb.active.append(r)
    path = tmp_path / name
    wb.save(path)
    return path


def test_chinese_headers_in_csv_with_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes("\ufeff编号,党组织,书记,书记编号,指导组,上年问题\n"
                     "s1,第一中学党支部,张三,zhang,,党员发展滞后；组织生活不规范\n".encode())
    rows = read_cases(path).rows
    assert rows[0]["case_id"] == "s1"
    assert rows[0]["secretary"] == rf.Actor("zhang", "张三", roles={"secretary"})
    assert rows[0]["carried_over"] == ["党员发展滞后", "组织生活不规范"]
    assert "guidance_group" not in rows[0]


def test_english_headers_in_xlsx_open_in_a_campaign(tmp_path: Path) -> None:
    path = xlsx_file(tmp_path, [["Case_ID", "Organization", "Secretary", "notes"],
                                ["s1", "第一中学党支部", "张三", "x"], [None, None, None, None],
                                [2, "第二小学党支部", "李四", None]])
    loaded = read_cases(path)
    assert [r["case_id"] for r in loaded.rows] == ["s1", "2"]
    assert loaded.ignored_columns == ("notes",)
    campaign, _clock = seed_campaign()
    assert [c.case_id for c in campaign.open_cases(loaded.rows)] == ["s1", "2"]


@pytest.mark.parametrize(("text", "where"), [
    ("编号,党组织\ns1,一中\n", "row 1: missing column"),
    ("编号,党组织,书记\ns1,一中,\n", "row 2, column C (书记): empty"),
    ("编号,党组织,书记\ns1,一中,张\ns2,二中,李\ns1,三中,王\n",
     "row 4, column A (编号): case 's1' is listed twice (also row 2)"),
    ("编号,党组织,书记\nbad id,一中,张\n", "row 2, column A (编号)"),
    ("编号,党组织,书记,编号\ns1,一中,张,s2\n", "appears twice"),
    ("编号,党组织,书记\n", "no cases"),
    ("\n", "the first row must name the columns"),
    ("编号,党组织,书记\ns1,\"一中,张\n", "not valid CSV"),
    ("编号,党组织,书记\ns1,一\x01中,张\n", "control characters"),
])
def test_bad_csv_names_row_and_column(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(rf.InputError, match=r"cases\.csv") as info:
        read_cases(csv_file(tmp_path, text))
    assert where in str(info.value)


def test_a_case_already_open_and_an_unknown_group_are_refused(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "编号,党组织,书记,指导组\ns1,一中,张,第一组\n")
    with pytest.raises(rf.InputError, match="already open"):
        read_cases(path, existing=["s1"])
    with pytest.raises(rf.InputError, match=r"column D .指导组.: unknown guidance group"):
        read_cases(path, guidance_groups=["第二组"])


def test_gbk_csv_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes("编号,党组织,书记\ns1,第一中学党支部,张三\n".encode("gbk"))
    with pytest.raises(rf.InputError, match=r"not UTF-8.*GBK"):
        read_cases(path)


def test_files_too_large_or_of_the_wrong_kind_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    with big.open("wb") as f:
        f.truncate(50 * 1024 * 1024)
    assert MAX_IMPORT_BYTES < 50 * 1024 * 1024
    with pytest.raises(rf.InputError, match="MB"):
        read_cases(big)
    with pytest.raises(rf.InputError, match="not a readable XLSX"):
        read_cases(csv_file(tmp_path, "hello", "fake.xlsx"))
    with pytest.raises(rf.InputError, match="unknown file type"):
        read_cases(csv_file(tmp_path, "x", "cases.json"))
    with pytest.raises(rf.InputError, match="no such file"):
        read_cases(tmp_path / "none.csv")


def test_a_zip_bomb_workbook_is_refused_before_unpacking(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (210 * 1024 * 1024))
    with pytest.raises(rf.InputError, match="unpacks to"):
        read_cases(path)


def _workbook_bytes(tmp_path: Path) -> bytearray:
    return bytearray(xlsx_file(tmp_path, [["编号", "党组织", "书记"], ["s1", "一中", "张三"]],
                               "good.xlsx").read_bytes())


def test_a_workbook_needing_a_newer_zip_version_is_an_input_error(tmp_path: Path) -> None:
    data = _workbook_bytes(tmp_path)
    at = data.find(b"PK\x01\x02")
    while at != -1:
        data[at + 6] = 162  # "version needed to extract": 16.2, which zipfile cannot read
        at = data.find(b"PK\x01\x02", at + 4)
    path = tmp_path / "new.xlsx"
    path.write_bytes(bytes(data))
    with pytest.raises(rf.InputError, match=r"not a readable XLSX workbook \(NotImplementedError") \
            as info:
        read_cases(path)
    assert str(path) in str(info.value)
    assert "save it again" in str(info.value)


def test_a_workbook_with_damaged_deflate_data_is_an_input_error(tmp_path: Path) -> None:
    import struct
    import zipfile

    data = _workbook_bytes(tmp_path)
    with zipfile.ZipFile(tmp_path / "good.xlsx") as archive:
        at = archive.getinfo("xl/worksheets/sheet1.xml").header_offset
    name_len, extra_len = struct.unpack("<HH", data[at + 26:at + 30])
    data[at + 30 + name_len + extra_len] = 0xFF  # an invalid deflate block type
    path = tmp_path / "damaged.xlsx"
    path.write_bytes(bytes(data))
    with pytest.raises(rf.InputError, match=r"not a readable XLSX workbook \(error: Error -3"):
        read_cases(path)


def test_a_device_or_fifo_behind_the_path_is_refused_unread(tmp_path: Path) -> None:
    import os

    link = tmp_path / "cases.csv"
    link.symlink_to(os.devnull)
    with pytest.raises(rf.InputError, match="not a regular file"):
        read_cases(link)
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)  # refused before it is opened: no writer needed, nothing blocks
    with pytest.raises(rf.InputError, match="not a regular file"):
        read_cases(fifo)


def test_a_csv_field_past_the_parsers_limit_is_an_input_error(tmp_path: Path) -> None:
    path = csv_file(tmp_path, '编号,党组织,书记\ns1,"' + "x" * 200_000 + '",张三\n')
    with pytest.raises(rf.InputError, match=r"row 2: not a readable CSV file \(not valid CSV: "
                                            "field larger than field limit"):
        read_cases(path)


def test_nothing_is_opened_when_the_store_refuses_one_row(tmp_path: Path) -> None:
    campaign, _clock = seed_campaign()
    campaign.open_case("s2", organization="二中", secretary=rf.Actor("x", "x", roles={"secretary"}))
    rows = read_cases(csv_file(tmp_path, "编号,党组织,书记\ns1,一中,张\ns2,二中,李\n")).rows
    with pytest.raises(rf.DuplicateCaseError):
        campaign.open_cases(rows)
    assert [c.case_id for c in campaign.cases()] == ["s2"]


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_give_rows_or_an_input_error(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("f") / "x.csv"
    path.write_bytes("编号,党组织,书记\n".encode() + data)
    try:
        loaded = read_cases(path)
    except rf.InputError:
        return
    assert all(r["case_id"] and r["organization"] for r in loaded.rows)


def test_a_line_break_inside_an_organisation_name_names_its_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    path.write_text('case_id,organization,secretary\nc1,"第一中学\n党支部",张三\n', encoding="utf-8")
    with pytest.raises(rf.InputError, match="organization") as info:
        read_cases(path)
    assert "row" in str(info.value)
