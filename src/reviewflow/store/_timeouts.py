"""How long the SQL store waits for its database, and the error when a wait runs out.

A database server that stops answering (frozen, its host gone, a network cut) must
not hang a command. Every wait is bounded:

* ``connect_timeout``: opening a connection (PostgreSQL, MySQL/MariaDB);
* ``statement_timeout``: one statement, ended by the server (PostgreSQL
  ``statement_timeout``, MariaDB ``max_statement_time``, MySQL ``max_execution_time``,
  which covers reads only);
* ``lock_timeout``: waiting for a row or table lock (PostgreSQL ``lock_timeout``,
  InnoDB ``innodb_lock_wait_timeout``, SQLite's busy timeout);
* ``idle_in_transaction_timeout``: a transaction left open by a client that stopped
  (PostgreSQL ``idle_in_transaction_session_timeout``, MariaDB ``idle_transaction_timeout``);
* ``reply_timeout``: how long this process waits for any reply of the server (a
  statement, a commit, a fetch). A frozen server ends no statement, so this is the
  limit that holds then; by default the statement timeout plus 30 s. TCP keepalives
  (and ``tcp_user_timeout`` on PostgreSQL) are set too, so that a dead peer is noticed
  on idle connections.

Each is a number of seconds, 0 for no limit. They come from :class:`Timeouts` (the
``timeouts=`` argument of :class:`~reviewflow.store.sql.SqlStore` and
:func:`~reviewflow.store.open_store`), and each may be given in the database URL's
query (``?statement_timeout=30&reply_timeout=60``), which wins; reviewflow takes these
parameters out of the URL before the driver sees it. When one runs out the store raises
:class:`~reviewflow.exceptions.StoreTimeout`, whose ``reason`` says which.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

import attrs
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL

from reviewflow.exceptions import InputError, StoreTimeout

__all__ = ["NOT_APPLIED", "PARAMETERS", "Timeouts", "timeout_error", "watched_connect"]

#: What a command that failed this way did: said after a timeout in a command.
NOT_APPLIED = ("the command was not applied if this happened before commit (reload and "
               "check, or replay it with the same idempotency key)")

#: The URL query parameters reviewflow reads (and removes) for timeouts.
PARAMETERS = ("connect_timeout", "statement_timeout", "lock_timeout",
              "idle_in_transaction_timeout", "reply_timeout")

#: A limit longer than this (PostgreSQL keeps milliseconds in a 32-bit integer) is refused.
LONGEST = 2_147_483.0


#: innodb_lock_wait_timeout's largest value (MySQL, MariaDB), set for ``lock_timeout = 0``
#: (no limit): InnoDB has no "no limit" of its own.
MYSQL_LONGEST_LOCK_WAIT = 1_073_741_824
MARIADB_LONGEST_LOCK_WAIT = 100_000_000


def _seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"Timeouts: {name} must be a number of seconds (0 for no limit), "
                         f"not {value!r}; give e.g. {name.removesuffix('_timeout')}=30",
                         reason="bad_timeout")
    if not math.isfinite(value) or value < 0 or value > LONGEST:
        raise InputError(f"Timeouts: {name} = {value!r}: give a number of seconds from 0 "
                         f"(no limit) to {LONGEST:.0f}", reason="bad_timeout")
    return float(value)


def _connect(value: object) -> float:
    return _seconds(value, "connect_timeout")


def _statement(value: object) -> float:
    return _seconds(value, "statement_timeout")


def _lock(value: object) -> float:
    return _seconds(value, "lock_timeout")


def _idle(value: object) -> float:
    return _seconds(value, "idle_in_transaction_timeout")


def _reply(value: object) -> float | None:
    return None if value is None else _seconds(value, "reply_timeout")


@attrs.frozen
class Timeouts:
    """How long the SQL store waits for its database, in seconds (0: no limit).

    The defaults suit a server on the same network: a command against a frozen
    server ends with :class:`~reviewflow.exceptions.StoreTimeout` after at most
    ``reply_timeout`` (90 s by default) instead of hanging.

    >>> Timeouts(statement=5).reply_seconds
    35.0
    >>> Timeouts.from_text("statement_timeout=5&reply_timeout=8").reply_seconds
    8.0
    """

    #: Opening a connection.
    connect: float = attrs.field(default=10.0, converter=_connect)
    #: One statement, ended by the server.
    statement: float = attrs.field(default=60.0, converter=_statement)
    #: Waiting for a lock (SQLite: the busy timeout).
    lock: float = attrs.field(default=30.0, converter=_lock)
    #: A transaction left open by a client that stopped.
    idle_in_transaction: float = attrs.field(
        default=300.0, converter=_idle)
    #: Waiting for any reply of the server; None: ``statement`` + 30 s (no limit if
    #: ``statement`` is 0).
    reply: float | None = attrs.field(default=None, converter=_reply)

    @property
    def reply_seconds(self) -> float:
        """The reply limit in force (0: none)."""
        if self.reply is not None:
            return float(self.reply)
        return self.statement + 30.0 if self.statement else 0.0

    @classmethod
    def from_text(cls, text: str, *, base: Timeouts | None = None,
                  where: str = "REVIEWFLOW_DB_TIMEOUTS") -> Timeouts:
        """Read ``name=seconds`` pairs (``&`` or ``,`` between them), as in a URL's query."""
        pairs: dict[str, str] = {}
        for part in text.replace(",", "&").split("&"):
            part = part.strip()
            if not part:
                continue
            name, sep, value = part.partition("=")
            if not sep:
                raise InputError(f"{where}: {part!r} is not name=seconds; write e.g. "
                                 "statement_timeout=30,reply_timeout=60")
            pairs[name.strip()] = value.strip()
        unknown = sorted(set(pairs) - set(PARAMETERS))
        if unknown:
            raise InputError(f"{where}: unknown timeout {', '.join(unknown)}; "
                             f"known: {', '.join(PARAMETERS)}")
        return (base or cls()).updated(pairs, where)

    def updated(self, values: Mapping[str, Any], where: str) -> Timeouts:
        """Return a copy with the timeouts named in ``values`` (URL query names) replaced."""
        changes: dict[str, float] = {}
        for name in PARAMETERS:
            if name not in values:
                continue
            raw = values[name]
            if isinstance(raw, tuple):  # a URL may repeat a parameter: the last one counts
                raw = raw[-1]
            try:
                number = float(str(raw))
            except ValueError:
                raise InputError(f"{name}={raw} in {where}: give a number of seconds "
                                 "(0 for no limit)", reason="bad_timeout") from None
            if not math.isfinite(number) or number < 0 or number > LONGEST:
                raise InputError(f"{name}={raw} in {where}: give a number of seconds from 0 "
                                 f"(no limit) to {LONGEST:.0f}", reason="bad_timeout")
            changes[name.removesuffix("_timeout")] = number
        return attrs.evolve(self, **changes) if changes else self

    @classmethod
    def from_url(cls, u: URL, base: Timeouts | None, where: str) -> tuple[URL, Timeouts]:
        """Return ``u`` without reviewflow's timeout parameters, and the timeouts in force."""
        timeouts = (base or cls()).updated(u.query, where)
        return u.difference_update_query(PARAMETERS), timeouts


