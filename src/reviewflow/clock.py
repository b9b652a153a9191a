"""Clocks: the only place reviewflow learns the time.

Library code never reads the wall clock itself; a :class:`Campaign` asks its clock.
Tests and simulations pass a :class:`FrozenClock` and move it by hand.

>>> import pendulum
>>> clock = FrozenClock(pendulum.datetime(2016, 1, 4, 9, tz="Asia/Shanghai"))
>>> clock.advance(days=1, hours=2).now().isoformat()
'2016-01-05T11:00:00+08:00'
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Protocol, runtime_checkable

import pendulum

from reviewflow.exceptions import DeadlineError, InputError, StoreError

__all__ = ["DEFAULT_TZ", "Clock", "DatabaseClock", "FrozenClock", "SystemClock", "ensure_aware"]

#: The campaign time zone unless a policy names another IANA zone.
DEFAULT_TZ = "Asia/Shanghai"


@runtime_checkable
class Clock(Protocol):
    """Anything with ``now()`` returning an aware :class:`pendulum.DateTime`."""

    def now(self) -> pendulum.DateTime: ...


def ensure_aware(value: _dt.datetime, *, what: str = "datetime", tz: str = DEFAULT_TZ) -> pendulum.DateTime:
    """Return ``value`` as an aware pendulum datetime in ``tz``; refuse a naive one.

    A naive datetime is never guessed: its zone is ambiguous across hosts.
    """
    if not isinstance(value, _dt.datetime):
        raise DeadlineError(f"{what} must be a datetime, got {type(value).__name__}: {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise DeadlineError(
            f"{what} {value.isoformat()} has no time zone; pass an aware datetime, "
            f"e.g. pendulum.datetime(..., tz={tz!r})"
        )
    return pendulum.instance(value).in_timezone(tz)


class SystemClock:
    """The real time, in the campaign's time zone."""

    __slots__ = ("tz",)

    def __init__(self, tz: str = DEFAULT_TZ) -> None:
        self.tz = pendulum.timezone(tz)

    def now(self) -> pendulum.DateTime:
        """Return the current time, aware, in this clock's zone."""
        return pendulum.now(self.tz)

    def __repr__(self) -> str:
        return f"SystemClock({self.tz.name!r})"


class FrozenClock:
    """A clock that stands still until moved: for tests, simulations and what-if runs.

    It takes any aware datetime and keeps its zone: a pendulum one, a fixed offset
    (``pendulum.parse("2016-01-12T10:00+08:00")``, ``datetime.timezone(...)``), UTC or a
    :class:`zoneinfo.ZoneInfo` zone. A naive datetime is refused with an
    :class:`~reviewflow.exceptions.InputError`: its zone would be a guess.
    """

    __slots__ = ("_now",)

    def __init__(self, at: _dt.datetime) -> None:
        self._now = _frozen(at)

    def now(self) -> pendulum.DateTime:
        """Return the frozen time."""
        return self._now

    def set(self, at: _dt.datetime) -> FrozenClock:
        """Move to ``at`` (aware); return the clock so calls can be chained."""
        self._now = _frozen(at)
        return self

    def advance(
        self, *, days: int = 0, hours: int = 0, minutes: int = 0, seconds: int = 0,
        microseconds: int = 0,
    ) -> FrozenClock:
        """Move forward (or back, with negative values); return the clock."""
        self._now = self._now.add(
            days=days, hours=hours, minutes=minutes, seconds=seconds, microseconds=microseconds
        )
        return self

    def __repr__(self) -> str:
        return f"FrozenClock({self._now.isoformat()})"


#: How each database tells its own time (UTC where the answer has no zone).
_SERVER_TIME = {
    "postgresql": "SELECT clock_timestamp()",
    "mysql": "SELECT UTC_TIMESTAMP(6)",
    "mariadb": "SELECT UTC_TIMESTAMP(6)",
    "sqlite": "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')",
}


