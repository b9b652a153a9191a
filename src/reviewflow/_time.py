"""Fast zone and offset helpers: pendulum's own arithmetic costs microseconds per call.

Cached time zones, the UTC offset of an instant, wall times and conversions into a zone,
for the calendar and the due-time rules that run them per case.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import pendulum

from reviewflow.clock import ensure_aware

_ZONES: dict[str, Any] = {}


def zone(name: str) -> Any:
    """Return the pendulum time zone named ``name`` (cached)."""
    tz = _ZONES.get(name)
    if tz is None:
        tz = _ZONES[name] = pendulum.timezone(name)
    return tz


_STABLE_DAYS: dict[tuple[Any, int], bool] = {}
UTC = pendulum.timezone("UTC")


def _stable_day(tz: Any, year: int, month: int, day: int) -> bool:
    """Return True when ``tz`` keeps one UTC offset all that day (no DST change)."""
    key = (tz, _dt.date(year, month, day).toordinal())
    stable = _STABLE_DAYS.get(key)
    if stable is None:
        first = _dt.datetime(year, month, day, tzinfo=tz)
        last = _dt.datetime(year, month, day, 23, 59, 59, 999999, tzinfo=tz)
        offsets = {tz.utcoffset(first), tz.utcoffset(first.replace(fold=1)),
                   tz.utcoffset(last), tz.utcoffset(last.replace(fold=1))}
        stable = len(offsets) == 1
        if len(_STABLE_DAYS) > 200_000:
            _STABLE_DAYS.clear()
        _STABLE_DAYS[key] = stable
    return stable


_DAY_OFFSETS: dict[tuple[Any, int], _dt.timedelta] = {}


def utc_offset(value: _dt.datetime) -> _dt.timedelta | None:
    """Return ``value.utcoffset()``, remembered per zone and day when the day has one offset.

    The same as calling ``utcoffset()`` (None for a naive value), several times cheaper for
    the many due and fire times the deadline work converts: a pendulum time's own
    ``utcoffset()`` goes through the zone's slow path for datetime subclasses.
    """
    tz = value.tzinfo
    if tz is None:
        return None
    key = (tz, _dt.date.toordinal(value))
    off = _DAY_OFFSETS.get(key)
    if off is not None:
        return off
    off = value.utcoffset()
    if off is not None and _stable_day(tz, value.year, value.month, value.day):
        if len(_DAY_OFFSETS) > 200_000:
            _DAY_OFFSETS.clear()
        _DAY_OFFSETS[key] = off
    return off


def wall_time(
    tz: Any, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
    microsecond: int = 0,
) -> pendulum.DateTime:
    """Return the aware time with this wall-clock reading in ``tz`` (as pendulum.datetime does,
    a time in a DST gap moves forward)."""
    if (isinstance(tz, pendulum.Timezone) and not isinstance(tz, pendulum.FixedTimezone)
            and not _stable_day(tz, year, month, day)):
        local = tz.convert(_dt.datetime(year, month, day, hour, minute, second, microsecond, fold=1))
        return pendulum.DateTime(
            local.year, local.month, local.day, local.hour, local.minute, local.second,
            local.microsecond, tzinfo=tz, fold=local.fold,
        )
    return pendulum.DateTime(year, month, day, hour, minute, second, microsecond, tzinfo=tz)


def in_zone(value: _dt.datetime, tz: Any) -> pendulum.DateTime:
    """Return the aware ``value`` as the same instant in ``tz`` (a tzinfo or an IANA name)."""
    if isinstance(tz, str):
        tz = zone(tz)
    if isinstance(value, pendulum.DateTime) and value.tzinfo is tz:
        return value
    off = utc_offset(value)
    if off is None:
        return ensure_aware(value, what="time")  # raises the clear DeadlineError
    utc = _dt.datetime(value.year, value.month, value.day, value.hour, value.minute,
                       value.second, value.microsecond) - off
    local = tz.fromutc(utc.replace(tzinfo=tz))
    return pendulum.DateTime(
        local.year, local.month, local.day, local.hour, local.minute, local.second,
        local.microsecond, tzinfo=tz, fold=getattr(local, "fold", 0),
    )


def std_date(value: _dt.date) -> _dt.date:
    return _dt.date(value.year, value.month, value.day)
