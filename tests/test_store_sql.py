"""What only the SQL store does: schema versions and upgrades, SQLite settings, JSON rows,
extra-row writers, deferred dispatch marks, tamper evidence, and the engine on a database."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from reviewflow.audit import verify_chain
from reviewflow.exceptions import (
    BallotError,
    ConflictError,
    IdempotencyKeyReused,
    InputError,
    SchemaVersionError,
    StoreError,
)
from reviewflow.store import MemoryStore, open_store
from reviewflow.store import _schema as schema
from reviewflow.store.sql import SqlStore, register_extra, schema_revision, upgrade

DATABASES = pytest.mark.parametrize("db_url", ["sqlite", "postgresql", "mysql"], indirect=True)
SERVERS = pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])


@pytest.fixture
def sql(db_url: str) -> Iterator[SqlStore]:
    """A SQL store on the parametrized database."""
    store = SqlStore(db_url)
    yield store
    store.close()


def _opened(store: SqlStore, kit: Any, *case_ids: str) -> str:
    cid = str(kit.new_campaign_id())
    store.setup_campaign(cid, "{}")
    store.insert_cases([kit.opening(cid, c) for c in case_ids])
    return cid


# ---------------------------------------------------------------------- opening


def test_open_store_accepts_stores_urls_and_none(sqlite_url: str) -> None:
    memory = MemoryStore()
    assert open_store(memory) is memory
    assert isinstance(open_store(None), MemoryStore)
    assert isinstance(open_store("memory"), MemoryStore)
    store = open_store(sqlite_url)
    assert isinstance(store, SqlStore)
    assert store.durable
    store.close()


def test_open_store_refuses_a_bare_path_and_other_objects() -> None:
    with pytest.raises(InputError, match=r"sqlite:///x\.db"):
        open_store("x.db")
    with pytest.raises(InputError, match="Store, a database URL or None"):
        open_store(42)  # type: ignore[arg-type]


def test_unsupported_and_in_memory_urls_are_refused() -> None:
    with pytest.raises(InputError, match="unsupported database"):
        SqlStore("oracle://scott@localhost/db")
    with pytest.raises(InputError, match="in-memory SQLite"):
        SqlStore("sqlite://")
    with pytest.raises(InputError, match="synchronous"):
        SqlStore("sqlite:///x.db?synchronous=off")


@SERVERS
def test_fresh_database_gets_the_schema_at_head(kind: str, fresh_url: Callable[[str], str]) -> None:
    url = fresh_url(kind)
    assert schema_revision(url) is None
    with pytest.raises(SchemaVersionError, match="reviewflow db upgrade"):
        SqlStore(url, create=False)
    SqlStore(url).close()
    assert schema_revision(url) == schema.HEAD_REVISION
    SqlStore(url, create=False).close()


@SERVERS
def test_older_schema_says_how_to_upgrade_and_upgrade_keeps_data(
    kind: str, fresh_url: Callable[[str], str],
) -> None:
    url = fresh_url(kind)
    assert upgrade(url, "0001") == (None, "0001")
    engine = sa.create_engine(sa.make_url(url).set(
        drivername={"sqlite": "sqlite", "postgresql": "postgresql+psycopg",
                    "mysql": "mysql+pymysql"}[kind]))
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.campaigns), {"id": "2015", "policy": "{}"})
    engine.dispose()
    with pytest.raises(SchemaVersionError, match="older") as info:
        SqlStore(url)
    assert f"reviewflow db upgrade {sa.make_url(url).render_as_string()}" in str(info.value)
    assert upgrade(url) == ("0001", schema.HEAD_REVISION)
    store = SqlStore(url)
    assert store.campaigns() == ["2015"]
    store.close()
    assert upgrade(url) == (schema.HEAD_REVISION, schema.HEAD_REVISION)


def test_newer_or_unstamped_schema_is_refused(fresh_url: Callable[[str], str]) -> None:
    url = fresh_url("sqlite")
    SqlStore(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {schema.VERSION_TABLE} SET version_num = '9999'"))
    with pytest.raises(SchemaVersionError, match="newer reviewflow"):
        SqlStore(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {schema.VERSION_TABLE}"))
    engine.dispose()
    with pytest.raises(SchemaVersionError, match="no schema revision"):
        SqlStore(url)
    with pytest.raises(SchemaVersionError, match="no schema revision"):
        upgrade(url)


@SERVERS
def test_migrations_build_exactly_the_declared_schema(
    kind: str, fresh_url: Callable[[str], str],
) -> None:
    url = fresh_url(kind)
    upgrade(url)
    store = SqlStore(url)  # opens without complaint
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": schema.VERSION_TABLE})
        diff = compare_metadata(context, schema.metadata)
    store.close()
    assert diff == []


def test_sqlite_runs_in_wal_with_full_sync_by_default(tmp_path: Any) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'a.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    store.close()
    store = SqlStore(f"sqlite:///{tmp_path / 'b.db'}?synchronous=normal&timeout=5")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    store.close()


@DATABASES
def test_skip_locked_is_known_per_database(sql: SqlStore) -> None:
    assert sql.skip_locked is (sql.dialect != "sqlite")


# ---------------------------------------------------------------------- rows


@DATABASES
def test_cases_are_stored_as_versioned_json_and_survive_reopening(
    db_url: str, kit: Any,
) -> None:
    store = SqlStore(db_url)
    cid = _opened(store, kit, "s")
    case = store.get(cid, "s")
    assert case is not None
    assert store.commit([kit.step(case, 2, note="说明")]) == [None]
    with store.engine.connect() as conn:
        state = conn.execute(
            sa.select(schema.cases.c.state).where(schema.cases.c.campaign_id == cid)
        ).scalar_one()
    store.close()
    doc = json.loads(state)
    assert doc["format"] == schema.FORMAT
    assert doc["data"] == {"note": "说明", "count": 2}
    again = SqlStore(db_url)
    reloaded = again.get(cid, "s")
    assert reloaded is not None
    assert (reloaded.version, reloaded.data["note"]) == (3, "说明")
    assert [r.seq for r in reloaded.history] == [1, 2, 3]
    again.close()


@DATABASES
def test_data_that_is_not_json_is_refused_per_commit(sql: SqlStore, kit: Any) -> None:
    cid = _opened(sql, kit, "a", "b")
    a, b = sql.get(cid, "a"), sql.get(cid, "b")
    assert a is not None
    assert b is not None
    results = sql.commit([kit.step(a, score=Decimal("79.00")), kit.step(b)])
    assert isinstance(results[0], InputError)
    assert "not plain JSON" in str(results[0])
    assert results[1] is None
    after = sql.get(cid, "a")
    assert after is not None
    assert after.version == 1


@DATABASES
def test_too_long_ids_are_refused(sql: SqlStore, kit: Any) -> None:
    cid = _opened(sql, kit)
    with pytest.raises(InputError, match="at most 200"):
        sql.insert_cases([kit.opening(cid, "x" * 201)])


@DATABASES
def test_same_key_for_another_command_is_refused(sql: SqlStore, kit: Any) -> None:
    cid = _opened(sql, kit, "a", "b")
    a, b = sql.get(cid, "a"), sql.get(cid, "b")
    assert a is not None
    assert b is not None
    assert sql.commit([kit.step(a, key="k", fingerprint="f1")]) == [None]
    [error] = sql.commit([kit.step(b, key="k", fingerprint="f2")])
    assert isinstance(error, IdempotencyKeyReused)
    [error] = sql.commit([kit.step(b, key="k", fingerprint="f2"), kit.step(a)])[:1]
    assert isinstance(error, IdempotencyKeyReused)
    b_after = sql.get(cid, "b")
    assert b_after is not None
    assert b_after.version == 1


@DATABASES
def test_a_replay_that_lost_the_race_is_a_conflict(sql: SqlStore, kit: Any) -> None:
    cid = _opened(sql, kit, "a")
    a = sql.get(cid, "a")
    assert a is not None
    first = kit.step(a, key="k", fingerprint="f")
    assert sql.commit([first]) == [None]
    # The same command, built on a snapshot that happens to carry the new version.
    again = kit.step(first.case, key="k", fingerprint="f")
    [error] = sql.commit([again])
    assert isinstance(error, ConflictError)
    assert sql.find_idempotent(cid, "k") == ("f", "a", 2)


# ---------------------------------------------------------------------- extras


@attrs.frozen
class Mark:
    case_id: str
    rung: str
    refuse: bool = False


@attrs.frozen
class Unregistered:
    value: int


_MARKS = sa.Table(
    "test_rung_marks", sa.MetaData(),
    sa.Column("case_id", sa.String(200), primary_key=True),
    sa.Column("rung", sa.String(64), primary_key=True),
)


def _write_mark(store: SqlStore, conn: sa.Connection, mark: Mark) -> None:
    if mark.refuse:
        raise BallotError("token_used", "this ballot token was used already")
    conn.execute(sa.insert(_MARKS), {"case_id": mark.case_id, "rung": mark.rung})


register_extra(Mark, _write_mark)


@DATABASES
def test_extra_rows_commit_with_the_step_or_not_at_all(sql: SqlStore, kit: Any) -> None:
    _MARKS.create(sql.engine, checkfirst=True)
    cid = _opened(sql, kit, "a", "b", "c")
    a, b, c = (sql.get(cid, k) for k in "abc")
    assert a is not None
    assert b is not None
    assert c is not None
    tag = cid[-6:]
    results = sql.commit([
        kit.step(a, extras=(Mark(f"a{tag}", "remind"),)),
        kit.step(b, extras=(Mark(f"b{tag}", "remind", refuse=True),)),
        kit.step(c, extras=(Unregistered(1),)),
    ])
    assert results[0] is None
    assert isinstance(results[1], BallotError)
    assert isinstance(results[2], StoreError)
    assert "register_extra" in str(results[2])
    [single] = sql.commit([kit.step(b, extras=(Mark(f"b{tag}", "x", refuse=True),))])
    assert isinstance(single, BallotError)
    with sql.engine.connect() as conn:
        rows = conn.execute(sa.select(_MARKS.c.case_id).where(_MARKS.c.case_id.like(f"%{tag}")))
        assert [r[0] for r in rows] == [f"a{tag}"]
    assert [x.version for x in sql.cases(cid)] == [2, 1, 1]
    assert sql.dialect in ("sqlite", "postgresql", "mysql")


# ---------------------------------------------------------------------- outbox


@DATABASES
def test_dispatch_marks_are_written_with_the_next_write(db_url: str, kit: Any) -> None:
    store = SqlStore(db_url)
    cid = _opened(store, kit, "a", "b")
    store.mark_dispatched(cid, [f"{cid}/a/1"])
    # Not yet written: another process still sees the event pending (at least once).
    other = SqlStore(db_url)
    assert len(other.pending_outbox(cid)) == 2
    # This process does not: its marks are flushed before it reads the outbox.
    assert [r.event_id for r in store.pending_outbox(cid)] == [f"{cid}/b/1"]
    assert [r.event_id for r in other.pending_outbox(cid)] == [f"{cid}/b/1"]
    store.mark_dispatched(cid, [f"{cid}/b/1"])
    b = store.get(cid, "b")
    assert b is not None
    assert store.commit([kit.step(b)]) == [None]  # carries the mark
    assert [r.event_id for r in other.pending_outbox(cid)] == [f"{cid}/b/2"]
    store.mark_dispatched(cid, [f"{cid}/b/2"])
    store.close()  # flushes
    assert other.pending_outbox(cid) == []
    other.close()


def test_marks_survive_a_failed_write(sqlite_url: str, kit: Any) -> None:
    store = SqlStore(sqlite_url)
    cid = _opened(store, kit, "a")
    a = store.get(cid, "a")
    assert a is not None
    assert store.commit([kit.step(a)]) == [None]
    store.mark_dispatched(cid, [f"{cid}/a/1"])
    [error] = store.commit([kit.step(a)])  # stale: rolled back, the mark is kept
    assert isinstance(error, ConflictError)
    store.flush()
    assert [r.seq for r in store.pending_outbox(cid)] == [2]
    store.close()


def test_malformed_event_ids_are_refused(sqlite_url: str) -> None:
    store = SqlStore(sqlite_url)
    with pytest.raises(InputError, match="not of campaign"):
        store.mark_dispatched("2016", ["2015/a/1"])
    with pytest.raises(InputError, match="malformed"):
        store.mark_dispatched("2016", ["2016/a"])
    store.close()


def test_commits_without_outbox_leave_no_pending_rows(sqlite_url: str, kit: Any) -> None:
    store = SqlStore(sqlite_url)
    cid = _opened(store, kit, "a")
    store.mark_dispatched(cid, [f"{cid}/a/1"])
    a = store.get(cid, "a")
    assert a is not None
    assert store.commit([kit.step(a)._replace(outbox=False)]) == [None]
    assert store.pending_outbox(cid) == []
    store.close()


# ---------------------------------------------------------------------- tamper evidence


_EVENT_COLUMNS = ["seq", "event", "actor_id", "role", "at", "from_stage", "to_stage", "reason",
                  "data", "prev_hash", "hash"]


def _verify(store: SqlStore, cid: str) -> list[Any]:
    problems = []
    for chain in store.iter_histories(cid):
        problems += verify_chain(chain.case_id, chain.records, expected_version=chain.version,
                                 expected_hash=chain.last_hash)
    return problems


def _tamper_value(value: Any) -> Any:
    if isinstance(value, int):
        return value + 10
    if value is None:
        return "x"
    text = str(value)
    middle = len(text) // 2
    return text[:middle] + chr(ord(text[middle]) ^ 1) + text[middle + 1:]


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_changing_any_stored_event_byte_or_deleting_an_event_is_detected(
    sql: SqlStore, kit: Any,
) -> None:
    cid = _opened(sql, kit, *[f"c{i:02d}" for i in range(len(_EVENT_COLUMNS) + 2)])
    for case in sql.cases(cid):
        assert sql.commit([kit.step(case, 3)]) == [None]
    assert _verify(sql, cid) == []
    e = schema.events.c
    with sql.transaction() as conn:
        for i, column in enumerate(_EVENT_COLUMNS):
            where = sa.and_(e.campaign_id == cid, e.case_id == f"c{i:02d}", e.seq == 2)
            value = conn.execute(sa.select(e[column]).where(where)).scalar_one()
            conn.execute(sa.update(schema.events).where(where)
                         .values({column: _tamper_value(value)}))
        n = len(_EVENT_COLUMNS)
        conn.execute(sa.delete(schema.events).where(
            sa.and_(e.campaign_id == cid, e.case_id == f"c{n:02d}", e.seq == 2)))
        conn.execute(sa.delete(schema.events).where(
            sa.and_(e.campaign_id == cid, e.case_id == f"c{n + 1:02d}", e.seq == 4)))
    problems = _verify(sql, cid)
    assert sorted(p.case_id for p in problems) == [f"c{i:02d}" for i in range(n + 2)]
    assert {p.position for p in problems if p.case_id == f"c{n + 1:02d}"} == {4}


@DATABASES
def test_iter_histories_yields_every_case_in_order(sql: SqlStore, kit: Any) -> None:
    cid = _opened(sql, kit, "b", "a", "c")
    b = sql.get(cid, "b")
    assert b is not None
    assert sql.commit([kit.step(b, 2)]) == [None]
    chains = {c.case_id: c for c in sql.iter_histories(cid)}
    assert set(chains) == {"a", "b", "c"}
    assert [r.seq for r in chains["b"].records] == [1, 2, 3]
    assert chains["b"].records == sql.history(cid, "b")
    assert chains["b"].version == 3


# ---------------------------------------------------------------------- writers


FORK = multiprocessing.get_context("fork")


@DATABASES
def test_threads_committing_through_one_store_lose_nothing(sql: SqlStore, kit: Any) -> None:
    ids = [f"t{i}" for i in range(6)]
    cid = _opened(sql, kit, "shared", *ids)
    won: list[str] = []
    failures: list[BaseException] = []

    def work(case_id: str) -> None:
        try:
            for _ in range(12):
                own = sql.get(cid, case_id)
                assert own is not None
                assert sql.commit([kit.step(own)]) == [None]
                shared = sql.get(cid, "shared")
                assert shared is not None
                [error] = sql.commit([kit.step(shared)])
                if error is None:
                    won.append(case_id)
                else:
                    assert isinstance(error, ConflictError), error
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert failures == []
    assert won
    assert {c.case_id: c.version for c in sql.cases(cid)} == {
        "shared": 1 + len(won), **dict.fromkeys(ids, 13)}
    assert _verify(sql, cid) == []
    assert len(sql.pending_outbox(cid, limit=10_000)) == 7 + 12 * len(ids) + len(won)


@DATABASES
def test_single_commits_keep_their_extra_rows_and_refusals_atomic(sql: SqlStore, kit: Any,
                                                                  ) -> None:
    _MARKS.create(sql.engine, checkfirst=True)
    cid = _opened(sql, kit, "a")
    tag = cid[-6:]
    a = sql.get(cid, "a")
    assert a is not None
    assert sql.commit([kit.step(a, extras=(Mark(f"a{tag}", "one"),))]) == [None]
    [stale] = sql.commit([kit.step(a, extras=(Mark(f"a{tag}", "two"),))])
    assert isinstance(stale, ConflictError)
    a = sql.get(cid, "a")
    assert a is not None
    [refused] = sql.commit([kit.step(a, extras=(Mark(f"a{tag}", "two", refuse=True),))])
    assert isinstance(refused, BallotError)
    [duplicate] = sql.commit([kit.step(a, extras=(Mark(f"a{tag}", "one"),))])
    assert isinstance(duplicate, StoreError)
    assert sql.commit([kit.step(a, key="k", extras=(Mark(f"a{tag}", "three"),))]) == [None]
    with sql.engine.connect() as conn:
        rows = conn.execute(sa.select(_MARKS.c.rung).where(_MARKS.c.case_id == f"a{tag}"))
        assert sorted(r[0] for r in rows) == ["one", "three"]
    assert [r.seq for r in sql.history(cid, "a")] == [1, 2, 3]
    assert sql.find_idempotent(cid, "k") == ("", "a", 3)
    assert _verify(sql, cid) == []


@attrs.frozen
class Interrupt:
    value: int


def _interrupt(store: SqlStore, conn: sa.Connection, extra: Interrupt) -> None:
    conn.execute(sa.select(sa.literal(extra.value)))  # SQLAlchemy joins the transaction
    raise KeyboardInterrupt


def test_an_interrupted_command_writes_nothing_and_leaves_the_store_usable(
    sqlite_url: str, kit: Any,
) -> None:
    store = SqlStore(sqlite_url)
    store.extra_handlers[Interrupt] = _interrupt
    cid = _opened(store, kit, "a", "b")
    a, b = store.get(cid, "a"), store.get(cid, "b")
    assert a is not None
    assert b is not None
    store.mark_dispatched(cid, [f"{cid}/a/1", f"{cid}/b/1"])
    with pytest.raises(KeyboardInterrupt):
        store.commit([kit.step(a, extras=(Interrupt(1),))])
    with pytest.raises(KeyboardInterrupt):
        store.commit([kit.step(a), kit.step(b, extras=(Interrupt(2),))])
    assert [c.version for c in store.cases(cid)] == [1, 1]
    assert store.commit([kit.step(a)]) == [None]
    assert [r.event_id for r in store.pending_outbox(cid)] == [f"{cid}/a/2"]  # marks kept
    other = SqlStore(sqlite_url)  # the write lock was released
    b = other.get(cid, "a")
    assert b is not None
    assert other.commit([kit.step(b)]) == [None]
    other.close()
    store.close()


def _hold_write_lock(path: str, held: Any, release: Any) -> None:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    held.set()
    release.wait(60)
    other.execute("ROLLBACK")
    other.close()


def test_a_write_queues_for_another_process_lock_and_fails_cleanly_after_the_timeout(
    tmp_path: Path, kit: Any,
) -> None:
    path = str(tmp_path / "locked.db")
    store = SqlStore(f"sqlite:///{path}?timeout=0.2")
    cid = _opened(store, kit, "a")
    a = store.get(cid, "a")
    assert a is not None
    assert store.commit([kit.step(a)]) == [None]
    a = store.get(cid, "a")
    assert a is not None
    store.mark_dispatched(cid, [f"{cid}/a/1"])
    held, release = FORK.Event(), FORK.Event()
    holder = FORK.Process(target=_hold_write_lock, args=(path, held, release))
    holder.start()
    try:
        assert held.wait(60)
        with pytest.raises(StoreError, match="locked"):
            store.commit([kit.step(a)])
        with pytest.raises(StoreError, match="locked"):
            store.commit([kit.step(a), kit.step(a)])
        now = store.get(cid, "a")  # reads go on; nothing was written
        assert now is not None
        assert (now.version, now.last_hash) == (a.version, a.last_hash)
    finally:
        release.set()
        holder.join(60)
    assert store.commit([kit.step(a)]) == [None]
    assert [r.event_id for r in store.pending_outbox(cid)] == [f"{cid}/a/2", f"{cid}/a/3"]
    store.close()
    # Released within the timeout: the write waits for it and goes through.
    store = SqlStore(f"sqlite:///{path}?timeout=30")
    a = store.get(cid, "a")
    assert a is not None
    held, release = FORK.Event(), FORK.Event()
    holder = FORK.Process(target=_hold_write_lock, args=(path, held, release))
    holder.start()
    assert held.wait(60)
    threading.Timer(0.3, release.set).start()
    assert store.commit([kit.step(a)]) == [None]
    holder.join(60)
    assert [r.seq for r in store.history(cid, "a")] == [1, 2, 3, 4]
    store.close()


def _commit_in_child(store: SqlStore, kit: Any, cid: str, out: Any) -> None:
    try:
        c = store.get(cid, "c")
        assert c is not None
        out.put(store.commit([kit.step(c)]))
        store.close()
    except BaseException as exc:  # reported to the parent
        out.put(repr(exc))


@DATABASES
def test_a_store_in_use_before_a_fork_works_in_the_child_and_the_parent(
    sql: SqlStore, kit: Any,
) -> None:
    cid = _opened(sql, kit, "p", "c")
    p = sql.get(cid, "p")
    assert p is not None
    assert sql.commit([kit.step(p)]) == [None]  # the store's connections are open
    out = FORK.Queue()
    child = FORK.Process(target=_commit_in_child, args=(sql, kit, cid, out))
    child.start()
    assert out.get(timeout=60) == [None]
    child.join(60)
    assert child.exitcode == 0
    p = sql.get(cid, "p")
    assert p is not None
    assert sql.commit([kit.step(p)]) == [None]
    assert {c.case_id: c.version for c in sql.cases(cid)} == {"p": 3, "c": 2}
    assert _verify(sql, cid) == []


# ---------------------------------------------------------------------- the engine on a database


ENGINE_DATABASES = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)


def _campaign_on(url: str, campaign_id: str, **kwargs: Any) -> tuple[Any, Any]:
    from reviewflow.testing import seed_campaign

    campaign, clock = seed_campaign(store=url)
    if campaign.id != campaign_id:  # a campaign id of this test's own, same policy and clock
        from reviewflow.campaign import Campaign

        campaign.store.close()
        campaign = Campaign(campaign.policy, clock=clock, store=url, campaign_id=campaign_id,
                            **kwargs)
    return campaign, clock


@ENGINE_DATABASES
def test_a_campaign_on_a_database_survives_reopening(db_url: str, kit: Any) -> None:
    from reviewflow.model import Stage
    from reviewflow.testing import Cast, drive_to

    cid = kit.new_campaign_id()
    campaign, clock = _campaign_on(db_url, cid)
    assert isinstance(campaign.store, SqlStore)
    cast = Cast.default()
    campaign.open_cases([{"case_id": f"s{i}", "organization": f"第{i}党支部",
                          "secretary": cast.secretary(f"s{i}")} for i in range(3)])
    drive_to(campaign, "s0", Stage.CLOSED, cast=cast, clock=clock)
    drive_to(campaign, "s1", Stage.MEETING, cast=cast, clock=clock)
    results = campaign.fire_many(["s1", "s2"], "hold_meeting", actor=cast.organizer,
                                 attendance={"party_members": 20})
    assert [r.ok for r in results] == [True, False]
    history = campaign.case("s0").history
    campaign.store.close()

    again, _ = _campaign_on(db_url, cid)
    assert [c.stage for c in again.cases()] == [Stage.CLOSED, Stage.EVALUATION, Stage.RESEARCH]
    assert again.case("s0").history == history
    assert [r.reason for r in again.refusals("s2")] == [results[1].error.reason]  # type: ignore[union-attr]
    report = again.verify()
    assert report.ok
    assert report.cases == 3
    again.store.close()


@ENGINE_DATABASES
def test_idempotent_fire_on_a_database_has_one_effect(db_url: str, kit: Any) -> None:
    from reviewflow.testing import Cast

    campaign, _ = _campaign_on(db_url, kit.new_campaign_id())
    cast = Cast.default()
    campaign.open_case("s", organization="党支部", secretary=cast.secretary("s"))
    first = campaign.fire("s", "finish_research", actor=cast.organizer, problems=["问题"],
                          idempotency_key="req-1")
    again = campaign.fire("s", "finish_research", actor=cast.organizer, problems=["问题"],
                          idempotency_key="req-1")
    assert again.version == first.version == 2
    assert len(campaign.case("s").history) == 2
    campaign.store.close()


@ENGINE_DATABASES
def test_events_committed_before_a_crash_are_delivered_by_dispatch_pending(
    db_url: str, kit: Any,
) -> None:
    from reviewflow.testing import HookRecorder

    cid = kit.new_campaign_id()
    crashed = SqlStore(db_url)  # what a process that died after its commit left behind
    from reviewflow.testing import seed_campaign

    crashed.setup_campaign(cid, seed_campaign()[0].policy.to_json())
    crashed.insert_cases([kit.opening(cid, "s")])
    case = crashed.get(cid, "s")
    assert case is not None
    assert crashed.commit([kit.step(case)]) == [None]
    crashed.close()
    recorder = HookRecorder()
    campaign, _ = _campaign_on(db_url, cid, plugins=[recorder])
    assert campaign.dispatch_pending() == 2
    assert recorder.names() == ["reviewflow_case_opened", "reviewflow_step"]
    assert recorder.calls[1][1]["record"].event_id == f"{cid}/s/2"
    assert campaign.dispatch_pending() == 0
    campaign.store.close()


@ENGINE_DATABASES
def test_campaign_verify_reports_an_edited_event(db_url: str, kit: Any) -> None:
    from reviewflow.testing import Cast

    cid = kit.new_campaign_id()
    campaign, _ = _campaign_on(db_url, cid)
    cast = Cast.default()
    campaign.open_case("s", organization="党支部", secretary=cast.secretary("s"))
    campaign.fire("s", "finish_research", actor=cast.organizer, problems=["问题"])
    store = campaign.store
    assert isinstance(store, SqlStore)
    e = schema.events.c
    with store.transaction() as conn:
        conn.execute(sa.update(schema.events)
                     .where(e.campaign_id == cid, e.case_id == "s", e.seq == 2)
                     .values(actor_id="someone-else"))
    report = campaign.verify()
    assert not report.ok
    assert [(p.case_id, p.position) for p in report.problems] == [("s", 2)]
    store.close()
