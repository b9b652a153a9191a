"""Working days (工作日) for deadlines: statutory holidays and weekend make-up working days (调休).

:meth:`WorkingCalendar.china` reads mainland China's official holiday schedule from the
``holidays`` package, which knows both the days off and the weekend days that are worked
to make up for them. The State Council publishes next year's schedule late in the year, so a
policy can add days off and make-up working days for a year the package does not know yet;
a host can also pass any object with ``is_working_day(date) -> bool`` (see
:class:`WorkdayCalendar`).

A year with no official schedule (neither in the package nor in the policy) is refused with
:class:`~reviewflow.exceptions.DeadlineError` rather than guessed, unless the calendar is
built with ``unknown_years="estimate"`` (weekends and the package's estimated statutory
holidays, without make-up days).

Working-day arithmetic keeps the time of day and the zone of the start; the start must be
an aware datetime. See ``docs/how-to/deadlines.md`` for examples.
"""

from __future__ import annotations

import datetime as _dt
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Protocol, runtime_checkable

import pendulum

from reviewflow._holidays import china_known_years, china_year
from reviewflow._time import UTC, std_date
from reviewflow._time import in_zone as in_zone
from reviewflow._time import utc_offset as utc_offset
from reviewflow._time import wall_time as wall_time
from reviewflow._time import zone as zone
from reviewflow.clock import ensure_aware
from reviewflow.exceptions import DeadlineError, PolicyError

__all__ = [
    "SkippedDays",
    "WorkdayCalendar",
    "WorkingCalendar",
    "add_working_days",
    "calendar_from_policy",
    "parse_days",
]

UnknownYears = Literal["error", "estimate"]

#: Weekday numbers (Monday is 0) of the usual weekend.
_WEEKEND = frozenset({5, 6})
_WEEKDAY_ABBR = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: The longest run of days off reviewflow accepts before calling a calendar broken.
_MAX_GAP_DAYS = 370


@runtime_checkable
class WorkdayCalendar(Protocol):
    """What reviewflow needs from a host's own calendar: whether a day is worked.

    A calendar may also offer ``add_working_days(start, n)`` (used when present) and
    ``day_off_reason(day) -> str | None`` (used to explain skipped days).
    """

    def is_working_day(self, day: _dt.date) -> bool: ...


class _Year:
    """One calendar year, resolved: which days are off, which weekend days are worked."""

    __slots__ = ("names", "off", "worked")

    def __init__(
        self, off: frozenset[_dt.date], worked: frozenset[_dt.date], names: dict[_dt.date, str]
    ) -> None:
        self.off = off
        self.worked = worked
        self.names = names


