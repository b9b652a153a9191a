"""The SQL store: SQLite (the embedded default), PostgreSQL and MySQL/MariaDB, via SQLAlchemy Core.

One database holds any number of campaigns, each isolated by its id. Each
:class:`~reviewflow.store.base.Commit` is one transaction (a batch shares one
transaction, with a savepoint per commit only when a commit in it fails): the
case row is updated ``WHERE version = expected`` and its events, outbox rows,
idempotency key and extra rows are inserted together, or nothing is.

SQLite runs in WAL mode with ``synchronous=FULL`` (an acknowledged command
survives a power cut, not only a crash; ``?synchronous=normal`` in the URL trades
that for speed) and waits up to 30 s for the write lock (``?timeout=SECONDS``).
Write transactions begin with ``BEGIN IMMEDIATE``, so several processes queue
for the lock instead of failing on upgrade. A store writes to SQLite through one
connection of its own, kept open between commands (a thread that writes while
another does takes a pooled connection and queues for the lock); a forked child
leaves its parent's connections alone and opens its own.

The store also keeps the deadline index (:meth:`SqlStore.deadline_due`, fed by the
rung schedule rows every commit carries) and each campaign's ballot box
(:meth:`SqlStore.ballot_box`). Commits that fire deadline rungs first claim their
case rows: on PostgreSQL and MySQL 8 / MariaDB 10.6+ with ``FOR UPDATE SKIP
LOCKED``, so that several sweepers share the due cases instead of queueing on the
same rows (a case another writer holds is refused with a ConflictError, and the
sweep's retry of it waits for that writer); exactly-once itself comes from the
version check and the rung marks' key.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine

from reviewflow._macs import EventMacs, with_macs
from reviewflow.exceptions import (
    ConflictError,
    DuplicateCaseError,
    IdempotencyKeyReused,
    InputError,
    ReviewflowError,
    SchemaVersionError,
    StoreError,
    UnknownCaseError,
)
from reviewflow.model import Case, EventRecord, canonical_data
from reviewflow.store import _anchors, _ballots, _deadlines
from reviewflow.store import _schema as s
from reviewflow.store._ballots import SqlBallotBox
from reviewflow.store._delivery import SqlDeliveryLog
from reviewflow.store._engine import (
    DEFAULT_URL,
    create_schema,
    current_revision,
    database_error,
    engine_timeouts,
    has_reviewflow_tables,
    make_engine,
    retryable,
    schema_revision,
    shown,
    upgrade,
)
from reviewflow.store._rows import (
    CommitRows,
    check_id,
    driver_sql,
    dumps,
    event_data,
    pg_insert_rest,
    pg_update,
)
from reviewflow.store._timeouts import NOT_APPLIED, Timeouts, timeout_error
from reviewflow.store.base import Commit, Refusal
from reviewflow.store.rows import RoundFrozen, RungMark, RungSchedule, TokenRows

__all__ = [
    "DEFAULT_URL",
    "ExtraBatchWriter",
    "ExtraWriter",
    "SqlStore",
    "StoredChain",
    "create_schema",
    "register_extra",
    "schema_revision",
    "upgrade",
]

#: Writes one extra row type inside a commit's transaction: ``writer(store, conn, extra)``.
#: Raise a :class:`~reviewflow.exceptions.ReviewflowError` to refuse the whole commit.
ExtraWriter = Callable[["SqlStore", Connection, Any], None]

#: Writes many extra rows of one type at once: ``writer(store, conn, extras)``.
ExtraBatchWriter = Callable[["SqlStore", Connection, Sequence[Any]], None]

_EXTRA_WRITERS: dict[type, ExtraWriter] = {}
_EXTRA_BATCHES: dict[type, ExtraBatchWriter] = {}

#: Retries of a whole transaction the database aborted to break a deadlock.
_DEADLOCK_RETRIES = 5
#: Dispatch marks are kept in memory this long (or this many) before a write of their own.
_MARK_DELAY_S = 1.0
_MARK_BATCH = 10_000
#: Keys of Case.to_json() kept in their own columns rather than in the state document.
_COLUMN_KEYS = frozenset(
    {"campaign_id", "case_id", "stage", "version", "last_hash", "previous_case_id"}
)


def register_extra(kind: type, writer: ExtraWriter, *, batch: ExtraBatchWriter | None = None,
                   ) -> None:
    """Register how the SQL store writes one extra row type inside a commit's transaction.

    The feature that puts ``kind`` objects in :attr:`Commit.extras` (ballot tokens,
    vote freezes, deadline index rows and rung marks) calls this once at import. The
    writer runs on the commit's connection, after the case row and events; raising
    refuses that commit and rolls back everything it wrote. ``batch``, if given, writes
    the rows of every commit of a batch at once (one statement instead of one per row);
    when it raises, each commit is written again on its own to find the one that fails.
    """
    _EXTRA_WRITERS[kind] = writer
    if batch is None:
        _EXTRA_BATCHES.pop(kind, None)
    else:
        _EXTRA_BATCHES[kind] = batch


def _fires_rungs(c: Commit) -> bool:
    return any(type(x) is RungMark for x in c.extras)


def _held_by_another(c: Commit) -> ConflictError:
    error = ConflictError(c.case.case_id, c.expected_version, None)
    error.args = (
        f"case {c.case.case_id!r} is being written by another writer (another sweeper has "
        "claimed it); nothing was written: reload the case and try again (a retry of the "
        "same step waits for the other writer)",
    )
    return error


_new_record = tuple.__new__


class StoredChain(NamedTuple):
    """One case's stored version, last hash and events, for verifying its hash chain."""

    case_id: str
    version: int
    last_hash: str
    records: list[EventRecord]
    #: The stored case (its row), read in the same pass.
    case: Case | None = None


# ---------------------------------------------------------------------- the store


