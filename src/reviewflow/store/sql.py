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

Where the code lives: :class:`SqlStore` here (opening, the schema check, the parts, closing)
is built of one class per job: :mod:`~reviewflow.store._conn` (transactions, SQLite's own
connection, database errors), :mod:`~reviewflow.store._campaigns` (campaigns and their
chain), :mod:`~reviewflow.store._reads`, :mod:`~reviewflow.store._commit` (the commit
path), :mod:`~reviewflow.store._conflicts` (why a commit is refused; rung claims),
:mod:`~reviewflow.store._outbox`, :mod:`~reviewflow.store._journal` (the refusal journal)
and :mod:`~reviewflow.store._extras` (the writers of extra rows).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection

from reviewflow.exceptions import SchemaVersionError
from reviewflow.store import _anchors, _deadlines
from reviewflow.store import _schema as s
from reviewflow.store._ballots import SqlBallotBox
from reviewflow.store._commit import SqlCommits
from reviewflow.store._conn import _Translated
from reviewflow.store._delivery import SqlDeliveryLog
from reviewflow.store._engine import (
    DEFAULT_URL,
    create_schema,
    current_revision,
    database_error,
    engine_timeouts,
    has_reviewflow_tables,
    make_engine,
    schema_revision,
    shown,
    upgrade,
)
from reviewflow.store._extras import ExtraBatchWriter, ExtraWriter, register_extra
from reviewflow.store._journal import SqlJournal
from reviewflow.store._outbox import SqlOutbox
from reviewflow.store._rows import driver_sql
from reviewflow.store._timeouts import Timeouts
from reviewflow.store.rows import StoredChain

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


class SqlStore(SqlCommits, SqlOutbox, SqlJournal):
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


#: Open stores, for the fork hook: a forked child must not use its parent's connections.
_STORES: weakref.WeakSet[SqlStore] = weakref.WeakSet()


#: The parent's connections a forked child inherited, kept so that nothing touches them.
_INHERITED: list[Connection] = []


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
