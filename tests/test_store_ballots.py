"""The SQL store's ballot box: tokens redeemable from any process, one ballot per token,
no ballot after the tally, recounts after reopening, and the CLI's cast command.

Every test runs on a real SQLite file, PostgreSQL and MariaDB (``tests/conftest.py``).
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pendulum
import pytest
import sqlalchemy as sa

import reviewflow as rf
from reviewflow._engine import vote_work
from reviewflow.ballots import recount
from reviewflow.cli import main
from reviewflow.exceptions import BallotError, ConflictError
from reviewflow.policy_file import DEFAULT_POLICY_FILE
from reviewflow.store.base import Commit
from reviewflow.store.rows import RoundFrozen
from reviewflow.store.sql import SqlStore
from reviewflow.testing import Cast, drive_to

KINDS = pytest.mark.parametrize("db_url", ["sqlite", "postgresql", "mysql"], indirect=True)
FORK = multiprocessing.get_context("fork")
CAST = Cast.default()
START = pendulum.datetime(2016, 1, 4, 9, tz="Asia/Shanghai")


def new_id() -> str:
    """Return a campaign id no other test uses."""
    return f"vote-{os.urandom(5).hex()}"


def open_campaign(url: str, cid: str, at: pendulum.DateTime = START) -> rf.Campaign:
    """Return the campaign ``cid`` on ``url`` through a store (connection pool) of its own
    (its clock at ``at``: a case's steps never go back in time)."""
    return rf.Campaign(rf.Policy.default(year=2016), clock=rf.FrozenClock(at),
                       store=SqlStore(url), campaign_id=cid)


def voting(url: str, *case_ids: str) -> rf.Campaign:
    """Return a new campaign on ``url`` with its cases in evaluation, ready to vote."""
    campaign = open_campaign(url, new_id())
    for case_id in case_ids:
        campaign.open_case(case_id, organization=f"{case_id}党支部",
                           secretary=CAST.secretary(case_id))
        drive_to(campaign, case_id, rf.Stage.EVALUATION, cast=CAST, clock=campaign.clock)  # type: ignore[arg-type]
    return campaign


def close(*campaigns: rf.Campaign) -> None:
    """Close the stores of the campaigns."""
    for c in campaigns:
        c.store.close()


def _cast_in_child(url: str, cid: str, tokens: list[str], out: Any) -> None:
    try:
        campaign = open_campaign(url, cid)
        out.put([campaign.cast_ballot("s1", t, "good") for t in tokens])
        campaign.store.close()
    except BaseException as exc:  # reported to the parent
        out.put(repr(exc))


# ---------------------------------------------------------------------- across processes


@KINDS
def test_tokens_issued_in_one_process_are_redeemed_in_another(db_url: str) -> None:
    first = voting(db_url, "s1")
    tokens = [t.token for t in first.issue_ballot_tokens("s1", {"party_member": 6},
                                                         actor=CAST.organizer)]
    first.store.close()  # its pool is not carried into the child
    out = FORK.Queue()
    child = FORK.Process(target=_cast_in_child, args=(db_url, first.id, tokens[:3], out))
    child.start()
    cast_there = out.get(timeout=60)
    child.join(60)
    assert isinstance(cast_there, list), cast_there
    assert len(cast_there) == 3
    second = open_campaign(db_url, first.id, first.clock.now())
    with pytest.raises(BallotError) as info:
        second.cast_ballot("s1", tokens[0], "poor")  # redeemed in the other process
    assert info.value.reason == "token_used"
    here = [second.cast_ballot("s1", t, c)
            for t, c in zip(tokens[3:], ["fairly_good", "poor", None], strict=True)]
    result = second.close_vote("s1", actor=CAST.organizer)
    assert dict(result.tally.counts) == {"good": 3, "fairly_good": 1, "average": 0, "poor": 1}
    assert result.tally.blank == 1
    stored = vote_work.vote_round(second._engine, "s1")
    assert stored is not None
    assert set(stored.ballots) == set(cast_there) | set(here)
    close(second)


@KINDS
def test_ten_threads_redeeming_one_token_store_one_ballot(db_url: str) -> None:
    campaign = voting(db_url, "s1")
    [token] = campaign.issue_ballot_tokens("s1", {"party_member": 1}, actor=CAST.organizer)
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(10)

    def redeem() -> None:
        start.wait()
        try:
            campaign.cast_ballot("s1", token.token, "good")
            outcome = "ballot"
        except BallotError as exc:
            outcome = exc.reason
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=redeem) for _ in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert Counter(outcomes) == {"ballot": 1, "token_used": 9}
    stored = vote_work.vote_round(campaign._engine, "s1")
    assert stored is not None
    assert len(stored.ballots) == 1
    close(campaign)