class SqlStore:
    """Keep campaigns in a SQL database: ``SqlStore("sqlite:///reviewflow.db")``.

    ``create=False`` refuses a fresh database instead of creating the tables (for
    tools that only inspect). A database made by an older reviewflow raises
    :class:`~reviewflow.exceptions.SchemaVersionError`: run ``reviewflow db upgrade URL``.
    ``timeouts`` bound every wait for the database (:class:`~reviewflow.store.Timeouts`;
    the URL's ``*_timeout`` parameters win); a limit that runs out raises
    :class:`~reviewflow.exceptions.StoreTimeout`.
    """

    durable = True

    def __init__(self, url: str | URL = DEFAULT_URL, *, create: bool = True,
                 timeouts: Timeouts | None = None) -> None:
        self._engine = make_engine(url, timeouts=timeouts)
        #: The same pool; its transactions take the write lock at BEGIN on SQLite.
        self._write = self._engine.execution_options(rf_write=True)
        #: Single-statement reads: on a server, in autocommit (no BEGIN/ROLLBACK round trips).
        self._read = self._engine if self._engine.dialect.name == "sqlite" else make_engine(
            url, autocommit=True, timeouts=timeouts)
        self.url = shown(self._engine.url)
        #: PostgreSQL batches go through unnest() of arrays: one statement per table.
        self._pg = self._engine.dialect.name == "postgresql"
        #: SQLite has one writer at a time anyway: this store writes through one connection
        #: of its own, kept open (no checkout per command), while a thread holds ``_own_lock``;
        #: a thread that finds it busy takes a pooled connection and queues in SQLite as before.
        self._sqlite = self._engine.dialect.name == "sqlite"
        self._own: Connection | None = None
        self._own_lock = threading.Lock()
        self._translator = _Translated(self.url, engine_timeouts.get(self._engine))
        #: Per-store writers by extra type, consulted before :func:`register_extra`'s.
        self.extra_handlers: dict[type, ExtraWriter] = {}
        #: The key event MACs are sealed with (see reviewflow.anchoring); never stored.
        self.audit_key: bytes | None = None
        self._known_campaigns: set[str] = set()
        self._boxes: dict[str, SqlBallotBox] = {}
        #: Rung firings refused once because another writer held their case: (campaign, case,
        #: expected version). The same step again waits for the holder instead.
        self._held: set[tuple[str, str, int]] = set()
        self._marks: list[tuple[str, str, int]] = []
        self._marks_since = 0.0
        self._lock = threading.Lock()
        self._build_statements()
        _STORES.add(self)
        try:
            self._open(create)
        except BaseException:
            self._dispose()
            raise

    # -- opening

    def _open(self, create: bool) -> None:
        for attempt in range(3):
            try:
                with self._engine.connect() as conn:
                    revision = current_revision(conn)
                    tables = has_reviewflow_tables(conn) if revision is None else True
            except sa_exc.DBAPIError as exc:
                raise database_error(exc, self._engine, f"cannot open {self.url}") from None
            if revision == s.HEAD_REVISION:
                return
            if revision is not None:
                self._wrong_revision(revision)
            if tables:
                raise SchemaVersionError(
                    f"{self.url} has reviewflow tables but no schema revision; run "
                    f"`reviewflow db upgrade {self.url}` or start from a fresh database"
                )
            if not create:
                raise SchemaVersionError(
                    f"{self.url} has no reviewflow schema; run `reviewflow db upgrade {self.url}`"
                )
            try:
                with self._write.begin() as conn:
                    if current_revision(conn) is None:
                        create_schema(conn)
                return
            except sa_exc.DBAPIError:
                # Another process created it at the same time: look again.
                if attempt == 2:
                    raise
        return  # pragma: no cover

    def _wrong_revision(self, revision: str) -> None:
        known = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008")
        if revision in known and known.index(revision) < known.index(s.HEAD_REVISION):
            raise SchemaVersionError(
                f"{self.url} has schema revision {revision}, older than this reviewflow's "
                f"{s.HEAD_REVISION}; back it up, then run `reviewflow db upgrade {self.url}`"
            )
        raise SchemaVersionError(
            f"{self.url} has schema revision {revision}, which this reviewflow "
            f"(revision {s.HEAD_REVISION}) does not know: it was written by a newer "
            "reviewflow; upgrade reviewflow"
        )

    def _build_statements(self) -> None:
        # The hot statements go to the driver as written: no per-row parameter processing.
        mark = "?" if self._engine.dialect.name == "sqlite" else "%s"
        self._sql_update, self._sql_events, self._sql_outbox = driver_sql(mark)
        self._mark = mark
        self._sql_delete_outbox = (
            f"DELETE FROM rf_outbox WHERE campaign_id = {mark} AND case_id = {mark} "  # noqa: S608
            f"AND seq = {mark}"
        )
        self._insert_case = sa.insert(s.cases)
        self._insert_idem = sa.insert(s.idempotency)
        if self._sqlite:  # the same INSERT in the driver's SQL, for the single-commit path
            compiled = self._insert_idem.compile(dialect=self._engine.dialect)
            self._sql_idem = str(compiled)
            self._idem_keys = tuple(compiled.positiontup or ())

    # -- public helpers for features that keep their own rows

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for features that read their own tables)."""
        return self._engine

    @property
    def dialect(self) -> str:
        """The database kind: ``sqlite``, ``postgresql`` or ``mysql``."""
        name = self._engine.dialect.name
        return "mysql" if name == "mariadb" else name

    @property
    def server(self) -> bool:
        """True when the database works in a process of its own (PostgreSQL, MySQL), so that
        a batch can commit there while the next one is built here; False for SQLite, whose
        work runs in this process."""
        return self.dialect != "sqlite"

    @property
    def skip_locked(self) -> bool:
        """True when the database has ``FOR UPDATE SKIP LOCKED`` (SQLite has one writer)."""
        if self.dialect == "postgresql":
            return True
        if self.dialect != "mysql":
            return False
        info = self._engine.dialect.server_version_info or ()
        mariadb = bool(getattr(self._engine.dialect, "is_mariadb", False))
        return tuple(info[:2]) >= ((10, 6) if mariadb else (8, 0))

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Open a write transaction (``BEGIN IMMEDIATE`` on SQLite); commit when the block ends."""
        marks = self._take_marks()
        try:
            with self._translated(), self._write.begin() as conn:
                self._delete_marks(conn, marks)
                yield conn
        except BaseException:
            self._restore_marks(marks)
            raise

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """Open a connection for reads (autocommit on a server); database errors as StoreError."""
        with self._translated(), self._read.connect() as conn:
            yield conn

    def _translated(self) -> _Translated:
        """Return a context in which database errors come out as InputError or StoreError."""
        return self._translator

    # -- campaigns

    def setup_campaign(self, campaign_id: str, policy_json: str) -> None:
        """Create the campaign if it is new; keep its policy (JSON)."""
        check_id(campaign_id, "campaign id")
        if campaign_id in self._known_campaigns:
            return
        with self._translated():
            if self.campaign_policy(campaign_id) is None:
                try:
                    with self._write.begin() as conn:
                        conn.execute(
                            sa.insert(s.campaigns), {"id": campaign_id, "policy": policy_json},
                        )
                except sa_exc.IntegrityError:
                    pass  # set up by another process meanwhile
        self._known_campaigns.add(campaign_id)

    def campaign_policy(self, campaign_id: str) -> str | None:
        """Return the policy JSON the campaign was set up with, or None if unknown."""
        with self._translated(), self._read.connect() as conn:
            row = conn.execute(
                sa.select(s.campaigns.c.policy).where(s.campaigns.c.id == campaign_id)
            ).first()
        return None if row is None else str(row[0])

    def campaign_events(self, campaign_id: str) -> list[EventRecord]:
        """Return the campaign's own chain (the policy seal and amendments), oldest first."""
        e = s.campaign_events.c
        with self._translated(), self._read.connect() as conn:
            rows = conn.execute(sa.select(s.campaign_events).where(e.campaign_id == campaign_id)
                                .order_by(e.seq)).all()
        return [EventRecord(campaign_id=row.campaign_id, case_id="", seq=row.seq,
                            event=row.event, actor_id=row.actor_id, role=row.role, at=row.at,
                            from_stage=None, to_stage="", reason=row.reason,
                            data=event_data(row.data), prev_hash=row.prev_hash, hash=row.hash)
                for row in rows]

    def append_campaign_event(self, record: EventRecord, policy_json: str | None = None) -> None:
        """Append ``record`` to the campaign's chain, ConflictError unless it is the next;
        with ``policy_json``, keep it as the campaign's policy in the same transaction."""
        e = s.campaign_events.c
        row = {"campaign_id": record.campaign_id, "seq": record.seq, "event": record.event,
               "actor_id": record.actor_id, "role": record.role, "at": record.at,
               "reason": record.reason, "data": canonical_data(record.data),
               "prev_hash": record.prev_hash, "hash": record.hash}

        def work(conn: Connection) -> None:
            self._require_campaigns(conn, {record.campaign_id})
            last = conn.execute(sa.select(sa.func.max(e.seq))
                                .where(e.campaign_id == record.campaign_id)).scalar()
            if (last or 0) != record.seq - 1:
                raise ConflictError("", record.seq - 1, last)
            conn.execute(sa.insert(s.campaign_events), row)  # the key refuses a second writer
            if policy_json is not None:
                conn.execute(sa.update(s.campaigns).where(s.campaigns.c.id == record.campaign_id)
                             .values(policy=policy_json))

        self._run_write(work)

    def campaigns(self) -> list[str]:
        """Return the ids of the campaigns this store holds."""
        with self._translated(), self._read.connect() as conn:
            return sorted(str(r[0]) for r in conn.execute(sa.select(s.campaigns.c.id)))

    def _require_campaigns(self, conn: Connection, campaign_ids: set[str]) -> None:
        missing = campaign_ids - self._known_campaigns
        if not missing:
            return
        found = {
            str(r[0]) for r in conn.execute(
                sa.select(s.campaigns.c.id).where(s.campaigns.c.id.in_(sorted(missing)))
            )
        }
        self._known_campaigns |= found
        if missing - found:
            raise UnknownCaseError(
                f"no campaign {sorted(missing - found)[0]!r} in this store; "
                "create it first (Campaign(...) does)"
            )

    # -- the deadline index and the ballot box

    def deadline_due(self, campaign_id: str, until_us: int, limit: int | None = None) -> list[str]:
        """Return ids of cases whose next rung fires at or before ``until_us``, earliest first.

        Times are microseconds since 1970-01-01 UTC; the query reads the
        ``(campaign_id, next_fire_us)`` index, so its cost follows the answer.
        """
        return _deadlines.due_cases(self, campaign_id, until_us, limit, overdue=False)

    def deadline_overdue(self, campaign_id: str, at_us: int, limit: int | None = None) -> list[str]:
        """Return ids of cases whose current due time is before ``at_us``, earliest first."""
        return _deadlines.due_cases(self, campaign_id, at_us, limit, overdue=True)

    def ballot_box(self, campaign_id: str) -> SqlBallotBox:
        """Return the campaign's ballot box: tokens, ballots and vote rounds in this database."""
        with self._lock:
            box = self._boxes.get(campaign_id)
            if box is None:
                box = self._boxes[campaign_id] = SqlBallotBox(self, campaign_id)
            return box

    def delivery_log(self, campaign_id: str) -> SqlDeliveryLog:
        """Return the campaign's failed deliveries to the hooks (``rf_delivery_log``)."""
        return SqlDeliveryLog(self, campaign_id)

    # -- anchors and MACs

    def save_anchor(self, campaign_id: str, digest: str, at: str, text: str) -> None:
        """Keep an anchor's text in ``rf_anchors`` (once per digest)."""
        _anchors.save_anchor(self, campaign_id, digest, at, text)

    def stored_anchors(self, campaign_id: str) -> list[str]:
        """Return the texts of the campaign's kept anchors, oldest first."""
        return _anchors.stored_anchors(self, campaign_id)

    def stored_macs(self, campaign_id: str, case_ids: Sequence[str]
                    ) -> dict[tuple[str, int], str]:
        """Return the stored MACs of these cases' events (``rf_event_macs``)."""
        return _anchors.event_macs(self, campaign_id, case_ids)

    # -- rows

    @staticmethod
    def _state(case: Case) -> str:
        """Return the case's state document: what its own columns do not hold."""
        doc = {k: v for k, v in case.to_json().items() if k not in _COLUMN_KEYS}
        doc["format"] = s.FORMAT
        return dumps(doc, f"case {case.case_id!r}")

    def _case_row(self, case: Case) -> dict[str, Any]:
        """Return the case's row (its columns and state document) as a dict."""
        return {
            "campaign_id": case.campaign_id, "case_id": case.case_id, "stage": case.stage.value,
            "version": case.version, "last_hash": case.last_hash,
            "previous_case_id": case.previous_case_id, "state": self._state(case),
        }

    @staticmethod
    def _event_row(r: EventRecord) -> tuple[Any, ...]:
        return (
            r.campaign_id, r.case_id, r.seq, r.event, r.actor_id, r.role, r.at, r.from_stage,
            r.to_stage, r.reason, _data_text(r), r.prev_hash, r.hash,
        )

    def _case_from_tuple(self, row: Any) -> Case:
        """Build a case from a row of :data:`_CASE_COLUMNS`, read by position."""
        campaign_id, case_id, stage, version, last_hash, previous, state = row
        doc = json.loads(state)
        fmt = doc.pop("format", 1)
        if not isinstance(fmt, int) or fmt > s.FORMAT:
            raise SchemaVersionError(
                f"case {case_id!r} was written in format {fmt} by a newer reviewflow; "
                "upgrade reviewflow"
            )
        doc.update(campaign_id=campaign_id, case_id=case_id, stage=stage, version=version,
                   last_hash=last_hash, previous_case_id=previous)
        return Case.from_json(doc, source=self)

    def _case_from_row(self, row: Any) -> Case:
        """Build a case from a row of the cases table, read by column name."""
        return self._case_from_tuple((row.campaign_id, row.case_id, row.stage, row.version,
                                      row.last_hash, row.previous_case_id, row.state))

    @staticmethod
    def _record_from_row(row: Any) -> EventRecord:
        return EventRecord(
            campaign_id=row.campaign_id, case_id=row.case_id, seq=row.seq, event=row.event,
            actor_id=row.actor_id, role=row.role, at=row.at, from_stage=row.from_stage,
            to_stage=row.to_stage, reason=row.reason, data=event_data(row.data),
            prev_hash=row.prev_hash, hash=row.hash,
        )

    def _rows(self, c: Commit) -> CommitRows:
        case = c.case
        update = (
            case.stage.value, case.version, case.last_hash, case.previous_case_id,
            self._state(case), case.campaign_id, case.case_id, c.expected_version,
        )
        event_row = self._event_row
        events = [event_row(r) for r in c.events]
        outbox = [] if not getattr(c, "outbox", True) else [
            (r.campaign_id, r.case_id, r.seq) for r in c.events
        ]
        idem = None
        if c.idempotency_key is not None:
            idem = {
                "campaign_id": case.campaign_id, "key": c.idempotency_key,
                "fingerprint": c.fingerprint or "", "case_id": case.case_id,
                "version": case.version,
            }
        return CommitRows(update, events, outbox, idem)

    def _write_extras(self, conn: Connection, commits: Sequence[Commit]) -> None:
        """Write the commits' extra rows, grouped by type (in one call per type if batched)."""
        groups: dict[type, list[Any]] = {}
        for c in commits:
            for extra in c.extras:
                groups.setdefault(type(extra), []).append(extra)
        for kind, rows in groups.items():
            own = self.extra_handlers.get(kind)
            batch = None if own is not None else _EXTRA_BATCHES.get(kind)
            if batch is not None:
                batch(self, conn, rows)
                continue
            writer = own or _EXTRA_WRITERS.get(kind)
            if writer is None:
                raise StoreError(
                    f"no SQL writer is registered for {kind.__qualname__} rows; "
                    "the feature that makes them must call "
                    "reviewflow.store.sql.register_extra() (nothing was written)"
                )
            for extra in rows:
                writer(self, conn, extra)

    # -- writes

    def _run_write(self, work: Callable[[Connection], Any]) -> Any:
        """Run ``work`` in one write transaction, again if the database broke a deadlock."""
        for attempt in range(_DEADLOCK_RETRIES + 1):
            marks = self._take_marks()
            try:
                with self._translated():
                    try:
                        if self._sqlite and self._own_lock.acquire(blocking=False):
                            try:
                                return self._write_on_own(work, marks)
                            finally:
                                self._own_lock.release()
                        with self._write.begin() as conn:
                            self._delete_marks(conn, marks)
                            return work(conn)
                    except sa_exc.DBAPIError as exc:
                        if retryable(exc) and attempt < _DEADLOCK_RETRIES:
                            raise _Retry from None
                        raise
            except _Retry:
                self._restore_marks(marks)
                time.sleep(0.005 * (attempt + 1))
            except BaseException:
                self._restore_marks(marks)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _write_on_own(self, work: Callable[[Connection], Any],
                      marks: list[tuple[str, str, int]]) -> Any:
        """Run ``work`` in a write transaction on the store's own SQLite connection.

        The caller holds ``_own_lock``. The connection stays open between commands; one
        left unusable (its rollback failed) is dropped, and the next command opens another.
        """
        conn = self._own
        if conn is None:
            conn = self._own = self._write.connect()
        raw: Any = conn.connection.dbapi_connection
        if raw.in_transaction or conn.in_transaction():  # an interrupted command's: drop it
            self._own = None
            conn.invalidate()
            conn = self._own = self._write.connect()
            raw = conn.connection.dbapi_connection
        # BEGIN and COMMIT go straight to the driver. Work that runs statements through
        # SQLAlchemy makes it join this transaction (see _engine's begin hook); then
        # SQLAlchemy commits or rolls back, so that its own state stays right.
        try:
            self._driver(conn, "BEGIN IMMEDIATE", ())
            self._delete_marks(conn, marks)
            result = work(conn)
            if conn.in_transaction():
                conn.commit()
            else:
                self._driver_commit(raw)
        except BaseException:
            try:
                if conn.in_transaction():
                    conn.rollback()
                elif raw.in_transaction:
                    raw.rollback()
            except BaseException:
                self._own = None  # unusable: the next command opens another
                with suppress(Exception):
                    conn.invalidate()
            raise
        return result

    @staticmethod
    def _driver_commit(raw: Any) -> None:
        try:
            raw.commit()
        except sqlite3.Error as exc:
            raise sa_exc.DBAPIError.instance("COMMIT", (), exc, sqlite3.Error) from exc

    def _driver(self, conn: Connection, sql: str, params: Any, *, many: bool = False) -> int:
        """Run one statement straight on SQLite's driver; return its rowcount.

        The hot statements of a single commit skip SQLAlchemy's execution machinery (it
        costs more than the statement); errors come out as SQLAlchemy would raise them.
        """
        raw: Any = conn.connection.dbapi_connection
        cur = raw.cursor()
        try:
            if not many:
                cur.execute(sql, params)
            elif len(params) == 1:
                cur.execute(sql, params[0])
            else:
                cur.executemany(sql, params)
            return int(cur.rowcount)
        except sqlite3.Error as exc:
            raise sa_exc.DBAPIError.instance(sql, params, exc, sqlite3.Error,
                                             ismulti=many) from exc
        finally:
            cur.close()

    def insert_cases(self, commits: Sequence[Commit]) -> None:
        """Write new cases with their opening events, all or none, in batched statements."""
        if not commits:
            return
        if self.audit_key is not None:
            commits = with_macs(commits, self.audit_key)
        seen: set[tuple[str, str]] = set()
        for c in commits:
            check_id(c.case.campaign_id, "campaign id")
            check_id(c.case.case_id, "case id")
            key = (c.case.campaign_id, c.case.case_id)
            if key in seen:
                raise self._duplicate(*key)
            seen.add(key)
        rows = [self._rows(c) for c in commits]

        def work(conn: Connection) -> None:
            self._require_campaigns(conn, {c.case.campaign_id for c in commits})
            sp = conn.begin_nested()
            try:
                conn.execute(self._insert_case, [r.case for r in rows])
            except sa_exc.IntegrityError:
                sp.rollback()
                raise self._find_duplicate(conn, commits) from None
            sp.commit()
            self._insert_rest(conn, rows)
            self._write_extras(conn, commits)

        self._run_write(work)

    def _duplicate(self, campaign_id: str, case_id: str) -> DuplicateCaseError:
        return DuplicateCaseError(
            f"case {case_id!r} is already open in campaign {campaign_id!r}; "
            "use another id or fire events on the open case"
        )

    def _find_duplicate(self, conn: Connection, commits: Sequence[Commit]) -> ReviewflowError:
        wanted: dict[str, list[str]] = {}
        for c in commits:
            wanted.setdefault(c.case.campaign_id, []).append(c.case.case_id)
        existing: set[tuple[str, str]] = set()
        for campaign_id, ids in wanted.items():
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                existing |= {
                    (campaign_id, str(r[0])) for r in conn.execute(
                        sa.select(s.cases.c.case_id)
                        .where(s.cases.c.campaign_id == campaign_id)
                        .where(s.cases.c.case_id.in_(chunk))
                    )
                }
        for c in commits:
            if (c.case.campaign_id, c.case.case_id) in existing:
                return self._duplicate(c.case.campaign_id, c.case.case_id)
        return StoreError("a case could not be inserted: the database refused it (a duplicate?)")

    def _insert_rest(self, conn: Connection, rows: Sequence[CommitRows]) -> None:
        events = [e for r in rows for e in r.events]
        if events:
            conn.exec_driver_sql(self._sql_events, events)
        outbox = [o for r in rows for o in r.outbox]
        if outbox:
            conn.exec_driver_sql(self._sql_outbox, outbox)
        idem = [r.idem for r in rows if r.idem is not None]
        if idem:
            conn.execute(self._insert_idem, idem)

    def commit(self, commits: Sequence[Commit]) -> list[Exception | None]:
        """Apply each commit atomically; return, per commit, None or the error that stopped it.

        The whole batch is one transaction. It is first written with one statement per
        table; if any commit in it fails, that is undone and each commit is written in
        its own savepoint, so that the failing ones change nothing and the others apply.
        """
        if not commits:
            return []
        if self.audit_key is not None:
            commits = with_macs(commits, self.audit_key)
        results: list[Exception | None] = [None] * len(commits)
        todo: list[tuple[int, Commit, CommitRows]] = []
        for i, c in enumerate(commits):
            try:
                todo.append((i, c, self._rows(c)))
            except ReviewflowError as exc:
                results[i] = exc
        if not todo:
            return results
        if not any(_fires_rungs(c) for _, c, _ in todo):
            self._commit_todo(todo, results, claim=None)
            return results
        # Rung firings claim their cases. Those another writer holds are skipped and
        # refused with a ConflictError the first time (the sweep goes on with the other
        # cases and retries them later); a retry of the same step waits for the holder.
        later = self._commit_todo(todo, results, claim="skip" if self.skip_locked else "wait")
        if not later:
            return results
        wait: list[_Todo] = []
        with self._lock:
            if len(self._held) > 100_000:
                self._held.clear()
            for item in later:
                i, c, _ = item
                key = (c.case.campaign_id, c.case.case_id, c.expected_version)
                if key in self._held:
                    self._held.discard(key)
                    wait.append(item)
                else:
                    self._held.add(key)
                    results[i] = _held_by_another(c)
        if wait:
            self._commit_todo(wait, results, claim="wait")
        return results

    def _commit_todo(self, todo: Sequence[_Todo], results: list[Exception | None],
                     claim: str | None) -> list[_Todo]:
        """Write ``todo`` in one transaction, setting ``results``; return the commits deferred.

        ``claim`` (for rung firings): "skip" locks their case rows with SKIP LOCKED and
        defers those another writer holds; "wait" locks them, waiting (in case-id order,
        so two sweepers cannot deadlock). Either way a stale version is refused before
        anything is written.
        """
        outcome: dict[int, Exception | None] = {}
        deferred: list[_Todo] = []

        def work(conn: Connection) -> None:
            outcome.clear()
            deferred.clear()
            ready: Sequence[_Todo] = todo
            if claim is not None:
                ready, refused, later = self._claim(conn, todo, skip=claim == "skip")
                outcome.update(refused)
                deferred.extend(later)
            if not ready:
                return
            if len(ready) == 1:
                i, c, rows = ready[0]
                try:
                    self._apply_one(conn, c, rows)
                except (sa_exc.IntegrityError, sa_exc.DataError) as exc:
                    raise _CommitFailed(None, exc, i) from None
                except ReviewflowError as exc:
                    raise _CommitFailed(exc, None, i) from None
                outcome[i] = None
                return
            if self._apply_bulk(conn, ready):
                outcome.update((i, None) for i, _, _ in ready)
                return
            for i, c, rows in ready:
                sp = conn.begin_nested()
                try:
                    self._apply_one(conn, c, rows)
                except sa_exc.OperationalError:
                    raise
                except Exception as exc:
                    sp.rollback()
                    outcome[i] = self._explain(conn, c, exc)
                else:
                    sp.commit()
                    outcome[i] = None

        try:
            self._run_write(work)
        except _CommitFailed as failed:  # one commit failed: the transaction rolled back
            commit = next(c for i, c, _ in todo if i == failed.index)
            error: Exception | None = failed.error
            if failed.db_error is not None:  # the transaction is gone: explain afresh
                with self._translated(), self._engine.connect() as conn:
                    error = self._explain(conn, commit, failed.db_error)
            outcome[failed.index] = error
        for i, error in outcome.items():
            results[i] = error
        return list(deferred)

    def _claim(self, conn: Connection, todo: Sequence[_Todo], *, skip: bool
               ) -> tuple[list[_Todo], dict[int, Exception], list[_Todo]]:
        """Lock the case rows of the rung firings in ``todo``; sort them into ready, refused
        (stale or unknown) and deferred (held by another writer, with ``skip``)."""
        wanted: dict[str, set[str]] = {}
        for _, c, _ in todo:
            if _fires_rungs(c):
                wanted.setdefault(c.case.campaign_id, set()).add(c.case.case_id)
        versions: dict[tuple[str, str], int] = {}
        locking = self.dialect != "sqlite"  # SQLite: this transaction holds the write lock
        lock = (" FOR UPDATE SKIP LOCKED" if skip else " FOR UPDATE") if locking else ""
        mark = self._mark
        for campaign_id, ids in wanted.items():
            ordered = sorted(ids)
            for start in range(0, len(ordered), 500):
                chunk = ordered[start:start + 500]
                params: tuple[Any, ...]
                if self._pg:
                    where, params = "= ANY(%s)", (campaign_id, chunk)
                else:
                    where = f"IN ({', '.join([mark] * len(chunk))})"
                    params = (campaign_id, *chunk)
                rows = conn.exec_driver_sql(
                    f"SELECT case_id, version FROM rf_cases WHERE campaign_id = {mark} "  # noqa: S608
                    f"AND case_id {where} ORDER BY case_id{lock}", params,
                )
                for case_id, version in rows:
                    versions[(campaign_id, str(case_id))] = int(version)
        ready: list[_Todo] = []
        refused: dict[int, Exception] = {}
        later: list[_Todo] = []
        for item in todo:
            i, c, _ = item
            if not _fires_rungs(c):
                ready.append(item)
                continue
            key = (c.case.campaign_id, c.case.case_id)
            version = versions.get(key)
            if version is None:
                if skip and locking:
                    later.append(item)
                else:
                    refused[i] = UnknownCaseError(
                        f"no case {c.case.case_id!r} in campaign {c.case.campaign_id!r}")
            elif version != c.expected_version:
                refused[i] = ConflictError(c.case.case_id, c.expected_version, version)
            else:
                versions[key] = c.case.version
                ready.append(item)
        return ready, refused, later

    def _apply_bulk(self, conn: Connection, todo: Sequence[tuple[int, Commit, CommitRows]]) -> bool:
        """Write a whole batch with one statement per table; False (nothing written) on a failure."""
        if not self._engine.dialect.supports_sane_multi_rowcount:
            return False
        sp = conn.begin_nested()
        try:
            all_rows = [rows for _, _, rows in todo]
            if self._pg:
                updated = pg_update(conn, all_rows)
            else:
                updated = conn.exec_driver_sql(
                    self._sql_update, [r.update for r in all_rows]
                ).rowcount
            if updated != len(todo):
                sp.rollback()
                return False
            if self._pg:
                pg_insert_rest(conn, all_rows)
                idem = [r.idem for r in all_rows if r.idem is not None]
                if idem:
                    conn.execute(self._insert_idem, idem)
            else:
                self._insert_rest(conn, all_rows)
            self._write_extras(conn, [c for _, c, _ in todo])
        except sa_exc.OperationalError:
            raise
        except Exception:
            sp.rollback()
            return False
        sp.commit()
        return True

    def _apply_one(self, conn: Connection, c: Commit, rows: CommitRows) -> None:
        if self._sqlite:
            if self._driver(conn, self._sql_update, rows.update) != 1:
                raise self._stale(conn, c)
            if rows.events:
                self._driver(conn, self._sql_events, rows.events, many=True)
            if rows.outbox:
                self._driver(conn, self._sql_outbox, rows.outbox, many=True)
            if rows.idem is not None:
                idem = rows.idem
                self._driver(conn, self._sql_idem, tuple(idem[k] for k in self._idem_keys))
            if c.extras:
                self._write_extras(conn, [c])
            return
        result = conn.exec_driver_sql(self._sql_update, rows.update)
        if result.rowcount != 1:
            raise self._stale(conn, c)
        if self._pg:
            pg_insert_rest(conn, [rows])
        else:
            if rows.events:
                conn.exec_driver_sql(self._sql_events, rows.events)
            if rows.outbox:
                conn.exec_driver_sql(self._sql_outbox, rows.outbox)
        if rows.idem is not None:
            conn.execute(self._insert_idem, rows.idem)
        if c.extras:
            self._write_extras(conn, [c])

    def _stale(self, conn: Connection, c: Commit) -> ReviewflowError:
        row = conn.execute(
            sa.select(s.cases.c.version)
            .where(s.cases.c.campaign_id == c.case.campaign_id)
            .where(s.cases.c.case_id == c.case.case_id)
        ).first()
        if row is None:
            return UnknownCaseError(
                f"no case {c.case.case_id!r} in campaign {c.case.campaign_id!r}"
            )
        return ConflictError(c.case.case_id, c.expected_version, int(row[0]))

    def _idem_error(self, conn: Connection, c: Commit) -> ReviewflowError | None:
        i = s.idempotency.c
        row = conn.execute(
            sa.select(i.fingerprint, i.case_id, i.version)
            .where(i.campaign_id == c.case.campaign_id)
            .where(i.key == c.idempotency_key)
        ).first()
        if row is None:
            return None
        if row.fingerprint == (c.fingerprint or "") and row.case_id == c.case.case_id:
            # The same command won a race: the caller reloads and finds its replay.
            return ConflictError(c.case.case_id, c.expected_version, int(row.version))
        return IdempotencyKeyReused(
            f"idempotency key {c.idempotency_key!r} was first used for another command "
            f"(case {row.case_id!r}); use a new key for a new command"
        )

    def _explain(self, conn: Connection, c: Commit, exc: Exception) -> Exception:
        """Turn what stopped one commit into the error the caller gets (on a usable connection)."""
        if isinstance(exc, ReviewflowError):
            return exc
        if isinstance(exc, sa_exc.DataError):
            return InputError(f"case {c.case.case_id!r}: the database refused a value: {exc.orig}")
        if isinstance(exc, sa_exc.IntegrityError):
            if c.idempotency_key is not None:
                idem = self._idem_error(conn, c)
                if idem is not None:
                    return idem
            stale = self._stale(conn, c)
            if not isinstance(stale, ConflictError) or stale.actual != c.expected_version:
                return stale
            return StoreError(
                f"case {c.case.case_id!r}: the database refused the write: {exc.orig}"
            )
        return exc

    # -- reads

    def get(self, campaign_id: str, case_id: str) -> Case | None:
        """Return a detached snapshot of the case (bound to this store for history)."""
        if not isinstance(case_id, str):  # no such case (ids are text), as in memory
            return None
        mark = self._mark
        with self._translated(), self._read.connect() as conn:
            row = conn.exec_driver_sql(
                f"SELECT {_CASE_COLUMNS} FROM rf_cases WHERE campaign_id = {mark} "  # noqa: S608
                f"AND case_id = {mark}", (campaign_id, case_id),
            ).first()
        return None if row is None else self._case_from_tuple(row)

    def get_many(self, campaign_id: str, case_ids: Sequence[str]) -> dict[str, Case]:
        """Return snapshots of many cases by id (missing ids are left out), in few queries."""
        out: dict[str, Case] = {}
        wanted = [i for i in dict.fromkeys(case_ids) if isinstance(i, str)]  # ids are text
        mark = self._mark
        # The driver's own SQL (no statement to compile per chunk) and rows read by
        # position: a sweep loads thousands of cases this way.
        head = (f"SELECT {_CASE_COLUMNS} FROM rf_cases WHERE campaign_id = {mark} "  # noqa: S608
                "AND case_id ")
        with self._translated(), self._read.connect() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                params: tuple[Any, ...]
                if self._pg:
                    sql, params = head + "= ANY(%s)", (campaign_id, chunk)
                else:
                    sql = head + f"IN ({', '.join([mark] * len(chunk))})"
                    params = (campaign_id, *chunk)
                for row in conn.exec_driver_sql(sql, params).fetchall():
                    case = self._case_from_tuple(row)
                    out[case.case_id] = case
        return out

    def cases(self, campaign_id: str, stage: str | None = None) -> list[Case]:
        """Return snapshots of the campaign's cases (in one stage, if given), by case id."""
        query = sa.select(s.cases).where(s.cases.c.campaign_id == campaign_id)
        if stage is not None:
            query = query.where(s.cases.c.stage == str(stage))
        with self._translated(), self._read.connect() as conn:
            out = [self._case_from_row(row) for row in conn.execute(query)]
        # Sorted here: database collations order text differently from Python.
        out.sort(key=lambda case: case.case_id)
        return out

    def history(self, campaign_id: str, case_id: str) -> list[EventRecord]:
        """Return the case's event records in order."""
        e = s.events.c
        with self._translated(), self._read.connect() as conn:
            rows = conn.execute(
                sa.select(s.events)
                .where(e.campaign_id == campaign_id)
                .where(e.case_id == case_id)
                .order_by(e.seq)
            )
            return [self._record_from_row(row) for row in rows]

    def iter_histories(self, campaign_id: str) -> Iterator[StoredChain]:
        """Yield every case of the campaign with its events in order (for ``verify``).

        One streamed query over the whole campaign, instead of one per case.
        """
        c, e = s.cases.c, s.events.c
        query = (
            sa.select(
                c.case_id.label("k_case"), c.version.label("k_version"),
                c.last_hash.label("k_last_hash"), c.stage.label("k_stage"),
                c.previous_case_id.label("k_previous"), c.state.label("k_state"),
                *s.events.c,
            )
            .select_from(s.cases.outerjoin(
                s.events, sa.and_(e.campaign_id == c.campaign_id, e.case_id == c.case_id),
            ))
            .where(c.campaign_id == campaign_id)
            .order_by(c.case_id, e.seq)
        )
        with self._translated(), self._engine.connect() as conn:
            current: StoredChain | None = None
            for row in conn.execution_options(yield_per=2000).execute(query):
                if current is None or current.case_id != row.k_case:
                    if current is not None:
                        yield current
                    try:
                        stored: Case | None = self._case_from_tuple((
                            campaign_id, row.k_case, row.k_stage, row.k_version,
                            row.k_last_hash, row.k_previous, row.k_state))
                    except Exception:  # an unreadable row: verify reports it
                        stored = None
                    current = StoredChain(row.k_case, row.k_version, row.k_last_hash, [],
                                          stored)
                if row.seq is not None:  # by position: the events' columns, in order
                    t = tuple(row)
                    current.records.append(_new_record(EventRecord, (
                        *t[6:16], event_data(t[16]), t[17], t[18])))
            if current is not None:
                yield current

    def find_idempotent(self, campaign_id: str, key: str) -> tuple[str, str, int] | None:
        """Return ``(fingerprint, case_id, version)`` stored for an idempotency key, if any."""
        i = s.idempotency.c
        with self._translated(), self._read.connect() as conn:
            row = conn.execute(
                sa.select(i.fingerprint, i.case_id, i.version)
                .where(i.campaign_id == campaign_id)
                .where(i.key == key)
            ).first()
        return None if row is None else (str(row[0]), str(row[1]), int(row[2]))

    # -- refusals

    def record_refusals(self, refusals: Sequence[Refusal]) -> None:
        """Append refused commands to the refusal journal."""
        if not refusals:
            return
        rows = [{
            "campaign_id": r.campaign_id, "case_id": r.case_id, "event": r.event,
            "actor_id": r.actor_id, "roles": dumps(list(r.roles), "refusal roles"),
            "at": r.at, "stage": r.stage, "reason": r.reason, "message": r.message,
        } for r in refusals]

        def work(conn: Connection) -> None:
            self._require_campaigns(conn, {r.campaign_id for r in refusals})
            conn.execute(sa.insert(s.refusals), rows)

        self._run_write(work)

    def refusals(self, campaign_id: str, case_id: str | None = None) -> list[Refusal]:
        """Return the refusal journal, oldest first."""
        r = s.refusals.c
        query = sa.select(s.refusals).where(r.campaign_id == campaign_id).order_by(r.id)
        if case_id is not None:
            query = query.where(r.case_id == case_id)
        with self._translated(), self._read.connect() as conn:
            return [
                Refusal(
                    campaign_id=row.campaign_id, case_id=row.case_id, event=row.event,
                    actor_id=row.actor_id, roles=tuple(json.loads(row.roles)), at=row.at,
                    stage=row.stage, reason=row.reason, message=row.message,
                )
                for row in conn.execute(query)
            ]

    # -- the outbox

    def pending_outbox(self, campaign_id: str, limit: int = 1000) -> list[EventRecord]:
        """Return committed events not yet marked dispatched, oldest first."""
        if self._marks:
            self.flush()
        o, e = s.outbox.c, s.events.c
        query = (
            sa.select(s.events)
            .select_from(s.outbox.join(s.events, sa.and_(
                e.campaign_id == o.campaign_id, e.case_id == o.case_id, e.seq == o.seq,
            )))
            .where(o.campaign_id == campaign_id)
            .order_by(o.id)
            .limit(limit)
        )
        with self._translated(), self._read.connect() as conn:
            return [self._record_from_row(row) for row in conn.execute(query)]

    def mark_dispatched(self, campaign_id: str, event_ids: Sequence[str]) -> None:
        """Mark events as told to the hooks.

        The marks are written with this store's next write (or after a second, or
        10,000 marks, or at :meth:`flush` / :meth:`close`), not in a transaction of
        their own: a crash before then only means those events are delivered again,
        which at-least-once delivery allows.
        """
        prefix = f"{campaign_id}/"
        marks = []
        for event_id in event_ids:
            if not event_id.startswith(prefix):
                raise InputError(f"event id {event_id!r} is not of campaign {campaign_id!r}")
            case_id, _, seq = event_id[len(prefix):].rpartition("/")
            if not case_id or not seq.isdigit():
                raise InputError(f"malformed event id {event_id!r}: expected CAMPAIGN/CASE/SEQ")
            marks.append((campaign_id, case_id, int(seq)))
        with self._lock:
            if not self._marks:
                self._marks_since = time.monotonic()
            self._marks.extend(marks)
            due = (len(self._marks) >= _MARK_BATCH
                   or time.monotonic() - self._marks_since >= _MARK_DELAY_S)
        if due:
            self.flush()

    def _take_marks(self) -> list[tuple[str, str, int]]:
        if not self._marks:
            return []
        with self._lock:
            marks, self._marks = self._marks, []
        return marks

    def _restore_marks(self, marks: list[tuple[str, str, int]]) -> None:
        if marks:
            with self._lock:
                self._marks[:0] = marks

    def _delete_marks(self, conn: Connection, marks: list[tuple[str, str, int]]) -> None:
        if not marks:
            return
        if self._pg:  # one statement for the whole list
            conn.exec_driver_sql(_PG_DELETE_OUTBOX, tuple(
                list(column) for column in zip(*marks, strict=True)))
            return
        if self._sqlite:
            self._driver(conn, self._sql_delete_outbox, marks, many=True)
            return
        conn.exec_driver_sql(self._sql_delete_outbox, marks)

    def flush(self) -> None:
        """Write the dispatch marks kept in memory now."""
        if self._marks:
            self._run_write(lambda conn: None)

    def close(self) -> None:
        """Write pending dispatch marks, then release connections and files."""
        try:
            self.flush()
        finally:
            self._dispose()

    def _dispose(self) -> None:
        with self._own_lock:  # after a write in progress on it
            own, self._own = self._own, None
            if own is not None:
                own.close()
        self._engine.dispose()
        if self._read is not self._engine:
            self._read.dispose()

    def _after_fork(self) -> None:
        """In a forked child: leave the parent's connections alone and open new ones."""
        if self._own is not None:
            _INHERITED.append(self._own)  # never used, closed or collected here
            self._own = None
        self._own_lock = threading.Lock()
        self._lock = threading.Lock()
        self._engine.dispose(close=False)
        if self._read is not self._engine:
            self._read.dispose(close=False)

    def __repr__(self) -> str:
        return f"SqlStore({self.url!r})"