def _ms(seconds: float) -> int:
    return math.ceil(seconds * 1000)


def postgresql_args(u: URL, t: Timeouts) -> dict[str, Any]:
    """Return psycopg connect arguments for ``t`` (what the URL sets itself is kept)."""
    args: dict[str, Any] = {}
    if t.connect:
        args["connect_timeout"] = max(2, math.ceil(t.connect))  # libpq's least is 2 s
    settings = [f"-c statement_timeout={_ms(t.statement)}",
                f"-c lock_timeout={_ms(t.lock)}",
                f"-c idle_in_transaction_session_timeout={_ms(t.idle_in_transaction)}"]
    given = u.query.get("options")
    if isinstance(given, tuple):
        given = " ".join(given)
    args["options"] = " ".join([*([given] if given else []), *settings])
    keepalives = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
                  "keepalives_count": 3}
    reply = t.reply_seconds
    if reply and _libpq_version() >= 120000:
        keepalives["tcp_user_timeout"] = _ms(reply)
    args.update({k: v for k, v in keepalives.items() if k not in u.query})
    return args


def _libpq_version() -> int:
    try:
        from psycopg import pq
    except ImportError:  # pragma: no cover - the engine refuses the URL first
        return 0
    return int(pq.version())


def mysql_args(u: URL, t: Timeouts) -> dict[str, Any]:
    """Return PyMySQL connect arguments for ``t`` (what the URL sets itself is kept)."""
    args: dict[str, Any] = {}
    if t.connect and "connect_timeout" not in u.query:
        args["connect_timeout"] = max(1, math.ceil(t.connect))
    reply = t.reply_seconds
    if reply:
        for name in ("read_timeout", "write_timeout"):
            if name not in u.query:
                args[name] = reply
    return args


