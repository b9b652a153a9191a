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
from typing import Protocol, runtime_checkable

import pendulum

from reviewflow.exceptions import DeadlineError

__all__ = ["DEFAULT_TZ", "Clock", "FrozenClock", "SystemClock", "ensure_aware"]

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
    """A clock that stands still until moved: for tests, simulations and what-if runs."""

    __slots__ = ("_now",)

    def __init__(self, at: _dt.datetime) -> None:
        self._now = ensure_aware(at, what="FrozenClock time", tz=_zone_name(at))

    def now(self) -> pendulum.DateTime:
        """Return the frozen time."""
        return self._now

    def set(self, at: _dt.datetime) -> FrozenClock:
        """Move to ``at`` (aware); return the clock so calls can be chained."""
        self._now = ensure_aware(at, what="FrozenClock time", tz=_zone_name(at))
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


def _zone_name(at: _dt.datetime) -> str:
    tz = at.tzinfo
    name = getattr(tz, "name", None) or getattr(tz, "key", None)
    return name if isinstance(name, str) else DEFAULT_TZ