def _data_text(r: EventRecord) -> str:
    """Return the stored text of a record's data: its canonical JSON, the text its hash
    covers (the same as :func:`dumps` writes; remembered from sealing where it can be)."""
    try:
        return canonical_data(r.data)
    except (TypeError, ValueError, RecursionError):
        return dumps(dict(r.data), f"event {r.event_id!r} data")  # raises the InputError


#: The columns of a case row, in the order :meth:`SqlStore._case_from_tuple` reads them.
_CASE_COLUMNS = "campaign_id, case_id, stage, version, last_hash, previous_case_id, state"


class _Translated:
    """Database errors as InputError or StoreError (stateless: one per store, any thread)."""

    __slots__ = ("timeouts", "url")

    def __init__(self, url: str, timeouts: Timeouts | None) -> None:
        self.url = url
        self.timeouts = timeouts

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: Any) -> None:
        if not isinstance(exc, sa_exc.DBAPIError):
            return
        if isinstance(exc, sa_exc.DataError):
            raise InputError(f"the database refused a value: {exc.orig}") from None
        if isinstance(exc, sa_exc.IntegrityError):
            raise StoreError(f"the database refused a write: {exc.orig}") from None
        late = timeout_error(exc, self.url, self.timeouts, after=NOT_APPLIED)
        if late is not None:
            raise late from None
        raise StoreError(
            f"database error on {self.url}: {exc.orig}; the command was not applied "
            "if this happened before commit (reload and check, or replay it with the "
            "same idempotency key)"
        ) from None


