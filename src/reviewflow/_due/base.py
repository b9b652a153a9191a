"""What every due rule shares: the :class:`DueContext` it is resolved against, the
:class:`DueRule` and :class:`Anchor` protocols, formatting, and the checks of years and offsets."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import attrs
import pendulum

from reviewflow.calendar import (
    WorkdayCalendar,
    WorkingCalendar,
    in_zone,
    wall_time,
    weekday_abbr,
)
from reviewflow.clock import DEFAULT_TZ, ensure_aware
from reviewflow.exceptions import DeadlineError
from reviewflow.model import Stage

if TYPE_CHECKING:
    from reviewflow.model import Case


DayTime = Literal["keep", "start", "end"]
DAY_TIMES = ("keep", "start", "end")


def fmt_time(value: pendulum.DateTime) -> str:
    """Format a due time for people: ``2016-01-18 00:00:00 CST``."""
    abbrev = value.strftime("%Z")
    if abbrev in ("", "+08"):
        abbrev = "CST" if value.utcoffset() == _dt.timedelta(hours=8) else value.strftime("%z")
    return f"{value.strftime('%Y-%m-%d %H:%M:%S')} {abbrev}"


def fmt_day(value: _dt.date) -> str:
    """Format a day for people: ``2016-01-20 (Wed)``."""
    return f"{value.isoformat()} ({weekday_abbr(value)})"


_DEFAULT_CALENDAR: WorkingCalendar | None = None


def _default_calendar() -> WorkingCalendar:
    global _DEFAULT_CALENDAR
    if _DEFAULT_CALENDAR is None:
        _DEFAULT_CALENDAR = WorkingCalendar.china()
    return _DEFAULT_CALENDAR


@attrs.frozen(kw_only=True)
class DueContext:
    """What a due rule may look at: the case (its stage entry times, meeting date, extensions),
    the campaign's time zone, and its working-day calendar (None: China's official calendar).

    ``stage`` is the stage whose due time is asked (extensions are per stage); ``rules`` maps
    each stage to its :class:`~reviewflow.policy.StageRule` (or due rule), so that a rule
    anchored on another stage's due time can resolve it.
    """

    case: Case | None = None
    tz: str = DEFAULT_TZ
    calendar: WorkdayCalendar | None = None
    #: Resolves another stage's due time (for rules anchored on it); overrides ``rules``.
    stage_due: StageDueFn | None = None
    stage: Stage | None = None
    rules: Mapping[Any, Any] = attrs.field(factory=dict)
    #: Stages being resolved, outermost first: a loop among them is an error, not a hang.
    visiting: tuple[Stage, ...] = ()

    @classmethod
    def bare(cls, tz: str = DEFAULT_TZ) -> DueContext:
        """A context with no case: for absolute rules and examples."""
        return cls(tz=tz)

    @classmethod
    def for_case(
        cls, case: Case | None, policy: Any = None, *, stage: Stage | str | None = None,
        calendar: WorkdayCalendar | None = None, tz: str | None = None,
    ) -> DueContext:
        """Return the context for ``case`` under ``policy`` (its zone and stage rules)."""
        rules = dict(getattr(policy, "stages", {}) or {})
        zone = tz or getattr(policy, "tz", None) or DEFAULT_TZ
        return cls(
            case=case, tz=zone, calendar=calendar, rules=rules,
            stage=None if stage is None else Stage(stage),
        )

    def working_calendar(self) -> WorkdayCalendar:
        """Return the calendar to count working days with."""
        return self.calendar if self.calendar is not None else _default_calendar()

    def with_stage(self, stage: Stage) -> DueContext:
        """Return this context asking about ``stage`` (refusing a loop of stage anchors)."""
        chain = self.visiting or ((self.stage,) if self.stage is not None else ())
        if stage in chain:
            loop = " -> ".join(s.value for s in (*chain, stage))
            raise DeadlineError(f"due rules refer to each other in a loop: {loop}")
        return attrs.evolve(self, stage=stage, visiting=(*chain, stage))


@runtime_checkable
class DueRule(Protocol):
    """A rule that gives a due time, or None while its anchor has not happened."""

    def resolve(self, ctx: DueContext) -> pendulum.DateTime | None: ...

    def explain(self, ctx: DueContext) -> list[str]: ...

    def to_json(self) -> Mapping[str, Any]: ...


@runtime_checkable
class Anchor(Protocol):
    """A moment a relative rule counts from: a stage entry, another due time, the meeting."""

    def resolve(self, ctx: DueContext) -> pendulum.DateTime | None: ...

    def describe(self, ctx: DueContext, value: pendulum.DateTime | None) -> list[str]: ...

    def to_json(self) -> Any: ...


#: The years a policy's dates may fall in (those of ``Policy.year``).
YEARS = range(1950, 2200)
#: The largest offset, either way, of a relative due rule or a rung, per unit (about four
#: years: a campaign's deadlines fall within a few months).
MAX_OFFSETS: Mapping[str, int] = {"working_days": 1000, "days": 1500, "hours": 36_000}


def check_year(value: _dt.date, what: str) -> None:
    """Raise :class:`DeadlineError` unless ``value`` falls in :data:`YEARS`."""
    if value.year not in YEARS:
        raise DeadlineError(f"{what} {value.isoformat()} is out of range: a policy's dates fall "
                            f"in the years {YEARS.start} to {YEARS.stop - 1}")


def check_offset(n: int, unit: str, what: str) -> None:
    limit = MAX_OFFSETS.get(unit)
    if limit is not None and not -limit <= n <= limit:
        raise DeadlineError(f"{what} {n} {unit} is out of range: at most {limit} {unit} either "
                            "way; a campaign's deadlines fall within a few months")


def aware(value: _dt.datetime) -> pendulum.DateTime:
    if isinstance(value, _dt.datetime):
        check_year(value, "due time")
    return ensure_aware(value, what="due time")


def parse_instant(text: Any, what: str, tz: str) -> pendulum.DateTime:
    """Read an aware ISO time (or datetime) as the same instant in ``tz``."""
    if isinstance(text, _dt.datetime):
        value = text
    else:
        try:
            value = _dt.datetime.fromisoformat(str(text))
        except ValueError:
            raise DeadlineError(f"{what} {text!r} is not an ISO date-time") from None
    if value.tzinfo is None or value.utcoffset() is None:
        return ensure_aware(value, what=what, tz=tz)  # raises the clear DeadlineError
    return in_zone(value, tz)


def set_time(value: pendulum.DateTime, time: DayTime) -> pendulum.DateTime:
    if time == "start":
        return wall_time(value.tzinfo, value.year, value.month, value.day)
    if time == "end":
        return wall_time(value.tzinfo, value.year, value.month, value.day, 23, 59, 59, 999999)
    return value

#: A function giving another stage's due time, for :attr:`DueContext.stage_due`.
StageDueFn = Callable[[Stage], "pendulum.DateTime | None"]
