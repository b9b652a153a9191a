"""Corrections are events, never overwrites; time moves forward (issue #17, items 3, 5, 6).

- a closed vote changes only through a re-vote: typed counts are refused once a ballot
  box exists for the round, and never exceed the attendance;
- an amended comment keeps the first;
- a re-publication is refused or says what it supersedes; a publication run again with
  its idempotency key (after a kill -9 after its commit) adds nothing;
- a step dated before the case's last event is refused; the CLI freezes the clock only
  for a rehearsal or with --allow-frozen-clock, never in the future; every event made
  with a frozen clock says so.

Each runs on memory, SQLite, PostgreSQL and MySQL where it touches the store.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import shutil
import signal
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest

import reviewflow as rf
from reviewflow._corrections import backwards
from reviewflow.ballots import PaperCount
from reviewflow.cli import main
from reviewflow.exceptions import IdempotencyKeyReused, InputError, TransitionRefused
from reviewflow.export.results import collect_results
from reviewflow.export.special_report import special_report_skeleton
from reviewflow.hooks import hookimpl
from reviewflow.policy_file import DEFAULT_POLICY_FILE
from reviewflow.testing import Cast, drive_to

CAST = Cast.default()
START = pendulum.datetime(2016, 1, 4, 9, tz="Asia/Shanghai")
STORES = pytest.mark.parametrize("store", ["memory", "sqlite", "postgresql", "mysql"],
                                 indirect=True)
DURABLE = pytest.mark.parametrize("store", ["sqlite", "postgresql", "mysql"], indirect=True)
FORK = multiprocessing.get_context("fork")


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """None (memory) or the URL of a database of the parametrized kind."""
    kind = request.param
    if kind == "memory":
        yield None
    elif kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'rf.db'}"
    else:
        yield str(request.getfixturevalue(f"{kind}_url"))


def make(store: str | None, cid: str | None = None, at: pendulum.DateTime = START,
         plugins: tuple[object, ...] = ()) -> rf.Campaign:
    """A campaign of its own (own id) on ``store``, its clock frozen at ``at``."""
    return rf.Campaign(rf.Policy.default(year=2016), clock=rf.FrozenClock(at), store=store,
                       campaign_id=cid or f"cor-{secrets.token_hex(5)}", plugins=plugins)


def in_evaluation(campaign: rf.Campaign, *case_ids: str, comments: bool = True) -> None:
    """Open the cases and drive them to the evaluation (both comments given)."""
    for cid in case_ids:
        campaign.open_case(cid, organization=f"{cid}党支部", secretary=CAST.secretary(cid))
        drive_to(campaign, cid, rf.Stage.EVALUATION, cast=CAST,
                 clock=campaign.clock)  # type: ignore[arg-type]
        if comments:
            campaign.fire(cid, "comment", actor=CAST.superior, text="工作扎实")
            campaign.fire(cid, "comment", actor=CAST.delegate, text="成效明显")


def done(campaign: rf.Campaign) -> None:
    close = getattr(campaign.store, "close", None)
    if close is not None:
        close()


def refused(reason: str, call: Any, *args: Any, **kwargs: Any) -> TransitionRefused:
    with pytest.raises(TransitionRefused) as info:
        call(*args, **kwargs)
    assert info.value.reason == reason, info.value
    return info.value


# ---------------------------------------------------------------------- a closed vote


@STORES
def test_a_closed_vote_is_not_overwritten_by_typed_counts(store: str | None) -> None:
    campaign = make(store)
    in_evaluation(campaign, "s1")
    tokens = campaign.issue_ballot_tokens("s1", {"party_member": 10}, actor=CAST.organizer)
    for t in tokens:
        campaign.cast_ballot("s1", t.token, "average")
    campaign.close_vote("s1", actor=CAST.organizer)
    before = campaign.case("s1")
    # the issue's case: 1,000 typed "good" votes for 10 issued tokens and 20 attendees
    typed = {"good": 1000}
    error = refused("vote_closed", campaign.fire, "s1", "record_vote", actor=CAST.organizer,
                    vote=typed)
    assert "ballots revote" in str(error)
    refused("vote_closed", campaign.fire, "s1", "finish_evaluation", actor=CAST.organizer,
            vote=typed)
    after = campaign.case("s1")
    assert (after.version, after.data) == (before.version, before.data)
    assert [r.reason for r in campaign.refusals("s1")][-2:] == ["vote_closed", "vote_closed"]
    # the evaluation scores the closed tally, as sealed
    finished = campaign.fire("s1", "finish_evaluation", actor=CAST.organizer)
    assert finished.data["evaluation"]["rounded"] == "60.00"
    assert campaign.verify().ok
    done(campaign)


@STORES
def test_typed_counts_are_refused_while_the_ballot_box_is_open_and_after_a_revote(
    store: str | None,
) -> None:
    campaign = make(store)
    in_evaluation(campaign, "s1")
    campaign.enter_paper_counts("s1", PaperCount(counts={"good": 12, "poor": 3}, issued=20),
                                actor=CAST.organizer)
    refused("ballot_vote_open", campaign.fire, "s1", "record_vote", actor=CAST.organizer,
            vote={"good": 15})
    campaign.close_vote("s1", actor=CAST.organizer)
    campaign.revote("s1", actor=CAST.organizer, reason="计票有误")
    case = campaign.case("s1")
    assert [r["status"] for r in case.data["ballot_vote"]["rounds"]] == ["closed", "open"]
    assert "vote" not in case.data  # the new round's counts are not known yet
    refused("ballot_vote_open", campaign.fire, "s1", "finish_evaluation",
            actor=CAST.organizer, vote={"good": 15})
    campaign.enter_paper_counts("s1", PaperCount(counts={"good": 14, "poor": 1}, issued=20),
                                actor=CAST.organizer)
    campaign.close_vote("s1", actor=CAST.organizer)
    finished = campaign.fire("s1", "finish_evaluation", actor=CAST.organizer)
    assert finished.data["evaluation"]["rounded"] == "93.33"  # 1400 / 15, the second round
    events = [r.event for r in finished.history]
    assert events.count("close_vote") == 2  # both rounds on record
    assert "revote" in events
    done(campaign)


@STORES
def test_typed_counts_are_never_more_than_the_attendance(store: str | None) -> None:
    campaign = make(store)
    in_evaluation(campaign, "s1")  # drive_to records 20 attendees
    refused("votes_exceed_attendance", campaign.fire, "s1", "record_vote",
            actor=CAST.organizer, vote={"good": 15, "average": 6})
    refused("votes_exceed_attendance", campaign.fire, "s1", "finish_evaluation",
            actor=CAST.organizer, vote={"good": 1000})
    case = campaign.fire("s1", "finish_evaluation", actor=CAST.organizer,
                         vote={"good": 15, "average": 5})
    assert case.data["evaluation"]["rounded"] == "90.00"
    done(campaign)


def test_the_cli_opens_a_revote(workdir_voting: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = ["--now", "2016-01-12T10:00+08:00"]
    assert main([*now, "ballots", "close", "school-01", "--actor", "bureau"]) == 0
    capsys.readouterr()
    typed = ["fire", "school-01", "record_vote", "--actor", "bureau", "--data",
             '{"vote": {"good": 1000}}']
    assert main(["--lang", "en", *now, *typed]) == 1
    assert "vote_closed" in capsys.readouterr().err
    assert main(["--lang", "en", *now, "ballots", "revote", "school-01", "--actor", "bureau"]) == 2
    capsys.readouterr()  # --reason is required
    assert main(["--lang", "en", *now, "ballots", "revote", "school-01", "--actor", "bureau",
                 "--reason", "计票有误，重新测评"]) == 0
    assert "round 2" in capsys.readouterr().out
    with sqlite3.connect(workdir_voting / "reviewflow.db") as conn:
        row = conn.execute("select reason, data from rf_events where event = 'revote'").fetchone()
    assert row[0] == "计票有误，重新测评"
    assert json.loads(row[1])["round"] == 2


# ---------------------------------------------------------------------- comments


@STORES
def test_an_amended_comment_keeps_the_first(store: str | None) -> None:
    campaign = make(store)
    in_evaluation(campaign, "s1", comments=False)
    campaign.fire("s1", "comment", actor=CAST.superior, text="工作扎实", rating="good")
    refused("comment_exists", campaign.fire, "s1", "comment", actor=CAST.superior,
            text="工作一般")
    case = campaign.fire("s1", "comment", actor=CAST.superior, text="工作一般",
                         rating="average", reason="初评笔误")
    shown = case.data["comments"]["superior_secretary"]
    assert (shown["text"], shown["rating"], shown["reason"]) == ("工作一般", "average", "初评笔误")
    assert [e["text"] for e in shown["earlier"]] == ["工作扎实"]
    last = case.history[-1]
    assert (last.event, last.reason, last.data["amends"]["text"]) == ("comment", "初评笔误",
                                                                      "工作扎实")
    case = campaign.fire("s1", "comment", actor=CAST.superior, text="工作较好",
                         reason="再次核实")
    assert [e["text"] for e in case.data["comments"]["superior_secretary"]["earlier"]] == [
        "工作扎实", "工作一般"]
    [row] = collect_results(campaign)  # the results say which comment was amended
    assert (row.amended, row.to_json()["amended"]) == (("superior_secretary",),
                                                       ["superior_secretary"])
    report = special_report_skeleton(case)
    assert "工作较好（已修改，原点评：工作扎实；工作一般；修改理由：再次核实）" in report
    assert campaign.verify().ok
    done(campaign)


# ---------------------------------------------------------------------- publication


def _scored(store: str | None, n: int = 2, **kw: Any) -> rf.Campaign:
    campaign = make(store, **kw)
    ids = [f"s{i}" for i in range(n)]
    in_evaluation(campaign, *ids)
    for i, cid in enumerate(ids):
        campaign.fire(cid, "finish_evaluation", actor=CAST.organizer,
                      vote={"good": 10 - i, "average": 2 + 3 * i})
    return campaign


def _events(campaign: rf.Campaign) -> Counter[str]:
    return Counter(r.event for case in campaign.cases() for r in case.history)


@STORES
def test_publishing_again_is_refused_or_says_what_it_supersedes(store: str | None) -> None:
    campaign = _scored(store)
    campaign.publish(actor=CAST.organizer, scope="全局", publicity_days=5)
    before = _events(campaign)
    error = refused("already_published", campaign.publish, actor=CAST.organizer, scope="全局")
    assert "--reason" in str(error)
    assert _events(campaign) == before  # nothing doubled
    assert campaign.refusals()[-1].reason == "already_published"
    again = campaign.publish(actor=CAST.organizer, scope="全局", reason="更正公示范围")
    assert [r.case_id for r in again] == ["s0", "s1"]
    s1 = campaign.case("s1")
    publication = s1.data["publication"]
    assert publication["reason"] == "更正公示范围"
    assert publication["supersedes"]["scope"] == "全局"
    assert "supersedes" not in publication["supersedes"]
    records = [r for r in s1.history if r.event == "publish_results"]
    assert len(records) == 2
    assert records[-1].reason == "更正公示范围"
    # the grade's follow-ups are not doubled
    kinds = [(o["kind"], o["status"]) for o in s1.data["obligations"]]
    assert len(kinds) == len(set(kinds))
    assert campaign.verify().ok
    done(campaign)


@STORES
def test_a_publication_replayed_with_its_key_adds_nothing(store: str | None) -> None:
    campaign = _scored(store)
    first = campaign.publish(actor=CAST.organizer, scope="全局", idempotency_key="pub-2016")
    before = _events(campaign)
    assert (before["publish_results"], before["feedback"]) == (2, 2)
    again = campaign.publish(actor=CAST.organizer, scope="全局", idempotency_key="pub-2016")
    assert [(r.case_id, r.score.rounded) for r in again] == [
        (r.case_id, r.score.rounded) for r in first]
    assert _events(campaign) == before
    with pytest.raises(IdempotencyKeyReused):
        campaign.publish(actor=CAST.organizer, scope="本单位", idempotency_key="pub-2016")
    assert _events(campaign) == before
    done(campaign)


class _KillAfter:
    """Kill this process (-9) as soon as the hook ``at`` hears of a committed step."""

    def __init__(self, at: str) -> None:
        self.at = at

    @hookimpl
    def reviewflow_step(self, campaign: Any, case: Any, record: Any) -> None:
        if record.event == self.at:
            os.kill(os.getpid(), signal.SIGKILL)

    @hookimpl
    def reviewflow_results_published(self, campaign: Any, results: Any, scope: Any) -> None:
        if self.at == "published":
            os.kill(os.getpid(), signal.SIGKILL)


def _publish_and_die(url: str, cid: str, at: str, round_no: int) -> None:
    campaign = make(url, cid, at=START.add(days=30 + 2 * round_no), plugins=(_KillAfter(at),))
    campaign.publish(actor=CAST.organizer, scope="全局", idempotency_key=f"pub-{round_no}",
                     reason=f"第{round_no}次更正" if round_no else None)
    os._exit(3)  # not reached: the hook kills the process after the commit


@DURABLE
def test_a_publish_killed_after_its_commit_and_run_again_adds_nothing(store: str) -> None:
    seeded = _scored(store, 3)
    cid = seeded.id
    done(seeded)
    # each round: a publication (the first, then re-publications with a reason) is killed
    # with -9 right after a commit (publication, feedback, or after the hook), then run
    # again with the same key
    for round_no, at in enumerate(["publish_results", "feedback", "published"] * 2):
        child = FORK.Process(target=_publish_and_die, args=(store, cid, at, round_no))
        child.start()
        child.join(120)
        assert child.exitcode == -signal.SIGKILL, (round_no, at, child.exitcode)
        campaign = make(store, cid, at=START.add(days=31 + 2 * round_no))
        again = campaign.publish(actor=CAST.organizer, scope="全局",
                                 idempotency_key=f"pub-{round_no}",
                                 reason=f"第{round_no}次更正" if round_no else None)
        assert len(again) == 3
        counted = _events(campaign)
        # one publication and one feedback per case and round, however it was interrupted
        n = 3 * (round_no + 1)
        assert (counted["publish_results"], counted["feedback"]) == (n, n), (round_no, at)
        assert campaign.verify().ok
        done(campaign)


def test_cli_publish_takes_a_key_and_refuses_a_second_publication(
    workdir_voting: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    now = ["--lang", "en", "--now", "2016-01-12T10:00+08:00"]
    assert main([*now, "ballots", "close", "school-01", "--actor", "bureau"]) == 0
    assert main([*now, "fire", "school-01", "finish_evaluation", "--actor", "bureau"]) == 0
    publish = [*now, "publish", "--actor", "bureau", "--scope", "全局", "--out", str(workdir_voting)]
    assert main([*publish, "--key", "k1"]) == 0
    assert main([*publish, "--key", "k1"]) == 0  # the same publication: nothing added
    capsys.readouterr()
    assert main(publish) == 1
    assert "already_published" in capsys.readouterr().err
    with sqlite3.connect(workdir_voting / "reviewflow.db") as conn:
        n = conn.execute("select count(*) from rf_events where event in "
                         "('publish_results', 'feedback')").fetchone()[0]
    assert n == 2
    assert main([*publish, "--reason", "更正"]) == 0
    with sqlite3.connect(workdir_voting / "reviewflow.db") as conn:
        n = conn.execute("select count(*) from rf_events where event = 'publish_results'"
                         ).fetchone()[0]
    assert n == 2


# ---------------------------------------------------------------------- time


def test_iso_times_compare_across_offsets() -> None:
    assert backwards("2016-03-27T01:59:00+01:00", "2016-03-27T03:00:00+02:00")
    assert not backwards("2016-03-27T03:01:00+02:00", "2016-03-27T01:59:00+01:00")
    assert backwards("2016-01-04T09:00:00+08:00", "2016-01-04T09:00:00.000001+08:00")
    assert not backwards("2016-01-04T09:00:00+08:00", "2016-01-04T09:00:00+08:00")
    assert backwards("2016-01-04T09:00:00-05:00", "2016-01-04T09:00:00.5-05:00")


@STORES
def test_a_step_dated_before_the_last_event_is_refused(store: str | None) -> None:
    campaign = make(store)
    clock = campaign.clock
    assert isinstance(clock, rf.FrozenClock)
    campaign.open_case("s1", organization="一支部", secretary=CAST.secretary("s1"))
    clock.set(START.add(days=2))
    campaign.fire("s1", "finish_research", actor=CAST.organizer, problems=["组织生活不规范"])
    clock.set(START.add(days=1))
    before = campaign.case("s1")
    error = refused("time_backwards", campaign.fire, "s1", "submit_report",
                    actor=CAST.secretary("s1"), report=rf.testing.passing_report())
    assert error.details["last_event_at"] == START.add(days=2).isoformat()
    # a side step (an extension) and a batch step are refused the same way
    refused("time_backwards", campaign.extend, "s1", "drafting", START.add(days=20), "外出",
            CAST.organizer)
    [result] = campaign.fire_many(["s1"], "submit_report", actor=CAST.secretary("s1"),
                                  report=rf.testing.passing_report())
    assert isinstance(result.error, TransitionRefused)
    assert result.error.reason == "time_backwards"
    after = campaign.case("s1")
    assert (after.version, after.data) == (before.version, before.data)
    may = {p.event: p for p in campaign.allowed("s1", CAST.secretary("s1"))}
    assert may["submit_report"].reasons == ("time_backwards",)  # explained, not only refused
    # the same instant as the last event, in another zone's writing, is not backwards
    clock.set(START.add(days=2).in_timezone("UTC"))
    campaign.fire("s1", "submit_report", actor=CAST.secretary("s1"),
                  report=rf.testing.passing_report())
    assert [r.reason for r in campaign.refusals("s1")] == ["time_backwards"] * 3
    done(campaign)


@STORES
def test_every_event_made_with_a_frozen_clock_says_so(store: str | None) -> None:
    campaign = make(store)
    in_evaluation(campaign, "s1")
    assert all(r.data.get("clock") == "frozen" for r in campaign.case("s1").history)
    campaign.clock = rf.SystemClock("Asia/Shanghai")
    campaign.open_case("s2", organization="二支部", secretary=CAST.secretary("s2"))
    campaign.fire("s2", "finish_research", actor=CAST.organizer, problems=["p"])
    assert [r.data.get("clock") for r in campaign.case("s2").history] == [None, None]
    assert campaign.verify().ok
    done(campaign)


# ---------------------------------------------------------------------- the CLI's clock

REPORT = json.dumps({"report": rf.testing.passing_report().to_json()}, ensure_ascii=False)


def _init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *flags: str) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("REVIEWFLOW_NOW", "REVIEWFLOW_DB", "REVIEWFLOW_CONFIG", "REVIEWFLOW_CAMPAIGN",
                 "REVIEWFLOW_ALLOW_FROZEN_CLOCK"):
        monkeypatch.delenv(name, raising=False)
    shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.toml")
    (tmp_path / "branches.csv").write_text("编号,党组织,书记\nschool-01,第一中学党支部,张三\n",
                                           encoding="utf-8")
    assert main(["init", "policy.toml", *flags]) == 0


def _events_in(db: Path) -> list[tuple[str, str, dict[str, Any]]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select event, at, data from rf_events order by seq").fetchall()
    return [(e, at, json.loads(d)) for e, at, d in rows]


def test_cli_now_needs_a_rehearsal_or_the_flag_and_never_goes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    _init(tmp_path, monkeypatch)
    db = tmp_path / "reviewflow.db"
    past = "2016-01-05T09:00+08:00"
    assert main(["--lang", "en", "--now", past, "cases", "import", "branches.csv"]) == 2
    assert "not a rehearsal" in capsys.readouterr().err
    monkeypatch.setenv("REVIEWFLOW_NOW", past)
    assert main(["--lang", "en", "cases", "import", "branches.csv"]) == 2  # the variable too
    monkeypatch.delenv("REVIEWFLOW_NOW")
    assert _events_in(db) == []
    allow = ["--lang", "en", "--allow-frozen-clock"]
    assert main([*allow, "--now", past, "cases", "import", "branches.csv"]) == 0
    research = ["fire", "school-01", "finish_research", "--actor", "bureau", "--data",
                '{"problems": ["组织生活不规范"]}']
    assert main([*allow, "--now", "2016-01-06T09:00+08:00", *research]) == 0
    submit = ["fire", "school-01", "submit_report", "--actor", "sec-school-01", "--role",
              "secretary", "--data", REPORT]
    assert main([*allow, "--now", "2016-01-07T09:00+08:00", *submit]) == 0
    capsys.readouterr()
    sign = ["fire", "school-01", "sign_off", "--actor", "li", "--role", "guidance_group"]
    assert main([*allow, "--now", "2199-12-31T09:00+08:00", *sign]) == 2
    assert "later than the present" in capsys.readouterr().err
    assert main([*allow, "--now", "2015-06-01T09:00+08:00", *sign]) == 1
    assert "time_backwards" in capsys.readouterr().err
    events = _events_in(db)
    assert [e for e, _at, _d in events] == ["open", "finish_research", "submit_report"]
    assert all(d.get("clock") == "frozen" for _e, _at, d in events)
    assert main([*allow, "--now", "2016-01-07T10:00+08:00", *sign]) == 0


def test_cli_now_on_a_rehearsal_marks_its_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _init(tmp_path, monkeypatch, "--rehearsal")
    assert "rehearsal = true" in (tmp_path / "reviewflow.toml").read_text(encoding="utf-8")
    assert main(["--now", "2016-01-05T09:00+08:00", "cases", "import", "branches.csv"]) == 0
    assert main(["--now", "2016-01-04T09:00+08:00", "fire", "school-01", "finish_research",
                 "--actor", "bureau", "--data", '{"problems": ["p"]}']) == 1  # backwards
    [(event, at, data)] = _events_in(tmp_path / "reviewflow.db")
    assert (event, at, data["clock"]) == ("open", "2016-01-05T09:00:00+08:00", "frozen")


def test_a_campaign_file_with_a_bad_rehearsal_setting_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    _init(tmp_path, monkeypatch)
    config = tmp_path / "reviewflow.toml"
    config.write_text('rehearsal = "yes"\n' + config.read_text(encoding="utf-8"),
                      encoding="utf-8")
    assert main(["--lang", "en", "status"]) == 2
    assert "rehearsal must be true or false" in capsys.readouterr().err


@pytest.fixture
def workdir_voting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A rehearsal campaign on SQLite whose school-01 is in evaluation with a ballot vote."""
    _init(tmp_path, monkeypatch, "--rehearsal")
    at = "2016-01-12T10:00+08:00"
    monkeypatch.setenv("REVIEWFLOW_NOW", at)
    campaign = _env_campaign()
    campaign.open_case("school-01", organization="第一中学党支部",
                       secretary=rf.Actor("sec-school-01", "张三", roles={"secretary"}))
    clock = rf.FrozenClock(pendulum.datetime(2016, 1, 12, 10, tz="Asia/Shanghai"))
    campaign.clock = clock
    drive_to(campaign, "school-01", rf.Stage.EVALUATION, cast=CAST, clock=clock)
    campaign.fire("school-01", "comment", actor=CAST.superior, text="工作扎实")
    campaign.fire("school-01", "comment", actor=CAST.delegate, text="成效明显")
    for t in campaign.issue_ballot_tokens("school-01", {"party_member": 5},
                                          actor=CAST.organizer):
        campaign.cast_ballot("school-01", t.token, "good")
    done(campaign)
    return tmp_path


def _env_campaign() -> rf.Campaign:
    from reviewflow.cli._env import Env
    from reviewflow.i18n import Messages

    env = Env(Messages("en"))
    try:
        return env.campaign()
    except InputError as exc:  # pragma: no cover  # the fixture's campaign file is valid
        raise AssertionError(exc) from None