class _Retry(Exception):
    """Internal: the database broke a deadlock by aborting this transaction; run it again."""


class _CommitFailed(Exception):
    """Internal: carries a per-commit failure out of a transaction that must roll back."""

    def __init__(self, error: ReviewflowError | None, db_error: sa_exc.DBAPIError | None,
                 index: int) -> None:
        super().__init__(str(error or db_error))
        self.error = error
        self.db_error = db_error
        self.index = index


_PG_DELETE_OUTBOX = (
    "DELETE FROM rf_outbox AS o USING unnest(%s::text[], %s::text[], %s::int[]) AS v(c, k, n) "
    "WHERE o.campaign_id = v.c AND o.case_id = v.k AND o.seq = v.n"
)

#: One commit of a batch: its position in the batch, the commit and its rows.
_Todo = tuple[int, Commit, CommitRows]

#: Open stores, for the fork hook: a forked child must not use its parent's connections.
_STORES: weakref.WeakSet[SqlStore] = weakref.WeakSet()
#: The parent's connections a forked child inherited, kept so that nothing touches them.
_INHERITED: list[Connection] = []


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

register_extra(RungSchedule, _deadlines.write_schedule, batch=_deadlines.write_schedules)
register_extra(RungMark, _deadlines.write_mark, batch=_deadlines.write_marks)
register_extra(TokenRows, _ballots.write_token_row, batch=_ballots.write_token_rows)
register_extra(RoundFrozen, _ballots.write_frozen_one, batch=_ballots.write_frozen)
register_extra(EventMacs, _anchors.write_macs_one, batch=_anchors.write_macs)