class WorkingCalendar:
    """A working-day calendar: weekends and holidays off, make-up working days worked.

    Build one with :meth:`china` (the official schedule for mainland China) or
    :meth:`weekends_only`; both take policy overrides. Years are resolved once and cached,
    so asking is fast. Instances are safe to share between threads.
    """

    __slots__ = (
        "_extra_off",
        "_extra_worked",
        "_flags",
        "_lock",
        "_shifts",
        "_source",
        "_years",
        "country",
        "unknown_years",
    )

    def __init__(
        self,
        *,
        country: str | None = "CN",
        extra_days_off: Iterable[_dt.date] = (),
        extra_working_days: Iterable[_dt.date] = (),
        unknown_years: UnknownYears = "error",
    ) -> None:
        if unknown_years not in ("error", "estimate"):
            raise DeadlineError(
                f"unknown_years must be 'error' or 'estimate', not {unknown_years!r}"
            )
        if country not in (None, "CN"):
            raise DeadlineError(
                f"no built-in calendar for country {country!r}; use 'CN', None (weekends only), "
                "or pass your own calendar object with is_working_day(date)"
            )
        self.country = country
        self.unknown_years: UnknownYears = unknown_years
        self._extra_off = frozenset(_as_date(d, "extra_days_off") for d in extra_days_off)
        self._extra_worked = frozenset(
            _as_date(d, "extra_working_days") for d in extra_working_days
        )
        clash = self._extra_off & self._extra_worked
        if clash:
            first = min(clash).isoformat()
            raise DeadlineError(
                f"{first} is listed both as a day off and as a make-up working day; keep one"
            )
        self._years: dict[int, _Year] = {}
        #: Working or not, by date ordinal: filled as years are resolved.
        self._flags: dict[int, bool] = {}
        #: Results of :meth:`_shift_ordinal` by (ordinal, n): due times and rungs of many
        #: cases count from the same few days.
        self._shifts: dict[tuple[int, int], int] = {}
        self._lock = threading.Lock()
        self._source = country

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def china(
        cls,
        extra_days_off: Iterable[_dt.date] = (),
        extra_working_days: Iterable[_dt.date] = (),
        *,
        unknown_years: UnknownYears = "error",
    ) -> WorkingCalendar:
        """Return mainland China's working-day calendar, with the policy's own additions.

        ``extra_days_off`` and ``extra_working_days`` win over the package's data; a year
        they touch counts as known, so a policy can supply a year's schedule before the
        ``holidays`` package has it.
        """
        return cls(
            country="CN", extra_days_off=extra_days_off,
            extra_working_days=extra_working_days, unknown_years=unknown_years,
        )

    @classmethod
    def weekends_only(
        cls, extra_days_off: Iterable[_dt.date] = (), extra_working_days: Iterable[_dt.date] = ()
    ) -> WorkingCalendar:
        """Return a calendar where only Saturdays, Sundays and the given days are off."""
        return cls(
            country=None, extra_days_off=extra_days_off, extra_working_days=extra_working_days,
            unknown_years="estimate",
        )

    # -- queries -----------------------------------------------------------------------------

    def known_years(self) -> frozenset[int]:
        """Return the years with an official schedule (the package's and the policy's)."""
        years = {d.year for d in self._extra_off | self._extra_worked}
        if self.country == "CN":
            years |= china_known_years()
        return frozenset(years)

    def is_working_day(self, day: _dt.date) -> bool:
        """Return True when ``day`` is a working day (an aware datetime counts by its date)."""
        return self._working_ordinal(_day_of(day).toordinal())

    def _working_ordinal(self, ordinal: int) -> bool:
        flag = self._flags.get(ordinal)
        if flag is None:
            d = _dt.date.fromordinal(ordinal)
            year = self._year(d.year)
            flag = d in year.worked or (d.weekday() not in _WEEKEND and d not in year.off)
            self._flags[ordinal] = flag
        return flag

    def is_make_up_day(self, day: _dt.date) -> bool:
        """Return True when ``day`` is a weekend day that is worked (调休 make-up working day)."""
        d = _day_of(day)
        return d in self._year(d.year).worked

    def day_off_reason(self, day: _dt.date) -> str | None:
        """Return why ``day`` is off ("weekend", a holiday's name), or None if it is worked."""
        d = _day_of(day)
        year = self._year(d.year)
        if d in year.worked:
            return None
        name = year.names.get(d)
        if name is not None:
            return name
        if d in year.off:
            return "day off"
        if d.weekday() in _WEEKEND:
            return "weekend"
        return None

    def add_working_days(self, start: _dt.datetime, n: int) -> pendulum.DateTime:
        """Return the ``n``-th working day after ``start`` (before it when ``n`` is negative).

        The start's own date is never counted; ``n == 0`` returns ``start`` unchanged. The
        result keeps the time of day and the zone of ``start``.
        """
        begin = _aware_keep_zone(start, "start")
        if not isinstance(n, int) or isinstance(n, bool):
            raise DeadlineError(f"a number of working days must be an integer, not {n!r}")
        if n == 0:
            return begin
        target = _dt.date.fromordinal(self._shift_ordinal(std_date(begin).toordinal(), n))
        return wall_time(begin.tzinfo, target.year, target.month, target.day, begin.hour,
                         begin.minute, begin.second, begin.microsecond)

    def working_days_between(self, first: _dt.date, last: _dt.date) -> int:
        """Return how many working days lie in ``first .. last`` (both included)."""
        a, b = _day_of(first), _day_of(last)
        if b < a:
            return 0
        count = 0
        day = a
        one = _dt.timedelta(days=1)
        while day <= b:
            if self.is_working_day(day):
                count += 1
            day += one
        return count

    # -- internals ---------------------------------------------------------------------------

    def _shift_ordinal(self, ordinal: int, n: int) -> int:
        key = (ordinal, n)
        hit = self._shifts.get(key)
        if hit is not None:
            return hit
        result = self._count_ordinal(ordinal, n)
        if len(self._shifts) > 65536:
            self._shifts.clear()
        self._shifts[key] = result
        return result

    def _count_ordinal(self, ordinal: int, n: int) -> int:
        step = 1 if n >= 0 else -1
        remaining = abs(n)
        gap = 0
        flags = self._flags
        while remaining:
            ordinal += step
            flag = flags.get(ordinal)
            if flag is None:
                flag = self._working_ordinal(ordinal)
            if flag:
                remaining -= 1
                gap = 0
            else:
                gap += 1
                if gap > _MAX_GAP_DAYS:
                    day = _dt.date.fromordinal(ordinal).isoformat()
                    raise DeadlineError(
                        f"no working day within {_MAX_GAP_DAYS} days of {day}; "
                        "check the calendar's days off"
                    )
        return ordinal

    def _year(self, year: int) -> _Year:
        cached = self._years.get(year)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._years.get(year)
            if cached is None:
                cached = self._build_year(year)
                self._years[year] = cached
        return cached

    def _build_year(self, year: int) -> _Year:
        off: set[_dt.date] = set()
        worked: set[_dt.date] = set()
        names: dict[_dt.date, str] = {}
        touched = any(d.year == year for d in self._extra_off | self._extra_worked)
        if self.country == "CN":
            known = china_known_years()
            if year not in known and not touched and self.unknown_years == "error":
                span = f"{min(known)}-{max(known)}" if known else "no year"
                raise DeadlineError(
                    f"no official holiday schedule for {year} (the holidays package knows "
                    f"{span}); add that year's days off and make-up working days from the State "
                    f"Council's notice to the policy ([calendar] days_off = [...], working_days "
                    f"= [...]), upgrade the holidays package, or set unknown_years = 'estimate'"
                )
            off, worked, names = china_year(year, with_make_up=year in known)
        off |= {d for d in self._extra_off if d.year == year}
        for d in self._extra_off:
            if d.year == year and d not in names:
                names[d] = "day off (policy)"
        worked -= {d for d in self._extra_off if d.year == year}
        extra_worked = {d for d in self._extra_worked if d.year == year}
        off -= extra_worked
        for d in extra_worked:
            names.pop(d, None)
            if d.weekday() in _WEEKEND:
                worked.add(d)
        # A weekday listed as worked simply stops being a day off (it is no longer in ``off``).
        return _Year(frozenset(off), frozenset(worked), names)

    def __repr__(self) -> str:
        extras = len(self._extra_off) + len(self._extra_worked)
        name = "china" if self.country == "CN" else "weekends_only"
        return f"WorkingCalendar.{name}(<{extras} policy overrides>)"


