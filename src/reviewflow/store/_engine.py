"""Engines and schema for the SQL store: URLs, SQLite settings, revisions and upgrades."""

from __future__ import annotations

import sqlite3
import weakref
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url

from reviewflow.exceptions import InputError, SchemaVersionError, StoreError
from reviewflow.store import _schema as s
from reviewflow.store import _timeouts
from reviewflow.store._collation import use_nopad
from reviewflow.store._timeouts import Timeouts

__all__ = [
    "DEFAULT_URL",
    "Timeouts",
    "create_schema",
    "current_revision",
    "database_error",
    "has_reviewflow_tables",
    "make_engine",
    "retryable",
    "schema_revision",
    "shown",
    "upgrade",
]

#: The embedded default: one SQLite file in the working directory.
DEFAULT_URL = "sqlite:///reviewflow.db"



def _normalize_url(url: str | URL) -> URL:
    try:
        u = make_url(url)
    except sa_exc.ArgumentError as exc:
        raise InputError(
            f"cannot read database URL {url!r}: {exc}; write it like "
            "sqlite:///reviewflow.db or postgresql+psycopg://user@host/db"
        ) from None
    # The drivers reviewflow installs; SQLAlchemy's defaults (psycopg2, mysqlclient) may be absent.
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    elif u.drivername in ("mysql", "mariadb"):
        u = u.set(drivername=f"{u.drivername}+pymysql")
    return u


def shown(u: URL) -> str:
    """Return the URL as text with its password hidden."""
    return u.render_as_string(hide_password=True)


def make_engine(url: str | URL, *, autocommit: bool = False,
                timeouts: Timeouts | None = None) -> Engine:
    """Return an engine for ``url`` with reviewflow's settings (SQLite pragmas, drivers, timeouts).

    ``timeouts`` (default :class:`Timeouts()`) bound every wait for the database; the
    URL's own ``connect_timeout``, ``statement_timeout``, ``lock_timeout``,
    ``idle_in_transaction_timeout`` and ``reply_timeout`` parameters win over it and are
    removed from the URL the driver sees.
    """
    u = _normalize_url(url)
    u, limits = Timeouts.from_url(u, timeouts, shown(u))
    backend = u.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(u, limits)
    kwargs: dict[str, Any] = {"pool_pre_ping": False}
    if backend == "postgresql":
        # The URL's own options come first in the connect argument, which replaces them.
        kwargs["connect_args"] = _timeouts.postgresql_args(u, limits)
    elif backend in ("mysql", "mariadb"):
        if "charset" not in u.query:
            u = u.update_query_dict({"charset": "utf8mb4"})
        kwargs["connect_args"] = _timeouts.mysql_args(u, limits)
        # Fewer gap locks than REPEATABLE READ; the version check does not need more.
        kwargs["isolation_level"] = "READ COMMITTED"
    else:
        raise InputError(
            f"unsupported database {backend!r} in {shown(u)}; use sqlite:///FILE, "
            "postgresql+psycopg://... or mysql+pymysql://..."
        )
    if autocommit:
        kwargs["isolation_level"] = "AUTOCOMMIT"
    try:
        engine = sa.create_engine(u, **kwargs)
    except ImportError as exc:
        raise StoreError(
            f"the driver for {shown(u)} is not installed ({exc}); install "
            "reviewflow[postgresql] or reviewflow[mysql]"
        ) from None
    engine_timeouts[engine] = limits
    if backend == "postgresql":
        sa_event.listen(engine, "connect", _binary_arrays)
        if limits.reply_seconds:
            sa_event.listen(engine, "do_connect", _timeouts.watched_connect(limits.reply_seconds))
    else:
        sa_event.listen(engine, "connect",
                        lambda dbapi_conn, _record: _timeouts.mysql_session(dbapi_conn, limits))
    return engine


#: The timeouts each engine made here works with (for the messages of StoreTimeout).
engine_timeouts: weakref.WeakKeyDictionary[Engine, Timeouts] = weakref.WeakKeyDictionary()


def database_error(exc: sa_exc.DBAPIError, engine: Engine, what: str) -> StoreError:
    """Return the StoreError for a database error: a :class:`StoreTimeout` when a limit ran
    out, else ``StoreError("{what}: ...")``."""
    url = shown(engine.url)
    late = _timeouts.timeout_error(exc, url, engine_timeouts.get(engine))
    if late is not None:
        return late
    return StoreError(f"{what}: {exc.orig}")


def _binary_arrays(dbapi_conn: Any, _record: Any) -> None:
    """Send Python lists (the store's unnest() batches) as binary arrays.

    psycopg's text format escapes every element of a text array with a regular
    expression (JSON documents are full of quotes); the binary format copies them,
    about ten times faster for a batch of case states.
    """
    from psycopg.types.array import ListBinaryDumper

    dbapi_conn.adapters.register_dumper(list, ListBinaryDumper)


