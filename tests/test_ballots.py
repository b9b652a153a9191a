"""The on-site vote: tokens, secret ballots, paper counts and imports, validity, quorum."""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import threading
import zipfile
from pathlib import Path
from typing import Any

import attrs
import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewflow.ballots import (
    Ballot,
    MemoryTokenBook,
    PaperCount,
    Tally,
    TokenBook,
    Vote,
    cast,
    category_results,
    classify_marks,
    close_round,
    enter_paper,
    issue_tokens,
    open_round,
    read_paper_counts,
    recount,
    tally,
    verify_vote,
    void_round,
)
from reviewflow.exceptions import BallotError, InputError, ScoringError, TransitionRefused
from reviewflow.scoring import ScoringPolicy, VoteRules


def _vote(counts: dict[str, int] | None = None) -> tuple[Vote, MemoryTokenBook, list[str]]:
    vote, book = Vote(case_id="school-01"), MemoryTokenBook()
    tokens = issue_tokens(vote, book, counts or {"party_member": 6, "public": 6})
    return vote, book, [t.token for t in tokens]


# --------------------------------------------------------------------------- tallies


def test_tally_counts_options_labels_and_blanks() -> None:
    t = tally(["good", "好", "poor", None, "较好"], issued=6)
    assert dict(t.counts) == {"good": 2, "fairly_good": 1, "average": 0, "poor": 1}
    assert (t.valid, t.invalid, t.blank, t.returned) == (4, 0, 1, 5)
    assert tally([None], blank="invalid").invalid == 1
    with pytest.raises(ScoringError, match="unknown option"):
        tally(["excellent"])


@pytest.mark.parametrize(("marks", "readable", "expected"), [
    (["好"], True, "good"),
    (["good"], True, "good"),
    (["好", "差"], True, "invalid"),  # over-marked
    (["好"], False, "invalid"),       # unreadable
    (["优秀"], True, "invalid"),      # not an option
    ([], True, "blank"),
    ([" "], True, "blank"),
])
def test_classify_paper_ballot(marks: list[str], readable: bool, expected: str) -> None:
    assert expected == classify_marks(marks, readable=readable)


def test_blank_ballot_is_invalid_when_the_policy_says_so() -> None:
    assert classify_marks([], rules=VoteRules(blank="invalid")) == "invalid"


# --------------------------------------------------------------------------- tokens and ballots


def test_tokens_are_issued_per_category_and_hashed() -> None:
    vote, book, tokens = _vote({"party_member": 3, "教师代表": 2})
    assert len(set(tokens)) == 5
    assert vote.rounds[0].issued == {"party_member": 3, "teacher": 2}
    assert isinstance(book, TokenBook)
    assert all(t not in repr(book.__dict__) for t in tokens)  # only hashes are kept
    with pytest.raises(BallotError) as info:
        issue_tokens(vote, book, {"martians": 1})
    assert info.value.reason == "unknown_category"


def test_cast_stores_an_anonymous_ballot() -> None:
    vote, book, tokens = _vote()
    ballot = cast(vote, book, tokens[0], "较好")
    assert {"ballot_id", "round", "category", "choice"} == {a.name for a in attrs.fields(Ballot)}
    assert ballot.choice == "fairly_good"
    assert tokens[0] not in json.dumps(vote.to_json())
    assert len(vote.rounds[0].ballots) == 1


def test_token_is_accepted_in_lower_case_and_without_the_dash() -> None:
    vote, book, tokens = _vote()
    cast(vote, book, tokens[0].replace("-", "").lower(), "good")
    assert len(vote.rounds[0].ballots) == 1


@pytest.mark.parametrize("reason", ["token_used", "unknown_token", "wrong_case"])
def test_bad_token_is_refused_and_records_nothing(reason: str) -> None:
    vote, book, tokens = _vote()
    other = Vote(case_id="school-02")
    other_tokens = issue_tokens(other, book, {"public": 1})
    cast(vote, book, tokens[0], "good")
    token = {"token_used": tokens[0], "unknown_token": "AAAAA-BBBBB",
             "wrong_case": other_tokens[0].token}[reason]
    with pytest.raises(BallotError) as info:
        cast(vote, book, token, "poor")
    assert reason == info.value.reason
    assert len(vote.rounds[0].ballots) == 1
    assert len(other.rounds[0].ballots) == 0