# -- helpers ------------------------------------------------------------------------------------


def shift_date(calendar: WorkdayCalendar, day: _dt.date, n: int) -> _dt.date:
    """Return the ``n``-th working day of ``calendar`` after ``day`` (before it if negative)."""
    if isinstance(calendar, WorkingCalendar):
        return _dt.date.fromordinal(calendar._shift_ordinal(day.toordinal(), n))
    own = getattr(calendar, "add_working_days", None)
    if own is not None:
        start = pendulum.DateTime(day.year, day.month, day.day, 12, tzinfo=UTC)
        result = _aware_keep_zone(own(start, n), "the calendar's result")
        return _dt.date(result.year, result.month, result.day)
    if not hasattr(calendar, "is_working_day"):
        raise DeadlineError(
            f"{calendar!r} is not a working-day calendar: it needs is_working_day(date)"
        )
    step = _dt.timedelta(days=1 if n >= 0 else -1)
    remaining = abs(n)
    gap = 0
    while remaining:
        day += step
        if calendar.is_working_day(day):
            remaining -= 1
            gap = 0
        else:
            gap += 1
            if gap > _MAX_GAP_DAYS:
                raise DeadlineError(f"no working day within {_MAX_GAP_DAYS} days of {day}")
    return day


def add_working_days(calendar: WorkdayCalendar, start: _dt.datetime, n: int) -> pendulum.DateTime:
    """Return ``start`` moved by ``n`` working days of any calendar (a host's too).

    Uses the calendar's own ``add_working_days`` when it has one; otherwise steps day by day
    with its ``is_working_day``. The result keeps the time of day and zone of ``start``.
    """
    begin = _aware_keep_zone(start, "start")
    if not isinstance(n, int) or isinstance(n, bool):
        raise DeadlineError(f"a number of working days must be an integer, not {n!r}")
    if n == 0:
        return begin
    own = getattr(calendar, "add_working_days", None)
    if own is not None and not isinstance(calendar, WorkingCalendar):
        result: pendulum.DateTime = _aware_keep_zone(own(begin, n), "the calendar's result")
        return result
    day = shift_date(calendar, std_date(begin), n)
    return wall_time(begin.tzinfo, day.year, day.month, day.day, begin.hour, begin.minute,
                     begin.second, begin.microsecond)


