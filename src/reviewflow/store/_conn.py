"""The SQL store's connections: write transactions (retried when the database breaks a
deadlock), SQLite's own write connection, the driver fast path and the translation of
database errors into reviewflow's errors.

:class:`SqlConnections` is the base of :class:`~reviewflow.store.sql.SqlStore`: the parts
of the SQL store (ballot box, delivery log, deadline index, anchors) are written against it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from reviewflow.exceptions import (
    InputError,
    StoreError,
)
from reviewflow.store._engine import retryable
from reviewflow.store._timeouts import NOT_APPLIED, Timeouts, timeout_error

#: Retries of a whole transaction the database aborted to break a deadlock.
_DEADLOCK_RETRIES = 5


class SqlConnections:
    """Connections and transactions of a SQL store (the base of ``SqlStore``)."""

    #: The engine; its transactions take the write lock at BEGIN on SQLite (``_write``);
    #: single-statement reads, in autocommit on a server (``_read``).
    _engine: Engine
    _write: Engine
    _read: Engine
    #: The URL as shown (no password).
    url: str
    _pg: bool
    _sqlite: bool
    #: SQLite: the store's own write connection, used while a thread holds ``_own_lock``.
    _own: Connection | None
    _own_lock: threading.Lock
    _translator: _Translated
    #: The key event MACs are sealed with (see reviewflow.anchoring); never stored.
    audit_key: bytes | None
    _known_campaigns: set[str]
    #: Dispatch marks kept for the next write, and since when.
    _marks: list[tuple[str, str, int]]
    _marks_since: float
    _lock: threading.Lock
    #: The driver's parameter mark and the hot statements in the driver's own SQL.
    _mark: str
    _sql_update: str
    _sql_events: str
    _sql_outbox: str
    _sql_delete_outbox: str
    _insert_case: sa.Insert
    _insert_idem: sa.Insert
    _sql_idem: str
    _idem_keys: tuple[str, ...]

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


_PG_DELETE_OUTBOX = (
    "DELETE FROM rf_outbox AS o USING unnest(%s::text[], %s::text[], %s::int[]) AS v(c, k, n) "
    "WHERE o.campaign_id = v.c AND o.case_id = v.k AND o.seq = v.n"
)
