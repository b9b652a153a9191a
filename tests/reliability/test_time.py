"""Time: deadlines decided to the microsecond, and workers with skewed clocks that agree.

* One microsecond before, at, and one after each kind of time rule (a hard deadline,
  a stage's opening, a soft deadline's "late" mark, an extended deadline, and a
  reminder rung when the engine has ``Campaign.sweep``): the decision flips exactly
  at the boundary (a deadline is met *at* its time), on memory and on SQLite.
* Workers whose clocks are minutes apart decide a deadline differently when each
  uses its own clock (shown here, as the reason for the next point); with
  :class:`reviewflow.clock.DatabaseClock` every worker takes the database's time and
  they agree, on PostgreSQL, MySQL and SQLite.
"""

from __future__ import annotations

from typing import Any

import attrs
import pendulum
import pytest

import reviewflow as rf
from reviewflow.clock import DatabaseClock
from reviewflow.deadlines import At
from reviewflow.store.base import Store
from reviewflow.testing import Cast, drive_to, passing_report

TZ = "Asia/Shanghai"
CAST = Cast.default()
US = pendulum.duration(microseconds=1)
REPORT_DUE = pendulum.datetime(2016, 1, 18, tz=TZ)
MEETING_OPENS = pendulum.datetime(2016, 1, 11, tz=TZ)
APPROVAL_DUE = pendulum.datetime(2016, 1, 25, tz=TZ)
OFFSETS = {"1us before": -1, "at": 0, "1us after": 1}


class Fixture:
    """A campaign on a store with a frozen clock, and a way to put a case in a stage."""

    def __init__(self, store: Store, campaign_id: str) -> None:
        self.clock = rf.FrozenClock(pendulum.datetime(2016, 1, 4, 9, tz=TZ))
        self.campaign = rf.Campaign(rf.Policy.default(year=2016), clock=self.clock, store=store,
                                    campaign_id=campaign_id)
        self.n = 0

    def case_in(self, stage: rf.Stage, signatures: int = 0) -> str:
        self.n += 1
        case_id = f"t{self.n}"
        self.clock.set(pendulum.datetime(2016, 1, 4, 9, tz=TZ))
        self.campaign.open_case(case_id, organization="x", secretary=CAST.secretary(case_id))
        drive_to(self.campaign, case_id, stage, cast=CAST, clock=self.clock)
        if signatures:
            self.campaign.fire(case_id, "sign_off", actor=CAST.reviewers[0], comment="同意")
        return case_id

    def attempt(self, at: pendulum.DateTime, call: Any) -> str:
        """Set the clock to ``at`` and run ``call``; return "ok" or the refusal's reason."""
        self.clock.set(at)
        try:
            call()
        except rf.TransitionRefused as exc:
            return exc.reason
        return "ok"


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_decisions_flip_exactly_at_the_boundary(kind: str, make_store: Any, new_id: Any,
                                                figure: Any) -> None:
    f = Fixture(make_store(kind), new_id("time"))
    c = f.campaign
    seen: dict[str, dict[str, str]] = {}

    def check(rule: str, boundary: pendulum.DateTime, stage: rf.Stage, call: Any,
              signatures: int = 0) -> None:
        seen[rule] = {}
        for name, offset in OFFSETS.items():
            case_id = f.case_in(stage, signatures)
            seen[rule][name] = f.attempt(boundary + offset * US, lambda i=case_id: call(i))

    check("hard report deadline (submit_report)", REPORT_DUE, rf.Stage.DRAFTING,
          lambda i: c.fire(i, "submit_report", actor=CAST.secretary(i), report=passing_report()))
    check("meeting opens (hold_meeting)", MEETING_OPENS, rf.Stage.MEETING,
          lambda i: c.fire(i, "hold_meeting", actor=CAST.organizer,
                           attendance={"party_members": 20}))
    assert seen["hard report deadline (submit_report)"] == {
        "1us before": "ok", "at": "ok", "1us after": "deadline_passed"}
    assert seen["meeting opens (hold_meeting)"] == {
        "1us before": "too_early", "at": "ok", "1us after": "ok"}

    # the soft approval deadline: the last signature is allowed, marked late after it
    late: dict[str, bool] = {}
    for name, offset in OFFSETS.items():
        case_id = f.case_in(rf.Stage.APPROVAL, signatures=1)
        f.clock.set(APPROVAL_DUE + offset * US)
        c.fire(case_id, "sign_off", actor=CAST.organizer, comment="同意")
        late[name] = bool(c.case(case_id).history[-1].data.get("late"))
    assert late == {"1us before": False, "at": False, "1us after": True}

    # an extended hard deadline is met at the new time, not after
    extended: dict[str, str] = {}
    until = pendulum.datetime(2016, 1, 22, 17, tz=TZ)
    for name, offset in OFFSETS.items():
        case_id = f.case_in(rf.Stage.DRAFTING)
        _extend(c, case_id, until)
        extended[name] = f.attempt(until + offset * US, lambda i=case_id: c.fire(
            i, "submit_report", actor=CAST.secretary(i), report=passing_report()))
    assert extended == {"1us before": "ok", "at": "ok", "1us after": "deadline_passed"}
    figure(backend=kind, **seen, **{"soft approval deadline (late mark)": late,
                                    "extended deadline": extended})
    assert c.verify().ok


