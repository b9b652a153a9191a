"""Identifiers and names at every door: NFC, no control or format character, no padding.

Case ids, actor ids, idempotency keys and names are normalised to NFC and refused
(``InputError``, reason ``bad_identifier``, naming the character and its position)
when they hold a control character, a format character (zero-width space, joiners,
direction overrides and isolates, a byte-order mark inside) or, for ids, white space
at either end. The same rule applies to lookups, on every store: ``case("s1 ")``
never finds ``s1`` (MariaDB's padding collation would), and the decomposed spelling
of an id finds the case opened with the composed one.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from pathlib import Path

import pendulum
import pytest

import reviewflow as rf
from reviewflow import imports
from reviewflow.cli import main
from reviewflow.testing import Cast, seed_campaign

CAST = Cast.default()
NFC = "café-1"
NFD = unicodedata.normalize("NFD", NFC)
#: (text, the character refused, its 1-based position)
HIDDEN = [
    ("s1\u200b", "U+200B", 3),  # zero-width space
    ("s\u200d1", "U+200D", 2),  # zero-width joiner
    ("\u202es1", "U+202E", 1),  # right-to-left override
    ("s\u202a1", "U+202A", 2),  # left-to-right embedding
    ("s\u20661", "U+2066", 2),  # left-to-right isolate
    ("s\u20691", "U+2069", 2),  # pop directional isolate
    ("s\ufeff1", "U+FEFF", 2),  # byte-order mark inside
    ("s\u00ad1", "U+00AD", 2),  # soft hyphen
    ("s\x1b[31m1", "U+001B", 2),  # ESC
    ("s\u20281", "U+2028", 2),  # line separator
]


def test_the_composed_and_decomposed_spellings_differ_as_text() -> None:
    assert NFC != NFD  # the premise of the tests below


@pytest.mark.parametrize(("text", "code", "position"), HIDDEN)
def test_a_hidden_character_in_a_case_id_is_refused_naming_it(text: str, code: str,
                                                              position: int) -> None:
    campaign, _ = seed_campaign()
    with pytest.raises(rf.InputError) as caught:
        campaign.open_case(text, organization="一中", secretary=CAST.secretary("s1"))
    assert caught.value.reason == "bad_identifier"
    assert f"character {position} is {code}" in str(caught.value)
    assert "remove it" in str(caught.value)
    assert campaign.cases() == []


@pytest.mark.parametrize(("text", "code", "position"), HIDDEN)
def test_a_hidden_character_in_a_name_or_actor_id_is_refused(text: str, code: str,
                                                             position: int) -> None:
    campaign, _ = seed_campaign()
    with pytest.raises(rf.InputError, match=re.escape(f"character {position + 4} is {code}")):
        campaign.open_case("s1", organization=f"第一中学{text}", secretary=CAST.secretary("s1"))
    with pytest.raises(rf.InputError, match=re.escape(code)):
        rf.Actor(text, "张三", roles={"secretary"})
    with pytest.raises(rf.InputError, match=re.escape(code)):
        rf.Actor("zs", f"张三{text}", roles={"secretary"})
    assert campaign.cases() == []


@pytest.mark.parametrize("text", ["s1 ", " s1", "s1\u3000", "s1\u00a0", "s1\t"])
def test_an_id_with_white_space_at_either_end_is_refused(text: str) -> None:
    campaign, _ = seed_campaign()
    with pytest.raises(rf.InputError, match="bad_identifier"):
        campaign.open_case(text, organization="一中", secretary=CAST.secretary("s1"))
    with pytest.raises(rf.InputError, match="bad_identifier"):
        rf.Actor(text, "x")


@pytest.fixture(params=["memory", "sqlite", "postgresql", "mysql"])
def campaign(request: pytest.FixtureRequest) -> rf.Campaign:
    url = None if request.param == "memory" else request.getfixturevalue(f"{request.param}_url")
    return rf.Campaign(rf.Policy.default(year=2016), store=url, campaign_id=secrets.token_hex(6),
                       clock=rf.FrozenClock(pendulum.datetime(2016, 1, 4, 9, tz="Asia/Shanghai")))


def test_lookups_apply_the_same_rule_on_every_store(campaign: rf.Campaign) -> None:
    campaign.open_case("s1", organization="一中", secretary=CAST.secretary("s1"))
    campaign.open_case(NFD, organization=unicodedata.normalize("NFD", "第一中学 é"),
                       secretary=rf.Actor(NFD, NFD, roles={"secretary"}))
    case = campaign.case(NFC)
    assert case.case_id == NFC
    assert case.secretary.id == NFC
    assert case.secretary.name == NFC
    assert case.organization == "第一中学 é"
    assert campaign.case(NFD).case_id == NFC
    assert [c.case_id for c in campaign.cases()] == sorted(["s1", NFC])
    with pytest.raises(rf.DuplicateCaseError):
        campaign.open_case(NFC, organization="二中", secretary=CAST.secretary("x"))
    for padded in ("s1 ", " s1", "s1\u200b"):
        with pytest.raises(rf.InputError, match="bad_identifier"):
            campaign.case(padded)
        with pytest.raises(rf.InputError, match="bad_identifier"):
            campaign.fire(padded, "finish_research", actor=CAST.organizer, problems=["p"])
    campaign.fire(NFD, "finish_research", actor=CAST.organizer, problems=["p"])
    assert campaign.case(NFC).stage is rf.Stage.DRAFTING
    assert campaign.case("s1").version == 1
    campaign.store.close()


def test_idempotency_keys_follow_the_rule(campaign: rf.Campaign) -> None:
    campaign.open_case("s1", organization="一中", secretary=CAST.secretary("s1"))
    for bad in ("k1 ", "k\u200b1", "k\x001"):
        with pytest.raises(rf.InputError, match="idempotency_key"):
            campaign.fire("s1", "finish_research", actor=CAST.organizer, problems=["p"],
                          idempotency_key=bad)
    assert campaign.case("s1").version == 1
    campaign.fire("s1", "finish_research", actor=CAST.organizer, problems=["p"],
                  idempotency_key=NFC)
    # the decomposed spelling of the key is the same key: a replay, not a second step
    campaign.fire("s1", "finish_research", actor=CAST.organizer, problems=["p"],
                  idempotency_key=NFD)
    assert campaign.case("s1").version == 2
    campaign.store.close()


# ---------------------------------------------------------------------- imports


def _csv(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "cases.csv"
    path.write_text("编号,党组织,书记,书记编号\n" + "".join(f"{r}\n" for r in rows), encoding="utf-8")
    return path


def _xlsx(tmp_path: Path, rows: list[list[str]]) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["编号", "党组织", "书记", "书记编号"])
    for row in rows:
        ws.append(row)
    path = tmp_path / "cases.xlsx"
    wb.save(path)
    return path


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_ids_differing_by_a_zero_width_space_do_not_import_as_two_cases(
        tmp_path: Path, kind: str) -> None:
    rows = [["s1", "一中", "张三", "zs"], ["s1\u200b", "二中", "李四", "ls"]]
    path = _csv(tmp_path, [",".join(r) for r in rows]) if kind == "csv" else _xlsx(tmp_path, rows)
    with pytest.raises(rf.InputError) as caught:
        imports.read_cases(path)
    assert "row 3, column A" in str(caught.value)
    assert "U+200B" in str(caught.value)


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_composed_and_decomposed_ids_are_one_case_in_an_import(tmp_path: Path, kind: str) -> None:
    rows = [[NFC, "一中", "张三", "zs"], [NFD, "二中", "李四", "ls"]]
    path = _csv(tmp_path, [",".join(r) for r in rows]) if kind == "csv" else _xlsx(tmp_path, rows)
    with pytest.raises(rf.InputError, match="listed twice"):
        imports.read_cases(path)


@pytest.mark.parametrize(("column", "value"), [(1, "一中\u202e"), (2, "张\u200d三"), (3, "zs\u2066")])
def test_hidden_characters_in_imported_names_and_secretary_ids_are_refused(
        tmp_path: Path, column: int, value: str) -> None:
    row = ["s1", "一中", "张三", "zs"]
    row[column] = value
    with pytest.raises(rf.InputError, match=f"row 2, column {'ABCD'[column]}.*U\\+"):
        imports.read_cases(_csv(tmp_path, [",".join(row)]))


def test_imported_ids_and_names_are_stored_in_nfc(tmp_path: Path) -> None:
    name = unicodedata.normalize("NFD", "第一中学é")
    [row] = imports.read_cases(_csv(tmp_path, [f"{NFD},{name},{NFD},{NFD}"])).rows
    assert row["case_id"] == NFC
    assert row["organization"] == unicodedata.normalize("NFC", name)
    assert row["secretary"].id == NFC
    assert row["secretary"].name == NFC


# ---------------------------------------------------------------------- the CLI


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from reviewflow.policy_file import DEFAULT_POLICY_FILE

    monkeypatch.chdir(tmp_path)
    for name in ("REVIEWFLOW_NOW", "REVIEWFLOW_DB", "REVIEWFLOW_CONFIG", "REVIEWFLOW_CAMPAIGN"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "policy.toml").write_bytes(DEFAULT_POLICY_FILE.read_bytes())
    (tmp_path / "branches.csv").write_text(f"编号,党组织,书记\ns1,一中,张三\n{NFD},二中,李四\n",
                                           encoding="utf-8")
    assert main(["init", "policy.toml", "--rehearsal"]) == 0
    assert main(["--now", "2016-01-05T09:00+08:00", "cases", "import", "branches.csv"]) == 0
    return tmp_path


@pytest.mark.parametrize("case_id", ["s1 ", "s1\u200b", "\u202es1"])
def test_the_cli_refuses_a_bad_case_id_with_exit_2(workdir: Path, case_id: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--lang", "en", "--now", "2016-01-05T09:00+08:00", "fire", case_id,
                 "finish_research", "--actor", "bureau", "--role", "organizer",
                 "--data", '{"problems": ["p"]}'])
    err = capsys.readouterr().err
    assert code == 2
    assert "bad_identifier" in err


def test_the_cli_refuses_a_bad_actor_id_and_finds_a_decomposed_case(
        workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--lang", "en", "--now", "2016-01-05T09:00+08:00", "fire", "s1",
                 "finish_research", "--actor", "bureau\u200b", "--role", "organizer",
                 "--data", '{"problems": ["p"]}'])
    assert code == 2
    assert "U+200B" in capsys.readouterr().err
    assert main(["--now", "2016-01-05T09:00+08:00", "fire", NFD, "finish_research",
                 "--actor", "bureau", "--role", "organizer", "--data", '{"problems": ["p"]}']) == 0
    capsys.readouterr()
    assert main(["show", NFC]) == 0
    assert "drafting" in capsys.readouterr().out