def test_unknown_option_keeps_the_token_usable() -> None:
    vote, book, tokens = _vote()
    with pytest.raises(BallotError) as info:
        cast(vote, book, tokens[0], "excellent")
    assert info.value.reason == "unknown_option"
    cast(vote, book, tokens[0], "good")
    assert len(vote.rounds[0].ballots) == 1


def test_ballots_are_stored_in_random_id_order_not_cast_order() -> None:
    vote, book, tokens = _vote({"public": 12})
    cast_ids = [cast(vote, book, t, "good").ballot_id for t in tokens]
    stored = [b["id"] for b in vote.to_json()["rounds"][0]["ballots"]]
    assert sorted(cast_ids) == stored
    assert cast_ids != stored  # 1 in 12! that they coincide


def test_a_cast_does_not_rebuild_the_round_so_a_vote_stays_linear() -> None:
    """Review 1, finding 6: every cast re-sorted the whole round (a copy of it per cast)."""
    import tracemalloc

    vote, book, tokens = _vote({"public": 5001})
    for t in tokens[:5000]:
        cast(vote, book, t, "good")
    tracemalloc.start()
    try:
        cast(vote, book, tokens[5000], "good")
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64_000, f"one cast into 5000 ballots allocated {peak} bytes at its peak"


def test_every_way_of_reading_a_round_lists_the_ballots_by_id() -> None:
    vote, book, tokens = _vote({"public": 12})
    cast_ids = [cast(vote, book, t, "good").ballot_id for t in tokens]
    assert cast_ids != sorted(cast_ids)  # 1 in 12! that they coincide
    r = vote.current
    assert r is not None
    by_id = sorted(cast_ids)
    seen = {
        "iter": list(r.ballots), "keys": list(r.ballots.keys()),
        "values": [b.ballot_id for b in r.ballots.values()],
        "items": [k for k, _b in r.ballots.items()], "dict": list(dict(r.ballots)),
        "copy": list(r.ballots.copy()), "or": list(r.ballots | {}),
        "ror": list({} | r.ballots), "json": list(json.loads(json.dumps(r.ballots, default=str))),
        "repr": [k for k in by_id if k in repr(r.ballots)],
        "reversed": list(reversed(r.ballots))[::-1],
    }
    assert seen == dict.fromkeys(seen, by_id)
    assert [repr(r.ballots).index(k) for k in by_id] == sorted(repr(r.ballots).index(k) for k in by_id)
    assert r.ballots.popitem()[0] == by_id[-1]
    again = type(r)(number=2, ballots={b: r.ballots[b] for b in reversed(by_id[:-1])})
    assert list(again.ballots) == by_id[:-1]