class DatabaseClock:
    """The database server's time: several app servers with skewed clocks then agree.

    Give it the campaign's SQL store (``Campaign(..., clock=DatabaseClock(store),
    store=store)``). Each ``now()`` asks the server (one round trip): PostgreSQL's
    ``clock_timestamp()``, MySQL's ``UTC_TIMESTAMP(6)``. SQLite has no server: its time
    is this machine's clock, like :class:`SystemClock`. A store with a ``server_time()``
    method is asked through it instead.
    """

    __slots__ = ("_engine", "_query", "_store", "tz")

    def __init__(self, store: Any, tz: str = DEFAULT_TZ) -> None:
        self._store = store
        self.tz = pendulum.timezone(tz)
        self._engine = getattr(store, "engine", None)
        self._query: str | None = None
        if getattr(store, "server_time", None) is None:
            dialect = getattr(getattr(self._engine, "dialect", None), "name", None)
            self._query = _SERVER_TIME.get(str(dialect))
            if self._query is None:
                raise InputError(
                    f"DatabaseClock needs a SQL store (SQLite, PostgreSQL or MySQL), not "
                    f"{type(store).__name__}; use SystemClock for an in-memory store"
                )

    def now(self) -> pendulum.DateTime:
        """Return the database's current time, aware, in this clock's zone."""
        server_time = getattr(self._store, "server_time", None)
        value = server_time() if server_time is not None else self._ask()
        if isinstance(value, str):
            value = _dt.datetime.fromisoformat(value)
        if not isinstance(value, _dt.datetime):
            raise StoreError(f"the database answered {value!r} when asked for its time")
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.UTC)
        return pendulum.instance(value).in_timezone(self.tz)

    def _ask(self) -> Any:
        import sqlalchemy as sa

        engine, query = self._engine, self._query
        if engine is None or query is None:  # pragma: no cover  # refused in __init__
            raise StoreError("this store cannot tell the database's time")
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text(query)).scalar()
        except sa.exc.DBAPIError as exc:
            raise StoreError(f"cannot read the database's time: {exc.orig}") from None

    def __repr__(self) -> str:
        return f"DatabaseClock({self._store!r}, tz={self.tz.name!r})"


def _frozen(at: object) -> pendulum.DateTime:
    """``at`` as a pendulum datetime in its own zone (any aware datetime); refuse the rest."""
    if not isinstance(at, _dt.datetime):
        raise InputError(f"FrozenClock needs a datetime, got {type(at).__name__}: {at!r}; pass "
                         f"an aware datetime, e.g. pendulum.datetime(2016, 1, 12, tz={DEFAULT_TZ!r})")
    if at.tzinfo is None or at.utcoffset() is None:
        raise InputError(
            f"FrozenClock time {at.isoformat()} has no time zone; pass an aware datetime, "
            f"e.g. pendulum.datetime(..., tz={DEFAULT_TZ!r}) or "
            "datetime.datetime(..., tzinfo=zoneinfo.ZoneInfo('Asia/Shanghai'))"
        )
    if isinstance(at, pendulum.DateTime):
        return at
    return _instance(at, "FrozenClock time")


#: The reason code of a time reviewflow cannot record (``InputError.reason``; the same as
#: the CLI's ``--now`` out of range).
OUT_OF_RANGE = "invalid_argument"


def _out_of_range(value: _dt.datetime, what: str) -> InputError:
    return InputError(
        f"{what} {value.isoformat()} is outside the years reviewflow can record (its "
        f"instant, or that instant in the campaign's zone, falls outside years 1-9999); "
        f"use a time within them, e.g. pendulum.datetime(2016, 1, 12, tz={DEFAULT_TZ!r})",
        reason=OUT_OF_RANGE)


def _instance(at: _dt.datetime, what: str) -> pendulum.DateTime:
    """``at`` (aware) as a pendulum datetime: its own zone when pendulum can read it, else
    its fixed UTC offset (a zone without a key, e.g. ``zoneinfo.ZoneInfo.from_file``)."""
    try:
        return pendulum.instance(at)
    except (OverflowError, ValueError) as exc:
        raise _out_of_range(at, what) from exc
    except Exception:  # a tzinfo pendulum cannot name: keep the instant, at its offset
        offset = at.utcoffset()
        assert offset is not None  # checked by the callers
        try:
            return pendulum.instance(at.replace(tzinfo=pendulum.FixedTimezone(
                int(offset.total_seconds()))))
        except (OverflowError, ValueError) as exc:
            raise _out_of_range(at, what) from exc


def in_zone_of(value: object, tz: pendulum.Timezone | pendulum.FixedTimezone, *,
               what: str = "the clock's time") -> pendulum.DateTime:
    """Return a clock's answer as the same instant in ``tz``: any aware datetime (pendulum
    or not, a named zone, a fixed offset, UTC); a naive or non-datetime one is refused with
    an :class:`~reviewflow.exceptions.InputError`."""
    if isinstance(value, pendulum.DateTime) and value.tzinfo is not None:
        return _convert(value, tz, what)
    if not isinstance(value, _dt.datetime):
        raise InputError(f"{what} must be a datetime, got {type(value).__name__}: {value!r}; "
                         "a clock's now() returns an aware datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(f"{what} {value.isoformat()} has no time zone; a clock's now() must "
                         "return an aware datetime")
    return _convert(_instance(value, what), tz, what)


def _convert(value: pendulum.DateTime, tz: pendulum.Timezone | pendulum.FixedTimezone,
             what: str) -> pendulum.DateTime:
    try:
        return value.in_timezone(tz)
    except (OverflowError, ValueError) as exc:
        raise _out_of_range(value, what) from exc