@KINDS
def test_cast_after_close_is_refused_and_the_recount_after_reopening_equals_the_tally(
    db_url: str,
) -> None:
    campaign = voting(db_url, "s1")
    tokens = campaign.issue_ballot_tokens("s1", {"party_member": 5, "public": 3},
                                          actor=CAST.organizer)
    for t, choice in zip(tokens[:7], ["good"] * 4 + ["average", "poor", None], strict=True):
        campaign.cast_ballot("s1", t.token, choice)
    tally = campaign.close_vote("s1", actor=CAST.organizer).tally
    with pytest.raises(BallotError) as info:
        campaign.cast_ballot("s1", tokens[7].token, "good")  # unused, but the vote is closed
    assert info.value.reason == "vote_closed"
    # Straight at the box too: the round is frozen in the database, not only on the case.
    box = campaign.store.ballot_box(campaign.id)
    with pytest.raises(BallotError) as info:
        box.cast("s1", 1, tokens[7].token, "good", lambda *_: pytest.fail("built a ballot"))
    assert info.value.reason == "vote_closed"
    close(campaign)
    again = open_campaign(db_url, campaign.id, campaign.clock.now())
    stored = vote_work.vote_round(again._engine, "s1")
    assert stored is not None
    assert stored.tally == tally
    assert recount(stored, again.policy.scoring) == tally
    assert again.verify_votes() == []
    assert again.verify().ok
    close(again)


@KINDS
def test_unknown_foreign_and_reused_tokens_record_nothing(db_url: str) -> None:
    campaign = voting(db_url, "s1", "s2")
    mine = campaign.issue_ballot_tokens("s1", {"party_member": 2}, actor=CAST.organizer)
    theirs = campaign.issue_ballot_tokens("s2", {"party_member": 1}, actor=CAST.organizer)
    version = campaign.case("s1").version
    reasons = []
    for token in ("AAAAA-BBBBB", theirs[0].token):
        with pytest.raises(BallotError) as info:
            campaign.cast_ballot("s1", token, "good")
        reasons.append(info.value.reason)
    assert reasons == ["unknown_token", "wrong_case"]
    campaign.cast_ballot("s1", mine[0].token.lower(), "good")  # slips are read loosely
    with pytest.raises(BallotError, match="token_used"):
        campaign.cast_ballot("s1", mine[0].token, "good")
    box = campaign.store.ballot_box(campaign.id)
    assert len(box.ballots("s1", 1)) == 1
    assert box.ballots("s2", 1) == {}
    assert box.unused("s1", 1) == 1  # type: ignore[attr-defined]
    assert campaign.case("s1").version == version  # casting adds no event
    close(campaign)


# ---------------------------------------------------------------------- cast against close


@KINDS
def test_a_freeze_that_counted_other_ballots_refuses_its_commit(db_url: str) -> None:
    campaign = voting(db_url, "s1")
    tokens = campaign.issue_ballot_tokens("s1", {"party_member": 3}, actor=CAST.organizer)
    campaign.cast_ballot("s1", tokens[0].token, "good")
    store = campaign.store
    case = campaign.case("s1")

    def freeze(counted: int) -> Exception | None:
        row = RoundFrozen(campaign_id=campaign.id, case_id="s1", round=1,
                                    ballots=counted)
        return store.commit([Commit(case=case, expected_version=case.version, events=(),
                                    extras=(row,))])[0]

    refused = freeze(0)  # a tally computed before the ballot came in
    assert isinstance(refused, ConflictError)
    assert "close it again" in str(refused)
    campaign.cast_ballot("s1", tokens[1].token, "poor")  # so the round was not frozen
    assert freeze(2) is None
    with pytest.raises(BallotError, match="vote_closed"):
        campaign.cast_ballot("s1", tokens[2].token, "good")
    close(campaign)