class SkippedDays:
    """Describe the days off and make-up days a working-day step went over, for people.

    >>> cal = WorkingCalendar.china()
    >>> SkippedDays.between(cal, _dt.date(2016, 1, 20), _dt.date(2016, 1, 27)).text()
    'skipping 2016-01-23/24 weekend'
    """

    __slots__ = ("made_up", "runs")

    def __init__(self, runs: list[tuple[_dt.date, _dt.date, str]], made_up: list[_dt.date]):
        self.runs = runs
        self.made_up = made_up

    @classmethod
    def between(cls, calendar: WorkdayCalendar, start: _dt.date, end: _dt.date) -> SkippedDays:
        """Collect the days off strictly after ``start`` up to ``end`` (either direction)."""
        lo, hi = (start, end) if start <= end else (end, start)
        runs: list[tuple[_dt.date, _dt.date, str]] = []
        made_up: list[_dt.date] = []
        reason_of = getattr(calendar, "day_off_reason", None)
        make_up_of = getattr(calendar, "is_make_up_day", None)
        day = lo + _dt.timedelta(days=1) if start <= end else lo
        last = hi if start <= end else hi - _dt.timedelta(days=1)
        run_start: _dt.date | None = None
        run_reasons: list[str] = []
        while day <= last:
            working = calendar.is_working_day(day)
            if not working:
                reason = reason_of(day) if reason_of is not None else None
                reason = reason or ("weekend" if day.weekday() in _WEEKEND else "day off")
                if run_start is None:
                    run_start = day
                    run_reasons = []
                run_reasons.append(reason)
            else:
                if run_start is not None:
                    runs.append((run_start, day - _dt.timedelta(days=1), _run_label(run_reasons)))
                    run_start = None
                if make_up_of is not None and make_up_of(day):
                    made_up.append(day)
            day += _dt.timedelta(days=1)
        if run_start is not None:
            runs.append((run_start, last, _run_label(run_reasons)))
        return cls(runs, made_up)

    def text(self) -> str:
        """Return e.g. ``skipping 2016-02-07..13 Spring Festival (春节)``, or ``''``."""
        parts = []
        if self.runs:
            parts.append("skipping " + ", ".join(
                f"{_span(a, b)} {label}" for a, b, label in self.runs
            ))
        if self.made_up:
            days = ", ".join(f"{d.isoformat()} ({_WEEKDAY_ABBR[d.weekday()]})" for d in self.made_up)
            noun = "day" if len(self.made_up) == 1 else "days"
            parts.append(f"counting make-up working {noun} (调休) {days}")
        return ", ".join(parts)


def _run_label(reasons: list[str]) -> str:
    for reason in reasons:
        if reason not in ("weekend", "day off", "day off in lieu (调休)"):
            return reason
    if "day off in lieu (调休)" in reasons:
        return "days off in lieu (调休)"
    if "day off" in reasons:
        return "day off"
    return "weekend"


def _span(a: _dt.date, b: _dt.date) -> str:
    if a == b:
        return a.isoformat()
    if (a.year, a.month) == (b.year, b.month):
        sep = "/" if (b - a).days == 1 else ".."
        return f"{a.isoformat()}{sep}{b.day:02d}"
    return f"{a.isoformat()}..{b.isoformat()}"


def weekday_abbr(day: _dt.date) -> str:
    """Return the English three-letter weekday of ``day`` (``Wed``)."""
    return _WEEKDAY_ABBR[day.weekday()]


def _day_of(value: _dt.date) -> _dt.date:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            ensure_aware(value, what="day")  # raises the clear DeadlineError
        return _dt.date(value.year, value.month, value.day)
    if isinstance(value, _dt.date):
        return value
    raise DeadlineError(f"expected a date, got {type(value).__name__}: {value!r}")


