"""The SQL store's deadline index: schedule rows, rung marks, the due queries, several
sweeper processes on one database, SKIP LOCKED claims, and upgrading a 0002 database.

Every test runs on a real SQLite file, PostgreSQL and MariaDB (``tests/conftest.py``).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
import traceback
from collections import Counter
from typing import Any

import pendulum
import pytest
import sqlalchemy as sa

import reviewflow as rf
from reviewflow._engine import deadline_work as ops
from reviewflow.cli import main
from reviewflow.exceptions import ConflictError
from reviewflow.store import _schema as schema
from reviewflow.store._engine import _alembic_config, make_engine
from reviewflow.store.base import Commit
from reviewflow.store.rows import RungMark, RungSchedule
from reviewflow.store.sql import SqlStore, schema_revision
from reviewflow.testing import Cast

KINDS = pytest.mark.parametrize("db_url", ["sqlite", "postgresql", "mysql"], indirect=True)
SERVERS = pytest.mark.parametrize("db_url", ["postgresql", "mysql"], indirect=True)
FORK = multiprocessing.get_context("fork")
CAST = Cast.default()
TZ = "Asia/Shanghai"
START = pendulum.datetime(2016, 1, 4, 9, tz=TZ)
#: The default ladder of the drafting stage (due 2016-01-18 00:00) fires at these times.
LADDER_TIMES = (pendulum.datetime(2016, 1, 13, 9, tz=TZ), pendulum.datetime(2016, 1, 15, 9, tz=TZ),
                pendulum.datetime(2016, 1, 18, tz=TZ))
RUNGS = ("remind-3wd", "remind-1wd", "escalate-at-due")


def new_id() -> str:
    """Return a campaign id no other test uses."""
    return f"dl-{os.urandom(5).hex()}"


def open_campaign(url: str, cid: str) -> rf.Campaign:
    """Return campaign ``cid`` on ``url`` through a store (connection pool) of its own."""
    return rf.Campaign(rf.Policy.default(year=2016), clock=rf.FrozenClock(START),
                       store=SqlStore(url), campaign_id=cid)


def drafting(url: str, n: int, cid: str | None = None) -> rf.Campaign:
    """Return a campaign with ``n`` cases in drafting (due 2016-01-18, three rungs each)."""
    campaign = open_campaign(url, cid or new_id())
    ids = [f"s{i:04d}" for i in range(n)]
    campaign.open_cases([{"case_id": i, "organization": f"{i}党支部",
                          "secretary": CAST.secretary(i)} for i in ids], actor=CAST.organizer)
    done = campaign.fire_many(ids, "finish_research", actor=CAST.organizer,
                              problems=["组织生活不规范"])
    assert all(r.ok for r in done)
    return campaign


def fired_counts(store: SqlStore, cid: str) -> Counter[tuple[str, str]]:
    """Count the ``deadline_rung`` events per (case, rung) stored for a campaign."""
    e = schema.events.c
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(e.case_id, e.data).where(e.campaign_id == cid)
                            .where(e.event == ops.RUNG_EVENT))
        return Counter((str(r.case_id), json.loads(r.data)["rung"]["id"]) for r in rows)


def schedule(cid: str, case_id: str, due: int | None, fire: int | None) -> RungSchedule:
    """Return a deadline index row."""
    return RungSchedule(campaign_id=cid, case_id=case_id, stage="drafting", due_us=due,
                            next_fire_us=fire)


def opened(store: SqlStore, kit: Any, *ids: str) -> str:
    """Set up a campaign with cases opened through the store; return its id."""
    cid: str = kit.new_campaign_id()
    store.setup_campaign(cid, "{}")
    store.insert_cases([kit.opening(cid, i) for i in ids])
    return cid


# ---------------------------------------------------------------------- rows and queries


@KINDS
def test_schedule_rows_upsert_delete_and_answer_the_due_queries(db_url: str, kit: Any) -> None:
    store = SqlStore(db_url)
    cid = opened(store, kit, "a", "b", "c", "d")
    cases = {c.case_id: c for c in store.cases(cid)}
    rows = {"a": (300, 200), "b": (100, 200), "c": (50, None), "d": (None, 10)}
    results = store.commit([kit.step(cases[k], extras=(schedule(cid, k, *v),))
                            for k, v in rows.items()])
    assert results == [None] * 4
    assert store.deadline_due(cid, 200) == ["d", "a", "b"]  # by fire time, then case id
    assert store.deadline_due(cid, 199) == ["d"]
    assert store.deadline_due(cid, 10**15, limit=2) == ["d", "a"]
    assert store.deadline_overdue(cid, 300) == ["c", "b"]  # due strictly before
    assert store.deadline_overdue(cid, 301, limit=1) == ["c"]
    assert store.deadline_due("no-such-campaign", 10**15) == []
    cases = {c.case_id: c for c in store.cases(cid)}
    again = [kit.step(cases["a"], extras=(schedule(cid, "a", 300, 5),)),
             kit.step(cases["d"], extras=(schedule(cid, "d", None, None),))]
    assert store.commit(again) == [None, None]
    assert store.deadline_due(cid, 200) == ["a", "b"]  # a moved up, d deleted
    with store.engine.connect() as conn:
        kept = conn.execute(sa.select(schema.deadline_index.c.case_id)
                            .where(schema.deadline_index.c.campaign_id == cid)).scalars().all()
    assert sorted(kept) == ["a", "b", "c"]
    # The last row of a case in one batch wins.
    a = store.get(cid, "a")
    assert a is not None
    first = kit.step(a, extras=(schedule(cid, "a", 300, 1),))
    second = kit.step(first.case, extras=(schedule(cid, "a", 300, 7),))
    assert store.commit([first, second]) == [None, None]
    assert store.deadline_due(cid, 6) == []
    assert store.deadline_due(cid, 7) == ["a"]
    store.close()


@KINDS
def test_a_rung_mark_stored_already_refuses_the_whole_commit(db_url: str, kit: Any) -> None:
    store = SqlStore(db_url)
    cid = opened(store, kit, "a", "b")
    a, b = store.get(cid, "a"), store.get(cid, "b")
    assert a is not None
    assert b is not None

    def mark(case_id: str, seq: int) -> RungMark:
        return RungMark(campaign_id=cid, case_id=case_id, stage="drafting",
                            rung_id="remind-3wd", due_us=1_452_000_000_000_000,
                            fired_at="2016-01-13T09:00:00+08:00", seq=seq)

    assert store.commit([kit.step(a, extras=(mark("a", 2), schedule(cid, "a", 5, 6)))]) == [None]
    a = store.get(cid, "a")
    assert a is not None
    # Another sweeper's mark for the same rung and due time (the case snapshot lost it).
    [single] = store.commit([kit.step(a, extras=(mark("a", 3), schedule(cid, "a", 5, 9)))])
    assert isinstance(single, ConflictError)
    assert "already recorded as fired" in str(single)
    both = store.commit([kit.step(a, extras=(mark("a", 3),)), kit.step(b, extras=(mark("b", 2),))])
    assert isinstance(both[0], ConflictError)
    assert both[1] is None
    assert [c.version for c in store.cases(cid)] == [2, 2]  # the refused steps wrote nothing
    assert store.deadline_due(cid, 6) == ["a"]
    with store.engine.connect() as conn:
        marks = conn.execute(sa.select(sa.func.count()).select_from(schema.rung_marks)
                             .where(schema.rung_marks.c.campaign_id == cid)).scalar_one()
    assert marks == 2
    store.close()


@KINDS
def test_index_only_commits_without_events_are_accepted(db_url: str, kit: Any) -> None:
    store = SqlStore(db_url)
    cid = opened(store, kit, "a")
    a = store.get(cid, "a")
    assert a is not None
    reindex = Commit(case=a, expected_version=a.version, events=(),
                     extras=(schedule(cid, "a", 10, 20),))
    assert store.commit([reindex]) == [None]
    assert store.commit([reindex, reindex]) == [None, None]  # a batch of them too
    after = store.get(cid, "a")
    assert after is not None
    assert (after.version, after.last_hash) == (a.version, a.last_hash)
    assert len(store.history(cid, "a")) == 1
    assert store.pending_outbox(cid) == [store.history(cid, "a")[0]]
    assert store.deadline_due(cid, 20) == ["a"]
    store.close()


# ---------------------------------------------------------------------- sweeping


def _sweeper(url: str, cid: str, start: Any, out: Any) -> None:
    try:
        campaign = open_campaign(url, cid)
        start.wait()
        fired: list[tuple[str, str]] = []
        failed = conflicts = 0
        for moment in LADDER_TIMES:
            result = campaign.sweep(moment)
            fired += [(f.case_id, f.rung.id) for f in result.fired]
            failed += len(result.failed)
            conflicts += result.conflicts
        campaign.store.close()
        out.put((fired, failed, conflicts, None))
    except BaseException:
        out.put(([], 0, 0, traceback.format_exc()))


@KINDS
def test_several_sweeper_processes_fire_each_rung_exactly_once(db_url: str) -> None:
    n, procs = 120, 4
    campaign = drafting(db_url, n)
    cid = campaign.id
    campaign.store.close()  # no pool is carried into the children
    start = FORK.Event()
    out = FORK.Queue()
    workers = [FORK.Process(target=_sweeper, args=(db_url, cid, start, out))
               for _ in range(procs)]
    for w in workers:
        w.start()
    start.set()
    reports = [out.get(timeout=240) for _ in workers]
    for w in workers:
        w.join(60)
    assert [r[3] for r in reports] == [None] * procs, [r[3] for r in reports if r[3]]
    assert sum(r[1] for r in reports) == 0  # nothing failed for good
    told = Counter(pair for r in reports for pair in r[0])
    expected = {(f"s{i:04d}", rung) for i in range(n) for rung in RUNGS}
    assert set(told) == expected
    assert set(told.values()) == {1}  # each reported by one sweeper
    store = SqlStore(db_url)
    stored = fired_counts(store, cid)
    assert set(stored) == expected  # none skipped
    assert set(stored.values()) == {1}  # none twice
    with store.engine.connect() as conn:
        marks = conn.execute(sa.select(sa.func.count()).select_from(schema.rung_marks)
                             .where(schema.rung_marks.c.campaign_id == cid)).scalar_one()
    assert marks == len(expected)
    again = open_campaign(db_url, cid)
    assert len(again.sweep(LADDER_TIMES[-1])) == 0
    assert again.verify().ok
    again.store.close()
    store.close()


@SERVERS
def test_a_sweep_skips_a_locked_case_and_then_waits_for_it(db_url: str) -> None:
    campaign = drafting(db_url, 3)
    store = campaign.store
    assert isinstance(store, SqlStore)
    assert store.skip_locked
    locker = make_engine(db_url)
    c = schema.cases.c
    committed = threading.Event()
    outcome: list[Any] = []
    with locker.connect() as conn, conn.begin():
        conn.execute(sa.select(c.version).where(c.campaign_id == campaign.id)
                     .where(c.case_id == "s0001").with_for_update())

        def sweep() -> None:
            outcome.append(campaign.sweep(LADDER_TIMES[0]))
            committed.set()

        worker = threading.Thread(target=sweep)
        worker.start()
        # The two free cases are written while s0001 is still held by the other writer.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            versions = {x.case_id: x.version for x in store.cases(campaign.id)}
            if versions["s0000"] == versions["s0002"] == 3:
                break
            time.sleep(0.02)
        assert versions["s0000"] == versions["s0002"] == 3
        assert versions["s0001"] == 2
        assert not committed.is_set()  # waiting for s0001
    worker.join(60)
    assert committed.is_set()
    [result] = outcome
    assert sorted(f.case_id for f in result.fired) == ["s0000", "s0001", "s0002"]
    assert result.failed == ()
    assert set(fired_counts(store, campaign.id).values()) == {1}
    locker.dispose()
    store.close()


# ---------------------------------------------------------------------- upgrading


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_a_0002_database_upgrades_and_reindexes(db_url: str, fresh_url: Any) -> None:
    kind = sa.make_url(db_url).get_backend_name()
    url = fresh_url(kind)
    campaign = drafting(url, 5)
    cid = campaign.id
    campaign.store.close()
    engine = make_engine(url).execution_options(rf_write=True)
    from alembic import command

    with engine.begin() as conn:  # back to the schema of the previous release
        command.downgrade(_alembic_config(conn), "0002")
    engine.dispose()
    assert schema_revision(url) == "0002"
    with pytest.raises(rf.ReviewflowError, match="reviewflow db upgrade"):
        SqlStore(url)
    assert main(["--lang", "en", "db", "upgrade", url]) == 0
    assert schema_revision(url) == schema.HEAD_REVISION
    upgraded = open_campaign(url, cid)
    assert len(upgraded.sweep(LADDER_TIMES[-1])) == 0  # the index is empty until rebuilt
    assert upgraded.reindex_deadlines() == 5
    result = upgraded.sweep(LADDER_TIMES[-1])
    assert len(result) == 15
    assert set(fired_counts(upgraded.store, cid).values()) == {1}  # type: ignore[arg-type]
    assert upgraded.verify().ok
    upgraded.store.close()