@KINDS
def test_no_ballot_lands_after_the_tally_while_casting_and_closing_race(db_url: str) -> None:
    campaign = voting(db_url, "s1")
    tokens = [t.token for t in campaign.issue_ballot_tokens("s1", {"party_member": 60},
                                                            actor=CAST.organizer)]
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    go = threading.Barrier(5)

    def voter(mine: list[str]) -> None:
        go.wait()
        for token in mine:
            try:
                campaign.cast_ballot("s1", token, "good")
                outcome = "ballot"
            except BallotError as exc:
                outcome = exc.reason
            with lock:
                outcomes[outcome] += 1

    threads = [threading.Thread(target=voter, args=(tokens[i::4],)) for i in range(4)]
    for th in threads:
        th.start()
    go.wait()
    while True:  # close once a few ballots are in, while the others keep casting
        with lock:
            if outcomes["ballot"] >= 5:
                break
    result = campaign.close_vote("s1", actor=CAST.organizer)
    for th in threads:
        th.join(120)
    stored = vote_work.vote_round(campaign._engine, "s1")
    assert stored is not None
    assert set(outcomes) <= {"ballot", "vote_closed"}
    assert outcomes["ballot"] == len(stored.ballots) == result.tally.returned
    assert outcomes["ballot"] + outcomes["vote_closed"] == 60
    assert recount(stored, campaign.policy.scoring) == result.tally
    assert campaign.verify_votes() == []
    close(campaign)


@KINDS
def test_a_revote_freezes_the_voided_round_and_opens_the_next(db_url: str) -> None:
    campaign = voting(db_url, "s1")
    first = campaign.issue_ballot_tokens("s1", {"party_member": 2}, actor=CAST.organizer)
    campaign.cast_ballot("s1", first[0].token, "good")
    campaign.revote("s1", actor=CAST.organizer, void_reason="选票印制错误")
    with pytest.raises(BallotError):
        campaign.cast_ballot("s1", first[1].token, "good")
    second = campaign.issue_ballot_tokens("s1", {"party_member": 2}, actor=CAST.organizer)
    assert {t.round for t in second} == {2}
    for t in second:
        campaign.cast_ballot("s1", t.token, "fairly_good")
    box = campaign.store.ballot_box(campaign.id)
    with pytest.raises(BallotError, match="vote_closed"):
        box.cast("s1", 1, first[1].token, "good", lambda *_: pytest.fail("built a ballot"))
    assert campaign.close_vote("s1", actor=CAST.organizer).tally.returned == 2
    assert campaign.verify_votes() == []
    close(campaign)


# ---------------------------------------------------------------------- what is stored


@KINDS
def test_ballots_are_listed_by_id_and_carry_no_voter_token_or_time(db_url: str) -> None:
    campaign = voting(db_url, "s1")
    tokens = campaign.issue_ballot_tokens("s1", {"party_member": 40}, actor=CAST.organizer)
    cast_order = [campaign.cast_ballot("s1", t.token, "good") for t in tokens]
    listed = list(campaign.store.ballot_box(campaign.id).ballots("s1", 1))
    assert listed == sorted(cast_order)
    assert listed != cast_order  # random ids: 40 in cast order by chance is ~1 in 10^47
    store = campaign.store
    assert isinstance(store, SqlStore)
    columns = {c["name"] for c in sa.inspect(store.engine).get_columns("rf_ballots")}
    assert columns == {"campaign_id", "ballot_id", "case_id", "round", "category", "choice",
                       "slot"}  # a random key, drawn afresh for every row by every cast
    with store.engine.connect() as conn:
        used = conn.execute(sa.text(
            "SELECT COUNT(*) FROM rf_ballot_tokens WHERE campaign_id = :c AND used = :u"),
            {"c": campaign.id, "u": True}).scalar_one()
    assert used == 40
    close(campaign)