def _extend(c: rf.Campaign, case_id: str, until: pendulum.DateTime) -> None:
    extend = getattr(c, "extend", None)
    if extend is not None:
        extend(case_id, rf.Stage.DRAFTING, until, reason="因病延期", actor=CAST.organizer)
        return
    c.extend(case_id, rf.Stage.DRAFTING, until, "因病延期", CAST.organizer)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_reminder_fires_at_its_time_not_before(kind: str, make_store: Any, new_id: Any) -> None:
    f = Fixture(make_store(kind), new_id("time"))
    _sweep_available(f.campaign.store)
    case_id = f.case_in(rf.Stage.DRAFTING)
    forecast = f.campaign.forecast(REPORT_DUE)  # when the report ladder's rungs fire
    first = min(r.fire_at for r in forecast.rungs if r.case_id == case_id)
    f.clock.set(first - US)
    assert len(f.campaign.sweep()) == 0
    f.clock.set(first)
    assert len(f.campaign.sweep()) == 1
    assert len(f.campaign.sweep()) == 0


def _sweep_available(store: Any) -> None:
    """Skip unless the engine has Campaign.sweep and ``store`` can keep the sweep's rows."""
    if not hasattr(rf.Campaign, "sweep"):
        pytest.skip("Campaign.sweep is not in the engine yet (deadline integration in progress)")
    from reviewflow.store.parts import DeadlineIndex
    from reviewflow.store.rows import RungMark

    if isinstance(store, (rf.MemoryStore, DeadlineIndex)):
        return
    from reviewflow.store import sql

    if RungMark not in getattr(sql, "_EXTRA_WRITERS", {}):
        pytest.skip("the SQL store does not write the sweep's rung marks yet (no writer "
                    "registered for RungMark): sweeping a SQL store fails in progress work")


# ---------------------------------------------------------------------- skewed workers


class SkewedClock:
    """An app server's clock that runs ``minutes`` ahead of (or behind) the true time."""

    def __init__(self, minutes: int) -> None:
        self.minutes = minutes

    def now(self) -> pendulum.DateTime:
        return pendulum.now(TZ).add(minutes=self.minutes)


def _policy_due(due: pendulum.DateTime) -> rf.Policy:
    base = rf.Policy.default(year=due.year)
    return attrs.evolve(base, stages={rf.Stage.DRAFTING: rf.StageRule(due=At(due), hard=True)})


def _decide(workers: list[rf.Campaign], opener: rf.Campaign, tag: str) -> list[str]:
    """Each worker submits the report of a case of its own; return each decision."""
    out = []
    for i, worker in enumerate(workers):
        case_id = f"{tag}{i}"
        opener.open_case(case_id, organization="x", secretary=CAST.secretary(case_id))
        opener.fire(case_id, "finish_research", actor=CAST.organizer, problems=["不足"])
        try:
            worker.fire(case_id, "submit_report", actor=CAST.secretary(case_id),
                        report=passing_report())
            out.append("ok")
        except rf.TransitionRefused as exc:
            out.append(exc.reason)
    return out


@pytest.mark.parametrize("kind", ["postgresql", "mysql", "sqlite"])
def test_skewed_workers_agree_on_database_time(kind: str, make_store: Any, new_id: Any,
                                               figure: Any) -> None:
    store = make_store(kind)
    db_now = DatabaseClock(store, TZ).now()
    local_skew = abs((pendulum.now(TZ) - db_now).total_seconds())
    assert local_skew < 60  # the servers here run on this machine's clock
    figures: dict[str, Any] = {"backend": kind, "worker_skews_minutes": [-5, 0, 5]}
    for tag, label, due in (("p", "due in 2 min", db_now.add(minutes=2)),
                            ("q", "due 2 min ago", db_now.subtract(minutes=2))):
        policy = _policy_due(due)
        cid = new_id("skew")  # a campaign per policy: a campaign's policy is sealed
        opener = rf.Campaign(policy, store=store, campaign_id=cid,
                             clock=rf.FrozenClock(db_now.subtract(hours=1)))
        own = [rf.Campaign(policy, store=make_store(kind, store), campaign_id=cid,
                           clock=SkewedClock(m)) for m in (-5, 0, 5)]
        by_db = [rf.Campaign(policy, store=s, campaign_id=cid, clock=DatabaseClock(s, TZ))
                 for s in (make_store(kind, store) for _ in range(3))]
        own_clock = _decide(own, opener, f"{tag}own")
        db_clock = _decide(by_db, opener, f"{tag}db")
        figures[label] = {"own clocks": own_clock, "database clock": db_clock}
        assert len(set(db_clock)) == 1, db_clock  # they agree
        assert db_clock[0] == ("ok" if label == "due in 2 min" else "deadline_passed")
        # the contrast: on their own clocks, the worker 5 minutes ahead decides otherwise
        assert own_clock[0] != own_clock[2]
    figure(**figures)


def test_database_clock_needs_a_sql_store() -> None:
    with pytest.raises(rf.InputError):
        DatabaseClock(rf.MemoryStore())


@pytest.mark.parametrize("kind", ["postgresql", "mysql", "sqlite"])
def test_database_clock_is_aware_and_moves(kind: str, make_store: Any) -> None:
    clock = DatabaseClock(make_store(kind), TZ)
    first, second = clock.now(), clock.now()
    assert first.tzinfo is not None
    assert first.timezone_name == TZ
    assert second >= first
    assert abs((pendulum.now(TZ) - first).total_seconds()) < 60
