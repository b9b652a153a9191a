"""kill -9 in the middle of a pipelined sweep: no rung half-recorded, none lost, none twice.

On a database, a sweep of more than a thousand due cases commits each batch of a
thousand in a worker thread while the calling thread builds the next batch and tells
the hooks of the last one (``reviewflow._deadlines.sweep._pipeline``). This module
kills a sweeping process with SIGKILL at three kinds of moment:

* ``hook``: the sweeper kills itself from a rung hook of the first batch, while the
  worker thread commits the second batch;
* ``statement``: the sweeper kills itself just before its k-th write statement of the
  sweep (in the worker thread, inside a batch's transaction);
* ``timer``: the test kills the sweeper at a random moment after it starts sweeping.

The campaign's report stage has a ladder of hourly reminders, so that every round has
rungs of its own to fire (one per case, or two at once in every third round). After
each kill the test checks, on the real database:

* every case's version equals its number of events, and its fired rungs (events and
  rung marks alike) are all the rungs due before this round or all the rungs due now:
  no step half-recorded;
* ``verify()`` is clean;
* ``dispatch_pending()`` tells the hooks of every committed rung they had not heard of
  (together with what the sweeper told before it died: every committed rung was told),
  and leaves nothing pending; no hook heard of a rung that is not stored;
* a second sweep at the same moment fires exactly the rungs not yet fired; afterwards
  every due rung is stored exactly once and nothing is due.

The sweeper uses the store it inherited across ``fork`` in every other round (the
store's fork hook must give it connections of its own), and the test's store carries on
after every kill.

CI form: 3 rounds per backend (one of each kind) on 2,100 cases (three batches). Long form
(``REVIEWFLOW_LONG=1`` or ``REVIEWFLOW_FULL=1``): 20 rounds per backend on 3,100 cases.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pendulum
import pytest
import sqlalchemy as sa
from tests.test_store_deadlines import fired_counts

import reviewflow as rf
from reviewflow._engine import deadline_work as ops
from reviewflow.deadlines import Rung
from reviewflow.hooks import hookimpl
from reviewflow.policy import At, StageRule
from reviewflow.store import _schema as schema
from reviewflow.store.sql import SqlStore
from reviewflow.testing import Cast, HookRecorder

FORK = multiprocessing.get_context("fork")
CAST = Cast.default()
TZ = "Asia/Shanghai"
START = pendulum.datetime(2016, 1, 4, 9, tz=TZ)
DUE = pendulum.datetime(2016, 1, 18, tz=TZ)
BATCH = 1000
MODES = ("hook", "statement", "timer")
LONG = os.environ.get("REVIEWFLOW_LONG") == "1" or os.environ.get("REVIEWFLOW_FULL") == "1"

CASES, ROUNDS = (3_100, 20) if LONG else (2_100, 3)
#: The timer kill comes this many milliseconds after the sweep starts, at most.
TIMER_MS = 1000


def _plan(rounds: int) -> tuple[list[int], int]:
    """Return, per round, how many rungs are due by its sweep (2 more every third round)."""
    due, total = [], 0
    for r in range(rounds):
        total += 2 if r % 3 == 2 else 1
        due.append(total)
    return due, total


DUE_BY_ROUND, RUNGS = _plan(ROUNDS)
#: Hourly reminders before the report's due time, earliest first.
LADDER = tuple(Rung(offset=-(RUNGS - i), unit="hours", action="remind", to="secretary")
               for i in range(RUNGS))
FIRE_AT = tuple(DUE.subtract(hours=RUNGS - i) for i in range(RUNGS))


def _policy() -> rf.Policy:
    base = rf.Policy.default(year=2016)
    stages = dict(base.stages)
    stages[rf.Stage.DRAFTING] = StageRule(due=At(DUE), hard=True, ladder=LADDER)
    return rf.Policy(name=base.name, year=2016, tz=TZ, stages=stages,
                     approval_levels=base.approval_levels)


def _campaign(store: SqlStore, cid: str, plugins: tuple[object, ...] = ()) -> rf.Campaign:
    return rf.Campaign(_policy(), clock=rf.FrozenClock(START), store=store, campaign_id=cid,
                       plugins=plugins)


class Teller:
    """The sweeper's hook: append ``case rung`` for every rung it is told of; kill the
    process with SIGKILL at the ``kill_at``-th call, when set."""

    def __init__(self, path: str, kill_at: int | None) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.kill_at = kill_at
        self.calls = 0

    @hookimpl
    def reviewflow_deadline_rung(self, campaign: Any, case: Any, stage: Any, rung: Any,
                                 due: Any) -> None:
        """Note the rung (then die, at the chosen call)."""
        os.write(self.fd, f"{case.case_id} {rung.id}\n".encode())
        self.calls += 1
        if self.calls == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


def _sweeper(store: SqlStore, inherit: bool, cid: str, at: pendulum.DateTime, told: str,
             mode: str, k: int, started: Any, done: Any) -> None:
    """Sweep at ``at`` in a forked process; die by SIGKILL (or wait to be killed)."""
    if not inherit:
        store = SqlStore(store.engine.url.render_as_string(hide_password=False))
    campaign = _campaign(store, cid, (Teller(told, k if mode == "hook" else None),))
    if mode == "statement":
        seen = {"n": 0}

        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if not statement.lstrip().upper().startswith("SELECT"):
                seen["n"] += 1
                if seen["n"] == k:
                    os.kill(os.getpid(), signal.SIGKILL)

        sa.event.listen(store.engine, "before_cursor_execute", before)
    started.set()
    campaign.sweep(at)
    store.flush()
    done.set()
    while True:  # the sweep finished before the kill: wait for it
        time.sleep(1)


def _rung_marks(store: SqlStore, cid: str) -> Counter[tuple[str, str]]:
    m = schema.rung_marks.c
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(m.case_id, m.rung_id).where(m.campaign_id == cid))
        return Counter((str(r.case_id), str(r.rung_id)) for r in rows)


def _half_applied(store: SqlStore, cid: str) -> int:
    """Count the cases whose version differs from their number of events."""
    c, e = schema.cases.c, schema.events.c
    counts = (sa.select(e.case_id, sa.func.count().label("n")).where(e.campaign_id == cid)
              .group_by(e.case_id).subquery())
    query = (sa.select(sa.func.count()).select_from(schema.cases.outerjoin(
        counts, counts.c.case_id == c.case_id))
        .where(c.campaign_id == cid)
        .where(sa.func.coalesce(counts.c.n, 0) != c.version))
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _setup(store: SqlStore, n: int, recorder: HookRecorder) -> rf.Campaign:
    campaign = _campaign(store, f"swk-{os.urandom(5).hex()}", (recorder,))
    ids = [f"c{i:05d}" for i in range(n)]
    campaign.open_cases([{"case_id": i, "organization": f"{i}党支部",
                          "secretary": CAST.secretary(i)} for i in ids], actor=CAST.organizer)
    done = campaign.fire_many(ids, "finish_research", actor=CAST.organizer,
                              problems=["组织生活不规范"])
    assert all(r.ok for r in done)
    assert campaign.dispatch_pending() == 0
    if store.dialect == "postgresql":  # statistics, as autovacuum would have them by now
        with store.engine.begin() as conn:  # (without them, verify()'s join takes 10x longer)
            conn.exec_driver_sql("ANALYZE")
    return campaign


def _round(campaign: rf.Campaign, recorder: HookRecorder, r: int, mode: str, tmp_path: Path,
           rng: random.Random) -> dict[str, Any]:
    store = campaign.store
    assert isinstance(store, SqlStore)
    cid = campaign.id
    before_n = DUE_BY_ROUND[r - 1] if r else 0
    now_n = DUE_BY_ROUND[r]
    at = FIRE_AT[now_n - 1]
    ids = sorted(c.case_id for c in store.cases(cid))
    due_now = {(c, LADDER[i].id) for c in ids for i in range(now_n)}
    told = tmp_path / f"told-{r}.txt"
    inherit = r % 2 == 0
    per_step = now_n - before_n
    # k, the moment of the kill. hook: a call among the first batch's. statement: one of
    # the writes before the last batch's (a batch's transaction makes six or seven:
    # savepoint, one per table, release). timer: the milliseconds after the start.
    batches = -(-len(ids) // BATCH)
    k = {"hook": lambda: rng.randint(1, BATCH * per_step),
         "statement": lambda: rng.randint(1, 6 * (batches - 1)),
         "timer": lambda: rng.randint(0, TIMER_MS)}[mode]()
    started, done = FORK.Event(), FORK.Event()
    proc = FORK.Process(target=_sweeper, args=(store, inherit, cid, at, str(told), mode, k,
                                               started, done), daemon=True)
    proc.start()
    assert started.wait(60), "the sweeper did not start"
    assert proc.pid is not None
    if mode == "timer":
        time.sleep(k / 1000)
    else:  # wait for its self-kill, or for the end of its sweep (the kill came too late)
        deadline = time.monotonic() + 120
        while proc.is_alive() and not done.is_set() and time.monotonic() < deadline:
            time.sleep(0.005)
    if proc.is_alive():
        os.kill(proc.pid, signal.SIGKILL)
    proc.join(30)
    killed = proc.exitcode == -signal.SIGKILL

    # What the crash left: every case all-or-nothing, events and marks alike.
    events = fired_counts(store, cid)
    marks = _rung_marks(store, cid)
    half = _half_applied(store, cid)
    fired_by_case: dict[str, set[str]] = {c: set() for c in ids}
    for (case_id, rung_id) in events:
        fired_by_case[case_id].add(rung_id)
    allowed = ({LADDER[i].id for i in range(before_n)}, {LADDER[i].id for i in range(now_n)})
    torn = sum(1 for fired in fired_by_case.values() if fired not in allowed)
    committed = set(events)
    newly = committed - {(c, LADDER[i].id) for c in ids for i in range(before_n)}
    report = campaign.verify()

    # The hooks: what the sweeper told, and what dispatch_pending() tells now.
    heard = set()
    if told.exists():
        for line in told.read_text().split("\n")[:-1]:  # a torn last line is dropped
            case_id, rung_id = line.split(" ")
            heard.add((case_id, rung_id))
    pending_before = len(store.pending_outbox(cid, limit=10**6))
    recorder.calls.clear()
    redelivered_n = campaign.dispatch_pending()
    redelivered = {(kw["case"].case_id, kw["rung"].id) for name, kw in recorder.calls
                   if name == "reviewflow_deadline_rung"}
    store.flush()
    pending_after = len(store.pending_outbox(cid, limit=10**6))

    # The second sweep: exactly what is left.
    recorder.calls.clear()
    result = campaign.sweep(at)
    second = [(f.case_id, f.rung.id) for f in result.fired]
    told_second = {(kw["case"].case_id, kw["rung"].id) for name, kw in recorder.calls
                   if name == "reviewflow_deadline_rung"}
    final = fired_counts(store, cid)
    final_marks = _rung_marks(store, cid)
    figures: dict[str, Any] = {
        "round": r, "mode": mode, "k": k, "inherited_store": inherit, "killed": killed,
        "rungs_due_per_case": per_step, "fired_before_kill": len(newly),
        "fired_by_second_sweep": len(second),
        "half_applied": half, "torn_cases": torn,
        "marks_equal_events": marks == events,
        "verify_ok": report.ok,
        "outbox_pending_after_kill": pending_before, "redelivered": redelivered_n,
        "rungs_never_told": len(newly - heard - redelivered),
        "told_but_not_stored": len((heard | redelivered) - committed),
        "told_twice": len(heard & redelivered),
        "outbox_pending_after_dispatch": pending_after,
        "second_sweep_exact": (Counter(second) == Counter(due_now - committed)
                               and told_second == set(second)),
        "each_once": set(final) == due_now and set(final.values()) == {1}
        and final_marks == final,
        "failed": len(result.failed),
        "due_after": len(store.deadline_due(cid, ops.to_us(at))),
        "half_applied_after": _half_applied(store, cid),
    }
    return figures


def _assert_round(f: dict[str, Any]) -> None:
    assert f["killed"], f
    assert f["half_applied"] == 0, f
    assert f["torn_cases"] == 0, f
    assert f["marks_equal_events"], f
    assert f["verify_ok"], f
    assert f["rungs_never_told"] == 0, f
    assert f["told_but_not_stored"] == 0, f
    assert f["outbox_pending_after_dispatch"] == 0, f
    assert f["second_sweep_exact"], f
    assert f["each_once"], f
    assert f["failed"] == 0, f
    assert f["due_after"] == 0, f
    assert f["half_applied_after"] == 0, f


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_kill_9_in_the_middle_of_a_pipelined_sweep(kind: str, make_store: Any, tmp_path: Path,
                                                    figure: Any) -> None:
    store = make_store(kind)
    recorder = HookRecorder()
    started = time.monotonic()
    campaign = _setup(store, CASES, recorder)
    setup_s = time.monotonic() - started
    rng = random.Random()
    rounds = []
    for r in range(ROUNDS):
        f = _round(campaign, recorder, r, MODES[r % len(MODES)], tmp_path, rng)
        rounds.append(f)
        _assert_round(f)
    mid = [f for f in rounds if f["killed"] and f["fired_by_second_sweep"]]
    final_ok = campaign.verify().ok
    figure(backend=kind, cases=CASES, rounds=len(rounds), setup_s=round(setup_s, 1),
           rounds_s=round(time.monotonic() - started - setup_s, 1),
           killed=sum(f["killed"] for f in rounds),
           killed_mid_sweep=len(mid),
           by_mode=dict(Counter(f["mode"] for f in mid)),
           fired_before_kill=sum(f["fired_before_kill"] for f in rounds),
           fired_by_second_sweep=sum(f["fired_by_second_sweep"] for f in rounds),
           half_applied=sum(f["half_applied"] for f in rounds),
           torn_cases=sum(f["torn_cases"] for f in rounds),
           redelivered=sum(f["redelivered"] for f in rounds),
           rungs_never_told=sum(f["rungs_never_told"] for f in rounds),
           told_but_not_stored=sum(f["told_but_not_stored"] for f in rounds),
           told_twice=sum(f["told_twice"] for f in rounds),
           twice_fired=sum(not f["each_once"] for f in rounds),
           verify_ok=all(f["verify_ok"] for f in rounds) and final_ok,
           per_round=[(f["mode"], f["k"], f["fired_before_kill"], f["fired_by_second_sweep"],
                       f["redelivered"]) for f in rounds])
    assert final_ok
    # the hook and statement kills always land before the sweep's end (timer kills may not)
    assert all(f in mid for f in rounds if f["mode"] != "timer"), rounds


def test_the_checks_see_a_torn_sweep_step(make_store: Any) -> None:
    """Negative control: a rung event without its mark, or a case ahead of its events."""
    store = make_store("sqlite")
    campaign = _setup(store, 3, HookRecorder())
    assert len(campaign.sweep(FIRE_AT[0])) == 3
    cid = campaign.id
    assert _half_applied(store, cid) == 0
    assert _rung_marks(store, cid) == fired_counts(store, cid)
    with store.transaction() as conn:
        conn.execute(sa.delete(schema.rung_marks).where(schema.rung_marks.c.case_id == "c00001"))
        conn.execute(sa.update(schema.cases).where(schema.cases.c.case_id == "c00002")
                     .values(version=schema.cases.c.version + 1))
    assert _half_applied(store, cid) == 1
    assert _rung_marks(store, cid) != fired_counts(store, cid)
    assert not campaign.verify().ok