def test_concurrent_redemptions_of_one_token_yield_one_ballot() -> None:
    vote, book, tokens = _vote()
    errors: list[str] = []
    barrier = threading.Barrier(16)

    def voter() -> None:
        barrier.wait()
        try:
            cast(vote, book, tokens[0], "good")
        except BallotError as exc:
            errors.append(exc.reason)

    threads = [threading.Thread(target=voter) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(vote.rounds[0].ballots) == 1
    assert errors == ["token_used"] * 15


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=2, max_value=12))
def test_concurrent_redemptions_property(n: int) -> None:
    book = MemoryTokenBook()
    vote = Vote(case_id="c")
    token = issue_tokens(vote, book, {"public": 1})[0].token
    threads = [threading.Thread(target=_try_cast, args=(vote, book, token)) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(vote.rounds[0].ballots) == 1


def _try_cast(vote: Vote, book: MemoryTokenBook, token: str) -> None:
    with contextlib.suppress(BallotError):
        cast(vote, book, token, "good")


# --------------------------------------------------------------------------- closing


def test_close_freezes_and_recount_equals_tally() -> None:
    vote, book, tokens = _vote()
    for t, choice in zip(tokens, ["good"] * 6 + ["fairly_good"] * 3 + [None, "poor"], strict=False):
        cast(vote, book, t, choice)
    result = close_round(vote)
    assert result.status == "closed"
    assert result.tally == recount(vote.rounds[0])
    assert (result.tally.returned, result.tally.issued, result.tally.blank) == (11, 12, 1)
    assert vote.result == result.tally
    assert verify_vote(vote) == []
    with pytest.raises(BallotError) as info:
        cast(vote, book, tokens[11], "good")
    assert info.value.reason == "vote_closed"
    with pytest.raises(BallotError):
        enter_paper(vote, PaperCount(counts={"good": 1}, issued=1))


def test_tampering_with_stored_ballots_is_detected() -> None:
    vote, book, tokens = _vote()
    for t in tokens[:8]:
        cast(vote, book, t, "good")
    close_round(vote)
    data = vote.to_json()
    data["rounds"][0]["ballots"][0]["choice"] = "poor"
    assert verify_vote(Vote.from_json(data))


def test_more_returned_than_issued_voids_the_round_and_a_revote_keeps_it() -> None:
    vote = Vote(case_id="c")
    enter_paper(vote, PaperCount(counts={"good": 30, "poor": 2}, issued=30))
    result = close_round(vote)
    assert result.status == "void"
    assert "returned_exceeds_issued" in (result.reason or "")
    assert vote.result is None
    second = open_round(vote)
    assert second.number == 2
    enter_paper(vote, PaperCount(counts={"good": 28, "poor": 2}, issued=30))
    assert close_round(vote).status == "closed"
    assert [r.status for r in vote.rounds] == ["void", "closed"]
    assert vote.result.counts["good"] == 28 if vote.result else False


def test_revote_after_a_closed_round_needs_a_reason() -> None:
    vote = Vote(case_id="c")
    enter_paper(vote, PaperCount(counts={"good": 3}, issued=3))
    close_round(vote)
    with pytest.raises(BallotError):
        open_round(vote)
    assert open_round(vote, reason="计票错误，重新测评").number == 2


def test_quorum_not_met_refuses_closing_and_changes_nothing() -> None:
    policy = ScoringPolicy(vote=VoteRules(quorum="2/3"))
    vote, book, tokens = _vote()
    for t in tokens[:7]:
        cast(vote, book, t, "good")
    with pytest.raises(TransitionRefused) as info:
        close_round(vote, policy)
    assert info.value.reason == "quorum_not_met"
    assert info.value.details["needed"] == 8
    assert vote.rounds[0].status == "open"
    cast(vote, book, tokens[7], "good")
    assert close_round(vote, policy).status == "closed"


def test_grassroots_share() -> None:
    policy = ScoringPolicy(vote=VoteRules(min_grassroots_share="1/2"))
    vote, book, tokens = _vote({"party_member": 6, "public": 4})
    for t in tokens:
        cast(vote, book, t, "good")
    with pytest.raises(TransitionRefused) as info:
        close_round(vote, policy)
    assert info.value.reason == "quorum_not_met"


def test_eligible_attendees_beyond_ballots_issued_count_for_quorum() -> None:
    policy = ScoringPolicy(vote=VoteRules(quorum="1/2"))
    vote, book, tokens = _vote({"public": 4})
    vote.rounds[0].eligible = 10
    for t in tokens:
        cast(vote, book, t, "good")
    with pytest.raises(TransitionRefused):
        close_round(vote, policy)


def test_no_valid_ballots_cannot_close_but_can_be_voided() -> None:
    vote = Vote(case_id="c")
    enter_paper(vote, PaperCount(invalid=3, issued=5))
    with pytest.raises(TransitionRefused) as info:
        close_round(vote)
    assert info.value.reason == "no_valid_ballots"
    assert void_round(vote, "全部无效").status == "void"
    assert vote.result is None


# --------------------------------------------------------------------------- paper entry


def test_paper_entry_reconciliation() -> None:
    vote = Vote(case_id="c")
    with pytest.raises(InputError, match="do not reconcile"):
        enter_paper(vote, PaperCount(counts={"好": 10}, invalid=1, blank=1, issued=20,
                                     returned=13))
    assert vote.rounds == []
    enter_paper(vote, PaperCount(category="党员", counts={"好": 10}, invalid=1, blank=1,
                                 issued=20, returned=12))
    assert vote.rounds[0].issued == {"party_member": 20}


def test_paper_entry_twice_needs_replace_and_no_mixing() -> None:
    vote = Vote(case_id="c")
    enter_paper(vote, PaperCount(category="public", counts={"good": 3}, issued=3))
    with pytest.raises(BallotError) as info:
        enter_paper(vote, PaperCount(category="public", counts={"good": 4}, issued=4))
    assert info.value.reason == "already_entered"
    enter_paper(vote, PaperCount(category="public", counts={"good": 4}, issued=4), replace=True)
    assert vote.rounds[0].issued == {"public": 4}
    with pytest.raises(BallotError) as info:
        enter_paper(vote, PaperCount(counts={"good": 1}, issued=1))
    assert info.value.reason == "mixed_categories"


def test_paper_and_electronic_ballots_add_up() -> None:
    vote, book, tokens = _vote({"public": 2})
    cast(vote, book, tokens[0], "good")
    enter_paper(vote, PaperCount(category="party_member", counts={"average": 2}, issued=2))
    t = close_round(vote).tally
    assert (t.counts["good"], t.counts["average"], t.issued) == (1, 2, 4)


def test_category_results_hide_small_groups_and_their_complement() -> None:
    vote, book, tokens = _vote({"party_member": 8, "public": 6, "teacher": 2})
    for t in tokens:
        cast(vote, book, t, "good")
    shown = category_results(vote.rounds[0])
    assert shown["teacher"] is None
    assert shown["public"] is None  # else total - party_member would reveal the teachers
    assert isinstance(shown["party_member"], Tally)


# --------------------------------------------------------------------------- import


def _write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_import_csv_with_chinese_headers(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "counts.csv",
                      "类别,好,较好,一般,差,无效,弃权,发出,收回\n"
                      "党员,20,5,1,0,1,0,30,27\n"
                      "群众,10,8,2,1,0,2,25,23\n", "utf-8-sig")
    rows = read_paper_counts(path)
    assert [r.row for r in rows] == [2, 3]
    assert rows[0].entry.category == "party_member"
    assert dict(rows[1].entry.counts) == {"good": 10, "fairly_good": 8, "average": 2, "poor": 1}
    vote = Vote(case_id="c")
    enter_paper(vote, [r.entry for r in rows])
    assert close_round(vote).tally.returned == 50


def test_import_xlsx_with_english_headers_and_case_column(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["case", "category", "good", "fairly_good", "average", "poor", "invalid", "blank",
               "issued"])
    ws.append(["school-01", "all", 30, 10, 2, 0, 1, 0, 45])
    ws.append(["school-02", "all", 25, 12, 3, 1, 0, 1, 45])
    wb.save(tmp_path / "counts.xlsx")
    rows = read_paper_counts(tmp_path / "counts.xlsx")
    assert [r.case_id for r in rows] == ["school-01", "school-02"]
    assert rows[0].entry.category is None
    assert rows[0].entry.counts["good"] == 30


def test_bad_xlsx_cell_names_row_and_column(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["类别", "好", "较好", "一般", "差"])
    ws.append(["党员", 3, 2, 1, 0])
    ws.append(["群众", 3, "两", 1, 0])
    wb.save(tmp_path / "bad.xlsx")
    with pytest.raises(InputError, match=r"row 3, column C \(较好\)"):
        read_paper_counts(tmp_path / "bad.xlsx")


@pytest.mark.parametrize(("text", "encoding", "match"), [
    ("类别,好,优秀\n党员,1,2\n", "utf-8", r"column 3 header '优秀'"),
    ("类别,好,差\n党员,1,-2\n", "utf-8", r"row 2, column 3 \(差\)"),
    ("类别,好,差\n外星人,1,2\n", "utf-8", r"row 2, column 1 \(类别\)"),
    ("类别,好,差\n党员,1,2\n党员,1,1\n", "utf-8", "row 3 repeats row 2"),
    ("类别,好,差,收回\n党员,1,2,9\n", "utf-8", "row 2: .*reconcile"),
    ("类别,好,好\n党员,1,2\n", "utf-8", "repeats an earlier column"),
    ("类别,无效\n党员,1\n", "utf-8", "no option columns"),
    ("", "utf-8", "empty"),
    ("类别,好,差\n党员,1,2\n", "gbk", "not UTF-8"),
])
def test_bad_csv_is_refused_with_row_and_column(tmp_path: Path, text: str, encoding: str,
                                               match: str) -> None:
    path = _write_csv(tmp_path / "bad.csv", text, encoding)
    with pytest.raises(InputError, match=match):
        read_paper_counts(path)


def test_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "fake.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="not a readable XLSX"):
        read_paper_counts(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_paper_counts(tmp_path / "nope.csv")


def _counts_workbook() -> bytes:
    wb = openpyxl.Workbook()
    wb.active.append(["类别", "好", "较好", "一般", "差"])
    wb.active.append(["党员", 1, 2, 3, 4])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_a_device_behind_the_path_is_refused_unread(tmp_path: Path) -> None:
    link = tmp_path / "counts.csv"
    link.symlink_to(os.devnull)  # before the fix: read as an empty file; /dev/zero: read forever
    with pytest.raises(InputError, match="not a regular file") as info:
        read_paper_counts(link)
    assert str(link) in str(info.value)


def test_a_fifo_behind_the_path_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "counts.csv"
    os.mkfifo(fifo)
    done: list[BaseException | None] = []

    def read() -> None:
        try:
            read_paper_counts(fifo)
            done.append(None)
        except BaseException as exc:
            done.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():
        with open(fifo, "wb"):  # unblock the reader before failing
            pass
        pytest.fail("read_paper_counts blocked on a FIFO")
    assert isinstance(done[0], InputError)
    assert "not a regular file" in str(done[0])


def test_a_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    from reviewflow.ballots import MAX_IMPORT_BYTES

    path = tmp_path / "counts.csv"
    with path.open("wb") as fh:
        fh.truncate(MAX_IMPORT_BYTES + 1)
    with pytest.raises(InputError, match="larger than 10 MB"):
        read_paper_counts(path)


def test_a_workbook_with_damaged_deflate_data_is_an_input_error(tmp_path: Path) -> None:
    data = bytearray(_counts_workbook())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        at = archive.getinfo("xl/worksheets/sheet1.xml").header_offset
    name_len, extra_len = struct.unpack("<HH", data[at + 26:at + 30])
    data[at + 30 + name_len + extra_len] = 0xFF  # an invalid deflate block type: zlib.error
    path = tmp_path / "counts.xlsx"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"not a readable XLSX workbook \(error: Error -3") as info:
        read_paper_counts(path)
    assert str(path) in str(info.value)
    assert "save it again" in str(info.value)


def test_a_workbook_needing_a_newer_zip_version_is_an_input_error(tmp_path: Path) -> None:
    data = bytearray(_counts_workbook())
    at = data.find(b"PK\x01\x02")
    while at != -1:
        data[at + 6] = 162  # "version needed to extract": 16.2
        at = data.find(b"PK\x01\x02", at + 4)
    path = tmp_path / "counts.xlsx"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"not a readable XLSX workbook \(NotImplementedError: zip"):
        read_paper_counts(path)