# ---------------------------------------------------------------------- the command line


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REVIEWFLOW_LANG": "en", "COLUMNS": "200"}
    for name in ("REVIEWFLOW_NOW", "REVIEWFLOW_DB", "REVIEWFLOW_CONFIG", "REVIEWFLOW_CAMPAIGN"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "reviewflow.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_tokens_issued_by_the_cli_are_cast_later_from_another_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("REVIEWFLOW_NOW", "REVIEWFLOW_DB", "REVIEWFLOW_CONFIG", "REVIEWFLOW_CAMPAIGN"):
        monkeypatch.delenv(name, raising=False)
    shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.toml")
    (tmp_path / "branches.csv").write_text("编号,党组织,书记\nschool-01,第一中学党支部,张三\n",
                                           encoding="utf-8")
    report = {"report": {
        "duty": "认真履行第一责任人职责。", "progress": "全年开展主题党日十二次。",
        "problems": [{"description": "组织生活不规范", "causes": "重视不够",
                      "measure": "建立台账，逐条整改"}],
        "plans": "坚持问题导向，针对突出问题逐条提出解决方案，措施有抓手、有载体、可监督、可考核。",
    }}
    (tmp_path / "report.json").write_text(json.dumps(report, ensure_ascii=False),
                                          encoding="utf-8")
    now, meeting = "2016-01-05T09:00+08:00", "2016-01-12T09:00+08:00"
    steps = [
        ["init", "policy.toml", "--rehearsal"],
        ["--now", now, "cases", "import", "branches.csv"],
        ["--now", now, "fire", "school-01", "finish_research", "--actor", "bureau",
         "--data", '{"problems": ["组织生活不规范"]}'],
        ["--now", now, "fire", "school-01", "submit_report", "--actor", "sec-school-01",
         "--data-file", "report.json"],
        ["--now", now, "fire", "school-01", "sign_off", "--actor", "li", "--role",
         "guidance_group", "--data", '{"comment": "同意"}'],
        ["--now", now, "fire", "school-01", "sign_off", "--actor", "bureau",
         "--data", '{"comment": "同意"}'],
        ["--now", meeting, "fire", "school-01", "hold_meeting", "--actor", "bureau",
         "--data", '{"attendance": {"party_members": 3}}'],
        ["--now", meeting, "ballots", "issue", "school-01", "--count", "3", "--actor", "bureau",
         "--out", "tokens.csv"],
    ]
    for args in steps:
        assert main(["--lang", "en", *args]) == 0, (args, capsys.readouterr().err)
    with (tmp_path / "tokens.csv").open(encoding="utf-8") as f:
        tokens = [row["token"] for row in csv.DictReader(f)]
    assert len(tokens) == 3
    for token, choice in zip(tokens[:2], ["好", "较好"], strict=True):
        done = _cli("--now", meeting, "ballots", "cast", "school-01", "--token", token,
                    "--choice", choice, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "ballot cast" in done.stdout
        assert token not in done.stdout + done.stderr
    again = _cli("--now", meeting, "ballots", "cast", "school-01", "--token", tokens[0],
                 "--choice", "差", cwd=tmp_path)
    assert again.returncode == 1
    assert "token_used" in again.stderr
    assert main(["--lang", "en", "ballots", "cast", "school-01", "--token", tokens[2]]) == 2
    assert "--choice OPTION or --blank" in capsys.readouterr().err
    assert main(["--lang", "en", "--now", meeting, "ballots", "cast", "school-01", "--token",
                 tokens[2], "--blank"]) == 0
    capsys.readouterr()
    assert main(["--lang", "en", "--now", meeting, "ballots", "close", "school-01",
                 "--actor", "bureau"]) == 0
    out = capsys.readouterr().out
    assert "good 1, fairly_good 1, average 0, poor 0" in out
    assert "blank 1" in out