def _aware_keep_zone(value: Any, what: str) -> pendulum.DateTime:
    """Return ``value`` as an aware pendulum datetime in its own zone; refuse a naive one."""
    if not isinstance(value, _dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        return ensure_aware(value, what=what)  # raises the clear DeadlineError
    if isinstance(value, pendulum.DateTime):
        return value
    return pendulum.instance(value)


def _as_date(value: Any, what: str) -> _dt.date:
    if isinstance(value, _dt.datetime):
        raise DeadlineError(f"{what}: {value!r} is a date-time; give a date such as 2027-02-06")
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise DeadlineError(f"{what}: {value!r} is not a date; write it as 2027-02-06")


_DAY_RANGE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})\s*$")


def parse_days(items: Any, field: str) -> list[_dt.date]:
    """Read a policy list of days: dates, ``"2027-02-06"`` or ranges ``"2027-02-05..2027-02-11"``.

    Raises :class:`~reviewflow.exceptions.PolicyError` naming ``field`` and the item.
    """
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise PolicyError(
            f"expected a list of dates, got {items!r}; write e.g. [\"2027-02-05..2027-02-11\"]",
            field=field,
        )
    out: list[_dt.date] = []
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        if isinstance(item, _dt.datetime):
            raise PolicyError(f"{item!r} is a date-time; give a date such as 2027-02-06", field=where)
        if isinstance(item, _dt.date):
            out.append(item)
            continue
        if isinstance(item, str):
            m = _DAY_RANGE.match(item)
            try:
                if m:
                    a = _dt.date.fromisoformat(m.group(1))
                    b = _dt.date.fromisoformat(m.group(2))
                    if b < a or (b - a).days > 366:
                        raise ValueError(item)
                    out.extend(a + _dt.timedelta(days=k) for k in range((b - a).days + 1))
                    continue
                out.append(_dt.date.fromisoformat(item.strip()))
                continue
            except ValueError:
                pass
        raise PolicyError(
            f"{item!r} is not a date or a range; write 2027-02-06 or \"2027-02-05..2027-02-11\"",
            field=where,
        )
    return out


_CALENDAR_KEYS = frozenset({"country", "days_off", "working_days", "unknown_years"})


def calendar_from_policy(settings: Mapping[str, Any] | None, field: str = "calendar") -> WorkingCalendar:
    """Build the working-day calendar a policy's ``[calendar]`` table describes.

    Keys: ``country`` ("CN", the default, or "none" for weekends only), ``days_off`` and
    ``working_days`` (lists of dates or ``"A..B"`` ranges), ``unknown_years``
    ("error", the default, or "estimate"). Raises :class:`PolicyError` naming the field.
    """
    data: Mapping[str, Any] = settings or {}
    if not isinstance(data, Mapping):
        raise PolicyError(f"expected a table, got {data!r}", field=field)
    unknown = sorted(set(data) - _CALENDAR_KEYS)
    if unknown:
        raise PolicyError(
            f"unknown setting {unknown[0]!r}; the calendar takes: {', '.join(sorted(_CALENDAR_KEYS))}",
            field=f"{field}.{unknown[0]}",
        )
    country_raw = data.get("country", "CN")
    country: str | None
    if isinstance(country_raw, str) and country_raw.upper() == "CN":
        country = "CN"
    elif country_raw is None or (isinstance(country_raw, str) and country_raw.lower() == "none"):
        country = None
    else:
        raise PolicyError(
            f"no built-in calendar for {country_raw!r}; use \"CN\" or \"none\" (weekends only), "
            "or pass your own calendar object to the campaign",
            field=f"{field}.country",
        )
    mode = data.get("unknown_years", "error")
    if mode not in ("error", "estimate"):
        raise PolicyError(
            f"{mode!r} is not allowed; write \"error\" (refuse a year with no official schedule) "
            "or \"estimate\"",
            field=f"{field}.unknown_years",
        )
    off = parse_days(data.get("days_off", ()), f"{field}.days_off")
    worked = parse_days(data.get("working_days", ()), f"{field}.working_days")
    clash = set(off) & set(worked)
    if clash:
        raise PolicyError(
            f"{min(clash).isoformat()} is both a day off and a working day; keep one",
            field=f"{field}.working_days",
        )
    return WorkingCalendar(
        country=country, extra_days_off=off, extra_working_days=worked,
        unknown_years="estimate" if country is None else mode,
    )