# --------------------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["good", "fairly_good", "average", "poor", None]),
                min_size=1, max_size=40),
       st.sampled_from(["abstain", "invalid"]))
def test_recount_equals_tally(choices: list[str | None], blank: Any) -> None:
    policy = ScoringPolicy(vote=VoteRules(blank=blank))
    vote, book, tokens = _vote({"public": len(choices)})
    for token, choice in zip(tokens, choices, strict=True):
        cast(vote, book, token, choice, policy=policy)
    if not any(choices):
        with pytest.raises(TransitionRefused):
            close_round(vote, policy)
        return
    result = close_round(vote, policy)
    assert result.tally == recount(vote.rounds[0], policy)
    assert result.tally == tally(choices, blank=blank, issued=len(choices))
    restored = Vote.from_json(json.loads(json.dumps(vote.to_json())))
    assert verify_vote(restored, policy) == []


# --------------------------------------------------------------------------- in a campaign

from reviewflow.model import Stage  # noqa: E402
from reviewflow.testing import Cast, HookRecorder, drive_to, seed_campaign  # noqa: E402

CAST = Cast.default()
SCRUTINEER = CAST.organizer


def _campaign(n: int = 1) -> Any:
    campaign, clock = seed_campaign()
    for i in range(n):
        cid = f"s{i}"
        campaign.open_case(cid, organization=f"第{i}支部", secretary=CAST.secretary(cid))
        drive_to(campaign, cid, Stage.EVALUATION, cast=CAST, clock=clock)
        campaign.fire(cid, "comment", actor=CAST.superior, text="工作扎实")
        campaign.fire(cid, "comment", actor=CAST.delegate, text="成效明显")
    return campaign, clock