def mysql_session(dbapi_conn: Any, t: Timeouts) -> None:
    """Set the session limits of a new MySQL/MariaDB connection (one statement)."""
    mariadb = "mariadb" in str(dbapi_conn.get_server_info()).lower()
    settings = []
    if mariadb:
        settings.append(f"max_statement_time = {t.statement:.3f}")
        settings.append(f"idle_transaction_timeout = {math.ceil(t.idle_in_transaction)}")
    else:
        settings.append(f"max_execution_time = {_ms(t.statement)}")
    longest = MARIADB_LONGEST_LOCK_WAIT if mariadb else MYSQL_LONGEST_LOCK_WAIT
    lock_wait = max(1, math.ceil(t.lock)) if t.lock else longest  # 0: no limit
    settings.append(f"innodb_lock_wait_timeout = {lock_wait}")
    cur = dbapi_conn.cursor()
    try:
        cur.execute("SET SESSION " + ", ".join(settings))
    finally:
        cur.close()


# ---------------------------------------------------------------------- PostgreSQL: replies


class _Watchdog:
    """Shut down the socket of a PostgreSQL connection whose reply is overdue.

    psycopg waits for the server without a limit of its own; a frozen server still
    acknowledges TCP, so keepalives do not end the wait either. Each wait registers
    its deadline here; one thread (started on first use, again after a fork) shuts
    the socket of an overdue connection, which ends the wait with an error.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[int, tuple[float, Any]] = {}
        self._wake = threading.Event()
        self._target: float | None = None
        self._pid = 0

    def arm(self, conn: Any, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        with self._lock:
            self._armed[id(conn)] = (deadline, conn)
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._target = None
                threading.Thread(target=self._run, name="reviewflow-db-watchdog",
                                 daemon=True).start()
            if self._target is None or deadline < self._target:
                self._target = deadline
                self._wake.set()

    def after_fork(self) -> None:
        """In a forked child: start afresh (the parent's thread and lock are not ours)."""
        self._lock = threading.Lock()
        self._armed = {}
        self._wake = threading.Event()
        self._target = None
        self._pid = 0

    def disarm(self, conn: Any) -> None:
        with self._lock:
            self._armed.pop(id(conn), None)

    def _run(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                for key, (deadline, conn) in list(self._armed.items()):
                    if deadline <= now:
                        del self._armed[key]
                        _shut(conn)
                upcoming = [deadline for deadline, _ in self._armed.values()]
                self._target = min(upcoming) if upcoming else None
                self._wake.clear()
                wait = None if self._target is None else max(0.0, self._target - now)
            self._wake.wait(wait)


def _shut(conn: Any) -> None:
    """End the pending wait of ``conn``: shut its socket down (the fd stays the driver's)."""
    conn._rf_overdue = True
    try:
        fd = conn.pgconn.socket
        dup = socket.socket(fileno=os.dup(fd))
    except Exception:
        return
    try:
        dup.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        dup.close()


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WATCHDOG.after_fork)
_WATCHED: list[Any] = []
_CLASS_LOCK = threading.Lock()


def _watched_class() -> Any:
    """Return psycopg's Connection with every wait for the server bounded."""
    with _CLASS_LOCK:
        if _WATCHED:
            return _WATCHED[0]
        import psycopg

        class NoReply(psycopg.OperationalError):
            """The server sent no reply within the reply timeout (the socket was shut)."""

        class WatchedConnection(psycopg.Connection):
            _rf_reply = 0.0
            _rf_overdue = False

            def wait(self, *args: Any, **kwargs: Any) -> Any:
                reply = self._rf_reply
                if not reply:
                    return super().wait(*args, **kwargs)
                _WATCHDOG.arm(self, reply)
                try:
                    return super().wait(*args, **kwargs)
                except psycopg.Error as exc:
                    if self._rf_overdue:
                        raise NoReply(f"no reply from the server within {reply:g} s "
                                      f"(reply_timeout): {exc}") from exc
                    raise
                finally:
                    _WATCHDOG.disarm(self)

        NoReply.rf_reason = "no_reply"  # type: ignore[attr-defined]
        WatchedConnection.NoReply = NoReply  # type: ignore[attr-defined]
        _WATCHED.append(WatchedConnection)
        return WatchedConnection


def watched_connect(reply: float) -> Any:
    """Return a ``do_connect`` listener that opens psycopg connections with bounded waits."""

    def connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        conn = _watched_class().connect(*cargs, **cparams)
        conn._rf_reply = reply
        return conn

    return connect


# ---------------------------------------------------------------------- the error


_SERVER_TIMEOUTS = {
    "57014": "statement_timeout",  # PostgreSQL query_canceled (statement_timeout)
    "55P03": "lock_timeout",  # PostgreSQL lock_not_available (lock_timeout)
    "25P03": "idle_in_transaction_timeout",  # PostgreSQL idle_in_transaction_session_timeout
    "1969": "statement_timeout",  # MariaDB max_statement_time exceeded
    "3024": "statement_timeout",  # MySQL max_execution_time exceeded
    "1205": "lock_timeout",  # InnoDB lock wait timeout
}

_WHAT = {
    "connect_timeout": ("could not connect to {url} within {limit} (connect_timeout)",
                        "check that the server runs and is reachable, or raise connect_timeout"),
    "no_reply": ("no reply from {url} within {limit} (reply_timeout): the server is frozen, "
                 "overloaded or unreachable",
                 "check the server; raise reply_timeout if its statements are slow"),
    "statement_timeout": ("a statement ran longer than {limit} on {url} and the server ended "
                          "it (statement_timeout)",
                          "raise statement_timeout, or check the server's load"),
    "lock_timeout": ("waited longer than {limit} for a lock on {url} (lock_timeout): another "
                     "transaction holds it",
                     "try again when it is done; raise lock_timeout if it is a long import"),
    "sqlite_busy": ("waited longer than {limit} for {url}, which another writer holds locked "
                    "(lock_timeout; the driver says: database is locked)",
                    "try again when the other writer is done; raise lock_timeout (or the "
                    "URL's timeout) if it is a long import"),
    "idle_in_transaction_timeout": (
        "the server closed a transaction left idle longer than {limit} on {url} "
        "(idle_in_transaction_timeout)",
        "try again; raise idle_in_transaction_timeout if a step really takes that long"),
}


def _limit(reason: str, t: Timeouts | None) -> str:
    if t is None:
        return "its limit"
    seconds = {"connect_timeout": t.connect, "sqlite_busy": t.lock, "no_reply": t.reply_seconds,
               "statement_timeout": t.statement, "lock_timeout": t.lock,
               "idle_in_transaction_timeout": t.idle_in_transaction}[reason]
    return f"{seconds:g} s"


def _reason(exc: sa_exc.DBAPIError) -> str | None:
    orig = exc.orig
    marked = getattr(orig, "rf_reason", None)
    if isinstance(marked, str):
        return marked
    args = getattr(orig, "args", ())
    # MySQL's error number says more than its SQLSTATE (PyMySQL keeps both).
    number = args[0] if args and isinstance(args[0], int) else None
    code = str(number) if number is not None else getattr(orig, "sqlstate", None)
    text = str(orig).lower()
    if code == "57014" and "statement timeout" not in text:
        return None  # cancelled by someone, not by the limit
    if code in _SERVER_TIMEOUTS:
        return _SERVER_TIMEOUTS[code]
    if type(orig).__name__ == "ConnectionTimeout" or "connection timeout expired" in text:
        return "connect_timeout"
    if code in ("2013", "2006") and "timed out" in text:  # PyMySQL: the socket timed out
        return "no_reply"
    if code == "2003" and "timed out" in text:
        return "connect_timeout"
    if "terminating connection due to idle-in-transaction timeout" in text:
        return "idle_in_transaction_timeout"
    if getattr(orig, "sqlite_errorname", "") == "SQLITE_BUSY":
        return "sqlite_busy"
    return None


def timeout_error(exc: sa_exc.DBAPIError, url: str, timeouts: Timeouts | None,
                  *, after: str = "") -> StoreTimeout | None:
    """Return the :class:`StoreTimeout` for ``exc`` if a limit ran out, else None."""
    reason = _reason(exc)
    if reason is None:
        return None
    what, todo = _WHAT[reason]
    message = what.format(url=url, limit=_limit(reason, timeouts))
    if after:
        message += f"; {after}"
    code = "lock_timeout" if reason == "sqlite_busy" else reason
    return StoreTimeout(code, f"{message}; {todo}", url=url)