def _sqlite_engine(u: URL, limits: Timeouts) -> Engine:
    database = u.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        raise InputError(
            "an in-memory SQLite database does not survive the process; use store=None "
            "(the in-memory store) or a file, e.g. sqlite:///reviewflow.db"
        )
    synchronous = str(u.query.get("synchronous", "full")).upper()
    if synchronous not in ("FULL", "NORMAL", "EXTRA"):
        raise InputError(f"synchronous={synchronous.lower()} in {shown(u)}: use full or normal")
    try:
        timeout = float(str(u.query.get("timeout", limits.lock or _timeouts.LONGEST)))
    except ValueError:
        raise InputError(f"timeout in {shown(u)} must be a number of seconds") from None
    u = u.difference_update_query(["synchronous", "timeout"])
    engine = sa.create_engine(u, connect_args={"timeout": timeout})

    @sa_event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin (for savepoints).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute(f"PRAGMA synchronous = {synchronous}")
        # Deleted content is overwritten with zeros: a ballot box rewritten by every cast
        # leaves no copy of an earlier order in free cells or pages (docs/reliability.md).
        cur.execute("PRAGMA secure_delete = ON")
        cur.close()

    @sa_event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        raw: Any = conn.connection.dbapi_connection
        if raw.in_transaction:
            # The store's own write connection began this transaction itself (BEGIN
            # IMMEDIATE on the driver); SQLAlchemy joins it.
            return
        sql = "BEGIN IMMEDIATE" if conn.get_execution_options().get("rf_write", False) else "BEGIN"
        # Straight to the driver (a statement through SQLAlchemy costs more than the BEGIN);
        # its error is wrapped as SQLAlchemy would ("database is locked" after the timeout).
        try:
            raw.execute(sql)
        except sqlite3.Error as exc:
            raise sa_exc.DBAPIError.instance(sql, (), exc, sqlite3.Error) from exc

    return engine


def error_code(exc: sa_exc.DBAPIError) -> str:
    """Return the driver's error code (SQLSTATE or MySQL number) as text."""
    orig = exc.orig
    code = getattr(orig, "sqlstate", None)
    if code:
        return str(code)
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return str(args[0])
    return ""


def retryable(exc: sa_exc.DBAPIError) -> bool:
    """Return True when the database aborted the transaction to break a deadlock."""
    # PostgreSQL deadlock / serialization failure; MySQL deadlock / lock wait timeout.
    return error_code(exc) in ("40P01", "40001", "1213", "1205")




def schema_revision(url: str | URL) -> str | None:
    """Return the schema revision of the database at ``url`` (None for a fresh database)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return current_revision(conn)
    except sa_exc.DBAPIError as exc:
        raise database_error(exc, engine, f"cannot read {shown(engine.url)}") from None
    finally:
        engine.dispose()


def current_revision(conn: Connection) -> str | None:
    """Return the schema revision stamped in the database (None if none)."""
    if not sa.inspect(conn).has_table(s.VERSION_TABLE):
        return None
    row = conn.execute(sa.select(_VERSION.c.version_num)).first()
    return None if row is None else str(row[0])


def has_reviewflow_tables(conn: Connection) -> bool:
    """Return True when any of reviewflow's tables exists."""
    names = set(sa.inspect(conn).get_table_names())
    return bool(names & {t.name for t in s.metadata.sorted_tables})


def _alembic_config(conn: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "reviewflow:migrations")
    config.attributes["connection"] = conn
    return config


#: An upgrade may rebuild large tables: no statement or reply limit (the URL may set one),
#: but it still waits at most 30 s for a lock another client holds.
MIGRATION_TIMEOUTS = Timeouts(statement=0, idle_in_transaction=0, reply=0)


def upgrade(url: str | URL = DEFAULT_URL, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade the database at ``url`` to this reviewflow's schema; return (before, after).

    A fresh database gets every table. Runs the Alembic revisions shipped in
    :mod:`reviewflow.migrations`; no ``alembic.ini`` is needed. This is what
    ``reviewflow db upgrade URL`` runs. It runs without the statement and reply limits
    of :class:`Timeouts` (a revision may rebuild large tables), unless the URL sets
    them; a lock held by another client still ends it after ``lock_timeout``.
    """
    from alembic import command

    engine = make_engine(url, timeouts=MIGRATION_TIMEOUTS).execution_options(rf_write=True)
    try:
        with engine.begin() as conn:
            before = current_revision(conn)
            if before is None and has_reviewflow_tables(conn):
                raise SchemaVersionError(
                    f"{shown(engine.url)} has reviewflow tables but no schema revision "
                    f"({s.VERSION_TABLE}); it was not made by reviewflow's migrations. "
                    "Back it up and start from a fresh database"
                )
            command.upgrade(_alembic_config(conn), revision)
            after = current_revision(conn)
        return before, after
    except sa_exc.DBAPIError as exc:
        raise database_error(exc, engine, f"cannot upgrade {shown(engine.url)}") from None
    finally:
        engine.dispose()


_VERSION = sa.Table(
    s.VERSION_TABLE, sa.MetaData(), sa.Column("version_num", sa.String(32), primary_key=True),
)


def create_schema(conn: Connection) -> None:
    """Create every table on a fresh database and stamp the head revision."""
    s.metadata.create_all(conn)
    use_nopad(conn)  # MySQL/MariaDB: ids compare exactly (no space padding)
    _VERSION.create(conn, checkfirst=True)
    conn.execute(_VERSION.insert(), {"version_num": s.HEAD_REVISION})