def test_vote_in_a_campaign_is_on_the_chain_and_ballots_are_not() -> None:
    campaign, _ = _campaign()
    tokens = campaign.issue_ballot_tokens("s0", {"party_member": 8, "public": 5},
                                          actor=SCRUTINEER)
    for t, choice in zip(tokens, ["good"] * 9 + ["fairly_good"] * 3 + ["poor"], strict=True):
        campaign.cast_ballot("s0", t.token, choice)
    with pytest.raises(BallotError) as info:
        campaign.cast_ballot("s0", tokens[0].token, "poor")
    assert info.value.reason == "token_used"
    result = campaign.close_vote("s0", actor=SCRUTINEER)
    assert result.status == "closed"
    case = campaign.case("s0")
    events = [r.event for r in case.history]
    assert events[-2:] == ["issue_ballots", "close_vote"]
    assert events.count("close_vote") == 1
    text = json.dumps([r.to_json() for r in case.history], ensure_ascii=False)
    assert all(t.token not in text for t in tokens)
    assert result.digest in text
    assert "ballots" not in json.dumps(case.data["ballot_vote"])
    assert campaign.verify().ok
    assert campaign.verify_votes() == []
    with pytest.raises(BallotError):
        campaign.cast_ballot("s0", tokens[-1].token, "good")  # already used, and closed
    fin = campaign.fire("s0", "finish_evaluation", actor=CAST.organizer)
    assert fin.data["evaluation"]["rounded"] == "87.69"  # 1140 / 13


def test_refused_vote_operations_are_journaled_and_change_nothing() -> None:
    campaign, _ = _campaign()
    policy_quorum = campaign.policy.scoring.vote.quorum
    assert policy_quorum is None
    version = campaign.case("s0").version
    with pytest.raises(TransitionRefused) as info:
        campaign.issue_ballot_tokens("s0", {"public": 3}, actor=CAST.superior)
    assert info.value.reason == "not_permitted"
    with pytest.raises(TransitionRefused) as info:
        campaign.close_vote("s0", actor=SCRUTINEER)
    assert info.value.reason == "no_vote"
    assert campaign.case("s0").version == version
    assert [r.reason for r in campaign.refusals("s0")][-2:] == ["not_permitted", "no_vote"]


def test_paper_import_void_and_revote_in_a_campaign(tmp_path: Path) -> None:
    campaign, _ = _campaign(2)
    path = tmp_path / "counts.csv"
    path.write_text("述职对象,类别,好,较好,一般,差,无效,弃权,发出\n"
                    "s0,全体,30,10,2,0,1,0,40\n"
                    "s1,全体,25,12,3,1,0,1,45\n", encoding="utf-8")
    outcome = campaign.import_paper_counts(path, actor=SCRUTINEER)
    assert all(o.ok for o in outcome)
    assert campaign.close_vote("s0", actor=SCRUTINEER).status == "void"  # 43 > 40
    campaign.revote("s0", actor=SCRUTINEER)
    campaign.enter_paper_counts("s0", PaperCount(counts={"good": 30, "fairly_good": 8},
                                                 issued=40), actor=SCRUTINEER)
    assert campaign.close_vote("s0", actor=SCRUTINEER).status == "closed"
    assert campaign.close_vote("s1", actor=SCRUTINEER).status == "closed"
    rounds = campaign.case("s0").data["ballot_vote"]["rounds"]
    assert [r["status"] for r in rounds] == ["void", "closed"]
    bad = tmp_path / "bad.csv"
    bad.write_text("述职对象,好\ns0,x\n", encoding="utf-8")
    before = campaign.case("s1").version
    with pytest.raises(InputError, match="row 2, column 2"):
        campaign.import_paper_counts(bad, actor=SCRUTINEER)
    assert campaign.case("s1").version == before


def test_publish_results_with_scope_publicity_feedback_and_obligations() -> None:
    campaign, _ = _campaign(3)
    recorder = HookRecorder()
    campaign.register(recorder)
    votes = [{"good": 30}, {"good": 5, "average": 15}, {"average": 2, "poor": 8}]
    for i, counts in enumerate(votes):
        campaign.enter_paper_counts(f"s{i}", PaperCount(counts=counts, issued=30),
                                    actor=SCRUTINEER)
        campaign.close_vote(f"s{i}", actor=SCRUTINEER)
    with pytest.raises(InputError, match="scope"):
        campaign.publish(actor=CAST.organizer)
    published = campaign.publish(actor=CAST.organizer, scope="全局党员干部",
                                 publicity_days=5)
    assert [(r.case_id, r.grade.key, r.rank) for r in published] == [
        ("s0", "good", 1), ("s1", "average", 2), ("s2", "poor", 3)]
    s2 = campaign.case("s2")
    assert [o["kind"] for o in s2.data["obligations"]] == ["talk", "rectification_list"]
    assert s2.data["publication"]["publicity_until"].startswith("2016-01-")
    assert [r.event for r in s2.history][-2:] == ["publish_results", "feedback"]
    assert "reviewflow_results_published" in recorder.names()
    assert campaign.verify().ok
