"""Due times as data: rules that say when a stage is due, how that was derived, and what
happens around it (grace, hard or soft, reminder and escalation ladders).

A stage's due rule is resolved against a :class:`DueContext` (the case, the policy's
calendar and time zone). Every rule can explain itself step by step.

>>> import pendulum
>>> rule = At(pendulum.datetime(2016, 1, 18, tz="Asia/Shanghai"))
>>> rule.explain(DueContext.bare())
['fixed due time 2016-01-18 00:00:00 CST']

The rules:

* :class:`At` a fixed instant; :class:`OnDay` a calendar day in the campaign's zone;
* :class:`After` N working days or N calendar days after an anchor: the case entering a
  stage (:class:`Entered`), another stage's due time (:class:`StageDue`), the meeting date
  (:class:`MeetingDate`) or a fixed time;
* :class:`EarlierOf` and :class:`LaterOf` of two or more rules.

"End of day" is explicit: ``time="start"`` means 00:00:00 of the day, ``time="end"`` its
last instant (23:59:59.999999, shown as 23:59:59), ``time="keep"`` the anchor's time of day.
A step is late when it happens after the due time; at the due time exactly it is on time.

Pure functions for the engine: :func:`effective_due` and :func:`explain_due` (they honour
a per-case extension), :func:`deadline_status` (grace, hard or soft), and the ladder's
:func:`rung_schedule`, :func:`due_rungs` and :func:`next_fire`.
"""

from __future__ import annotations

import datetime as _dt
import enum
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import attrs
import pendulum

from reviewflow.calendar import (
    SkippedDays,
    WorkingCalendar,
    in_zone,
    shift_date,
    utc_offset,
    wall_time,
    weekday_abbr,
    zone,
)
from reviewflow.clock import DEFAULT_TZ, ensure_aware
from reviewflow.exceptions import DeadlineError, PolicyError
from reviewflow.model import Stage

if TYPE_CHECKING:
    from reviewflow.model import Case


__all__ = [
    "After",
    "Anchor",
    "At",
    "DueContext",
    "DueRule",
    "DueState",
    "EarlierOf",
    "Entered",
    "LaterOf",
    "MeetingDate",
    "OnDay",
    "Rung",
    "StageDue",
    "check_due_rules",
    "deadline_status",
    "default_report_ladder",
    "due_rule_from_json",
    "due_rungs",
    "effective_due",
    "explain_due",
    "extension_of",
    "fmt_day",
    "fmt_time",
    "ladder_from_json",
    "next_fire",
    "rung_key",
    "rung_schedule",
]

DayTime = Literal["keep", "start", "end"]
_DAY_TIMES = ("keep", "start", "end")


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
    calendar: Any = None
    #: Resolves another stage's due time (for rules anchored on it); overrides ``rules``.
    stage_due: Any = None
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
        calendar: Any = None, tz: str | None = None,
    ) -> DueContext:
        """Return the context for ``case`` under ``policy`` (its zone and stage rules)."""
        rules = dict(getattr(policy, "stages", {}) or {})
        zone = tz or getattr(policy, "tz", None) or DEFAULT_TZ
        return cls(
            case=case, tz=zone, calendar=calendar, rules=rules,
            stage=None if stage is None else Stage(stage),
        )

    def working_calendar(self) -> Any:
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


def _check_offset(n: int, unit: str, what: str) -> None:
    limit = MAX_OFFSETS.get(unit)
    if limit is not None and not -limit <= n <= limit:
        raise DeadlineError(f"{what} {n} {unit} is out of range: at most {limit} {unit} either "
                            "way; a campaign's deadlines fall within a few months")


def _aware(value: _dt.datetime) -> pendulum.DateTime:
    if isinstance(value, _dt.datetime):
        check_year(value, "due time")
    return ensure_aware(value, what="due time")


def _parse_instant(text: Any, what: str, tz: str) -> pendulum.DateTime:
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


def _set_time(value: pendulum.DateTime, time: DayTime) -> pendulum.DateTime:
    if time == "start":
        return wall_time(value.tzinfo, value.year, value.month, value.day)
    if time == "end":
        return wall_time(value.tzinfo, value.year, value.month, value.day, 23, 59, 59, 999999)
    return value


# -- anchors and rules ---------------------------------------------------------------------------


@attrs.frozen
class At:
    """A fixed due time (aware)."""

    at: pendulum.DateTime = attrs.field(converter=_aware)

    def resolve(self, ctx: DueContext) -> pendulum.DateTime | None:
        """Return the fixed time in the campaign's zone."""
        return in_zone(self.at, ctx.tz)

    def explain(self, ctx: DueContext) -> list[str]:
        """Say it is a fixed time."""
        return [f"fixed due time {fmt_time(self.at.in_timezone(ctx.tz))}"]

    def describe(self, ctx: DueContext, value: pendulum.DateTime | None) -> list[str]:
        """Describe the fixed time as an anchor."""
        return [f"from {fmt_time(self.at.in_timezone(ctx.tz))}"]

    def to_json(self) -> Mapping[str, Any]:
        """Return the rule as policy-file data."""
        return {"at": self.at.isoformat()}


@attrs.frozen(kw_only=True)
class OnDay:
    """A calendar day in the campaign's zone, at its start or its end (the default)."""

    day: _dt.date
    time: DayTime = "end"

    def __attrs_post_init__(self) -> None:
        if isinstance(self.day, _dt.date):
            check_year(self.day, "due day")

    def resolve(self, ctx: DueContext) -> pendulum.DateTime | None:
        """Return the day's start or end in the campaign's zone."""
        base = wall_time(zone(ctx.tz), self.day.year, self.day.month, self.day.day)
        return _set_time(base, self.time if self.time != "keep" else "start")

    def explain(self, ctx: DueContext) -> list[str]:
        """Say which day and which end of it."""
        value = self.resolve(ctx)
        assert value is not None
        which = "start" if self.time in ("start", "keep") else "end"
        return [f"due on {fmt_day(self.day)}, {which} of day = {fmt_time(value)}"]

    def describe(self, ctx: DueContext, value: pendulum.DateTime | None) -> list[str]:
        """Describe the day as an anchor."""
        return [f"from {fmt_day(self.day)}"]

    def to_json(self) -> Mapping[str, Any]:
        """Return the rule as policy-file data."""
        return {"on": self.day.isoformat(), "time": self.time}


def _stage(value: Stage | str) -> Stage:
    try:
        return Stage(value)
    except ValueError:
        known = ", ".join(s.value for s in Stage)
        raise DeadlineError(f"unknown stage {value!r}; stages are: {known}") from None


@attrs.frozen
class Entered:
    """When the case entered a stage (recorded by the engine in ``data["entered"]``)."""

    stage: Stage = attrs.field(converter=_stage)

    def resolve(self, ctx: DueContext) -> pendulum.DateTime | None:
        """Return the time the case (last) entered the stage, or None."""
        case = ctx.case
        if case is None:
            return None
        entered = case.data.get("entered") or {}
        raw = entered.get(self.stage.value)
        if raw is None:
            return None
        return _parse_instant(raw, f"entry time of {self.stage.value}", ctx.tz)

    def describe(self, ctx: DueContext, value: pendulum.DateTime | None) -> list[str]:
        """Say when the case entered the stage."""
        name = f"{self.stage.value} ({self.stage.label})"
        if value is None:
            return [f"the case has not entered {name} yet"]
        return [f"entered {name} {fmt_time(value)} ({weekday_abbr(value.date())})"]

    def to_json(self) -> Any:
        """Return the anchor as policy-file text."""
        return f"entered:{self.stage.value}"


@attrs.frozen
class StageDue:
    """Another stage's due time for this case (with its extension, if any)."""

    stage: Stage = attrs.field(converter=_stage)

    def resolve(self, ctx: DueContext) -> pendulum.DateTime | None:
        """Return the other stage's effective due time, or None."""
        if ctx.stage_due is not None:
            value = ctx.stage_due(self.stage)
            return None if value is None else in_zone(_aware(value), ctx.tz)
        sub = ctx.with_stage(self.stage)
        return effective_due(ctx.rules.get(self.stage), sub)

    def describe(self, ctx: DueContext, value: pendulum.DateTime | None) -> list[str]:
        """Say how the other stage's due time was derived."""
        name = f"{self.stage.value} ({self.stage.label})"
        if ctx.stage_due is not None:
            steps: list[str] = []
        else:
            steps = [f"{name}: {s}" for s in explain_due(ctx.rules.get(self.stage),
                                                         ctx.with_stage(self.stage))]
        if value is None:
            return [*steps, f"{name} has no due time yet"]
        return [*steps, f"{name} due {fmt_time(value)}"]

    def to_json(self) -> Any:
        """Return the anchor as policy-file text."""
        return f"due:{self.stage.value}"


@attrs.frozen
class MeetingDate:
    """The day the case's meeting (述职评议会) was held (``data["meeting"]["date"]``)."""

    def resolve(self, ctx: DueContext) -> pendulum.DateTime | None:
        """Return the start of the meeting day in the campaign's zone, or None."""
        case = ctx.case
        if case is None:
            return None
        meeting = case.data.get("meeting") or {}
        raw = meeting.get("date") if isinstance(meeting, Mapping) else None
        if raw is None:
            return None
        day = _meeting_day(raw)
        return wall_time(zone(ctx.tz), day.year, day.month, day.day)

    def describe(self, ctx: DueContext, value: pendulum.DateTime | None) -> list[str]:
        """Say when the meeting was held."""
        if value is None:
            return ["the meeting has not been held yet"]
        return [f"meeting held {fmt_day(value.date())}"]

    def to_json(self) -> Any:
        """Return the anchor as policy-file text."""
        return "meeting"


def _meeting_day(raw: Any) -> _dt.date:
    if isinstance(raw, _dt.datetime):
        return raw.date()
    if isinstance(raw, _dt.date):
        return raw
    text = str(raw)
    try:
        return _dt.date.fromisoformat(text[:10])
    except ValueError:
        raise DeadlineError(f"meeting date {raw!r} is not an ISO date such as 2016-01-20") from None


Unit = Literal["working_days", "days"]


@attrs.frozen(kw_only=True)
class After:
    """N working days (or calendar days) after an anchor; negative N counts back.

    >>> import pendulum
    >>> r = After(anchor=At(pendulum.datetime(2016, 1, 20, 10, tz="Asia/Shanghai")), n=5)
    >>> fmt_time(r.resolve(DueContext.bare()))
    '2016-01-27 23:59:59 CST'
    """

    anchor: Anchor
    n: int
    unit: Unit = "working_days"
    time: DayTime = "end"

    def __attrs_post_init__(self) -> None:
        if self.unit not in ("working_days", "days"):
            raise DeadlineError(f"unit must be 'working_days' or 'days', not {self.unit!r}")
        if self.time not in _DAY_TIMES:
            raise DeadlineError(f"time must be 'keep', 'start' or 'end', not {self.time!r}")
        if not isinstance(self.n, int) or isinstance(self.n, bool):
            raise DeadlineError(f"the number of {self.unit} must be a whole number, not {self.n!r}")
        _check_offset(self.n, self.unit, "a due rule of")

    def resolve(self, ctx: DueContext) -> pendulum.DateTime | None:
        """Return the anchor moved by N days, with the declared time of day; None if no anchor."""
        base = self.anchor.resolve(ctx)
        if base is None:
            return None
        return self._from(in_zone(base, ctx.tz), ctx)

    def _from(self, base: pendulum.DateTime, ctx: DueContext) -> pendulum.DateTime:
        d = _dt.date(base.year, base.month, base.day)
        if self.unit == "working_days":
            d = shift_date(ctx.working_calendar(), d, self.n) if self.n else d
        else:
            d += _dt.timedelta(days=self.n)
        if self.time == "end":
            return wall_time(base.tzinfo, d.year, d.month, d.day, 23, 59, 59, 999999)
        if self.time == "start":
            return wall_time(base.tzinfo, d.year, d.month, d.day)
        return wall_time(base.tzinfo, d.year, d.month, d.day, base.hour, base.minute,
                         base.second, base.microsecond)

    def explain(self, ctx: DueContext) -> list[str]:
        """Say the anchor, the days counted (and skipped) and the result."""
        base = self.anchor.resolve(ctx)
        steps = list(self.anchor.describe(ctx, base))
        if base is None:
            return [*steps, "no due time until then"]
        base = in_zone(base, ctx.tz)
        value = self._from(base, ctx)
        noun = "working day" if self.unit == "working_days" else "calendar day"
        noun += "" if abs(self.n) == 1 else "s"
        step = f"{self.n:+d} {noun}"
        if self.unit == "working_days":
            skipped = SkippedDays.between(ctx.working_calendar(), base.date(), value.date()).text()
            if skipped:
                step += f", {skipped}"
        steps.append(f"{step} = {fmt_time(value)}")
        return steps

    def to_json(self) -> Mapping[str, Any]:
        """Return the rule as policy-file data."""
        anchor = self.anchor.to_json()
        return {"after": dict(anchor) if isinstance(anchor, Mapping) else anchor,
                self.unit: self.n, "time": self.time}


def _rules(value: Iterable[DueRule]) -> tuple[DueRule, ...]:
    rules = tuple(value)
    if len(rules) < 2:
        raise DeadlineError("give at least two rules to choose between")
    return rules


@attrs.frozen
class EarlierOf:
    """The earliest of several rules; a part whose anchor has not happened yet is left out."""

    rules: tuple[DueRule, ...] = attrs.field(converter=_rules)

    def resolve(self, ctx: DueContext) -> pendulum.DateTime | None:
        """Return the earliest resolved part, or None when none resolves."""
        values = [v for v in (r.resolve(ctx) for r in self.rules) if v is not None]
        return min(values) if values else None

    def explain(self, ctx: DueContext) -> list[str]:
        """Explain each part, then the choice."""
        return _explain_choice(self.rules, ctx, self.resolve(ctx), "earlier")

    def to_json(self) -> Mapping[str, Any]:
        """Return the rule as policy-file data."""
        return {"earliest": [dict(r.to_json()) for r in self.rules]}


@attrs.frozen
class LaterOf:
    """The latest of several rules; unknown until every part resolves."""

    rules: tuple[DueRule, ...] = attrs.field(converter=_rules)

    def resolve(self, ctx: DueContext) -> pendulum.DateTime | None:
        """Return the latest part, or None while any part has no anchor yet."""
        values = [r.resolve(ctx) for r in self.rules]
        if any(v is None for v in values):
            return None
        return max(v for v in values if v is not None)

    def explain(self, ctx: DueContext) -> list[str]:
        """Explain each part, then the choice."""
        return _explain_choice(self.rules, ctx, self.resolve(ctx), "later")

    def to_json(self) -> Mapping[str, Any]:
        """Return the rule as policy-file data."""
        return {"latest": [dict(r.to_json()) for r in self.rules]}


def _explain_choice(
    rules: Sequence[DueRule], ctx: DueContext, value: pendulum.DateTime | None, which: str
) -> list[str]:
    steps: list[str] = []
    for i, rule in enumerate(rules, 1):
        steps.extend(f"({i}) {s}" for s in rule.explain(ctx))
    if value is None:
        steps.append(f"the {which} of them is not known yet")
    else:
        steps.append(f"the {which} of them: {fmt_time(value)}")
    return steps


# -- extensions, effective due time, status ----------------------------------------------------


@attrs.frozen(kw_only=True)
class Extension:
    """A per-case extension of one stage's due time (``data["extensions"][stage]``)."""

    until: pendulum.DateTime
    reason: str = ""
    by: str | None = None


def extension_of(case: Case | None, stage: Stage | str | None, tz: str = DEFAULT_TZ) -> Extension | None:
    """Return the extension recorded on ``case`` for ``stage``, if any."""
    if case is None or stage is None:
        return None
    extensions = case.data.get("extensions") or {}
    raw = extensions.get(Stage(stage).value)
    if not raw:
        return None
    until = _parse_instant(raw.get("until"), "extension time", tz)
    by = raw.get("by") or raw.get("actor")
    return Extension(until=until, reason=str(raw.get("reason") or ""),
                     by=None if by is None else str(by))


def _due_rule_of(rule: Any) -> DueRule | None:
    if rule is None:
        return None
    if hasattr(rule, "resolve"):
        return rule  # type: ignore[no-any-return]  # a due rule itself
    due: DueRule | None = getattr(rule, "due", None)
    return due


def effective_due(rule: Any, ctx: DueContext) -> pendulum.DateTime | None:
    """Return the due time of ``ctx.stage`` for ``ctx.case``: the rule, then any extension.

    ``rule`` is a :class:`~reviewflow.policy.StageRule`, a due rule, or None. An extension
    replaces the rule's due time when it is later (an extension never shortens a deadline).
    """
    due_rule = _due_rule_of(rule)
    base = None if due_rule is None else due_rule.resolve(ctx)
    ext = extension_of(ctx.case, ctx.stage, ctx.tz)
    if ext is None:
        return base
    if base is None or ext.until > base:
        return ext.until
    return base


def explain_due(rule: Any, ctx: DueContext) -> list[str]:
    """Return the steps that derive ``ctx.stage``'s due time, extension included."""
    due_rule = _due_rule_of(rule)
    steps = ["no due time set"] if due_rule is None else list(due_rule.explain(ctx))
    base = None if due_rule is None else due_rule.resolve(ctx)
    ext = extension_of(ctx.case, ctx.stage, ctx.tz)
    if ext is not None:
        who = f" by {ext.by}" if ext.by else ""
        why = f": {ext.reason}" if ext.reason else ""
        if base is None or ext.until > base:
            steps.append(f"extended for this case{who} to {fmt_time(ext.until)}{why}")
        else:
            steps.append(
                f"an extension{who} to {fmt_time(ext.until)} is not later than the due time; "
                "the due time stands"
            )
    return steps


class DueState(enum.StrEnum):
    """Where a stage stands against its due time (stable codes for hosts and the engine)."""

    #: The stage has no due rule.
    NO_DEADLINE = "no_deadline"
    #: The rule's anchor has not happened yet (e.g. no meeting held), so no due time.
    NOT_SCHEDULED = "not_scheduled"
    #: At or before the due time.
    ON_TIME = "on_time"
    #: After the due time, within the grace period: allowed, marked late.
    LATE_WITHIN_GRACE = "late_within_grace"
    #: After due time and grace, soft deadline: allowed, marked late.
    LATE_SOFT = "late_soft"
    #: After due time and grace, hard deadline: the step is refused (``deadline_passed``).
    PASSED_HARD = "passed_hard"

    @property
    def is_late(self) -> bool:
        """True when the due time has passed."""
        return self in (DueState.LATE_WITHIN_GRACE, DueState.LATE_SOFT, DueState.PASSED_HARD)

    @property
    def refuses(self) -> bool:
        """True when the step out of the stage must be refused."""
        return self is DueState.PASSED_HARD


def deadline_status(
    rule: Any, ctx: DueContext, now: _dt.datetime
) -> tuple[pendulum.DateTime | None, DueState]:
    """Return ``(due, state)`` for ``ctx.stage`` at ``now`` under a stage rule.

    Late means strictly after the due time. Within ``rule.grace`` after it the state is
    ``late_within_grace`` (allowed, marked late, even for a hard deadline); after that
    ``passed_hard`` for a hard deadline, ``late_soft`` for a soft one. A later ``now``
    never gives an earlier state.
    """
    at = ensure_aware(now, what="now", tz=ctx.tz)
    if _due_rule_of(rule) is None and extension_of(ctx.case, ctx.stage, ctx.tz) is None:
        return None, DueState.NO_DEADLINE
    due = effective_due(rule, ctx)
    if due is None:
        return None, DueState.NOT_SCHEDULED
    if at <= due:
        return due, DueState.ON_TIME
    grace = getattr(rule, "grace", None)
    if grace and at <= due + grace:
        return due, DueState.LATE_WITHIN_GRACE
    return due, DueState.PASSED_HARD if getattr(rule, "hard", False) else DueState.LATE_SOFT


# -- reminder and escalation ladders ------------------------------------------------------------

RungUnit = Literal["working_days", "days", "hours"]
RungAction = Literal["remind", "escalate", "auto"]
AutoAction = Literal["return_report", "mark_missed"]
_RUNG_UNITS = ("working_days", "days", "hours")
_RUNG_ACTIONS = ("remind", "escalate", "auto")
_AUTO_ACTIONS = ("return_report", "mark_missed")
_UNIT_ABBR = {"working_days": "wd", "days": "d", "hours": "h"}
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_RUNG_ID = re.compile(r"^[A-Za-z0-9_.:+-]{1,64}$")


def _check_rung(rung: Rung) -> None:
    if rung.unit not in _RUNG_UNITS:
        raise DeadlineError(f"rung unit must be one of {', '.join(_RUNG_UNITS)}, not {rung.unit!r}")
    if rung.action not in _RUNG_ACTIONS:
        raise DeadlineError(
            f"rung action must be one of {', '.join(_RUNG_ACTIONS)}, not {rung.action!r}"
        )
    if rung.auto is not None and rung.action != "auto":
        raise DeadlineError(f"rung {rung.id!r}: auto = {rung.auto!r} needs action = 'auto'")
    if rung.auto is not None and rung.auto not in _AUTO_ACTIONS:
        raise DeadlineError(
            f"rung {rung.id!r}: auto must be one of {', '.join(_AUTO_ACTIONS)} or absent, "
            f"not {rung.auto!r}"
        )
    if rung.time is not None and not _HHMM.match(rung.time):
        raise DeadlineError(f"rung {rung.id!r}: time must be HH:MM (e.g. 09:00), not {rung.time!r}")
    if not _RUNG_ID.match(rung.id):
        raise DeadlineError(
            f"rung id {rung.id!r} must be 1-64 letters, digits or _ . : + -"
        )
    if rung.time is not None and rung.unit == "hours":
        raise DeadlineError(f"rung {rung.id!r}: a time of day makes no sense with hours")
    _check_offset(rung.offset, rung.unit, f"rung {rung.id!r}: an offset of")


def _default_rung_id(rung: Any) -> str:
    return f"{rung.action}{rung.offset:+d}{_UNIT_ABBR.get(rung.unit, rung.unit)}"


def _default_to(rung: Any) -> str | None:
    return {"remind": "owner", "escalate": "organizer"}.get(rung.action)


@attrs.frozen(kw_only=True)
class Rung:
    """One rung of a reminder/escalation ladder, relative to a stage's due time (T).

    ``offset`` counts ``unit`` (working days, calendar days or hours) from T; negative is
    before it. ``action`` is ``remind`` (tell ``to``, by default the stage's owner),
    ``escalate`` (tell ``to``, by default the organizer) or ``auto`` (do ``auto``:
    ``return_report``, ``mark_missed``, or nothing but the hook). ``time`` ("09:00") sets the
    time of day for day units; without it the rung keeps T's time of day. ``id`` is stable:
    it names the rung in the marks that make it fire once.

    >>> Rung(offset=-3, action="remind", to="secretary").id
    'remind-3wd'
    """

    offset: int
    unit: RungUnit = "working_days"
    action: RungAction = "remind"
    to: str | None = attrs.field(
        default=attrs.Factory(_default_to, takes_self=True),
        converter=attrs.converters.optional(str),
    )
    auto: AutoAction | None = None
    time: str | None = None
    id: str = attrs.field(
        default=attrs.Factory(_default_rung_id, takes_self=True), converter=str
    )

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.offset, int) or isinstance(self.offset, bool):
            raise DeadlineError(f"rung offset must be an integer, not {self.offset!r}")
        _check_rung(self)

    def fire_at(self, due: pendulum.DateTime, ctx: DueContext) -> pendulum.DateTime:
        """Return when this rung fires for a stage due at ``due``."""
        base = in_zone(due, ctx.tz)
        if self.unit == "hours":
            return in_zone(in_zone(base, "UTC") + _dt.timedelta(hours=self.offset), base.tzinfo)
        d = _dt.date(base.year, base.month, base.day)
        if self.unit == "working_days":
            d = shift_date(ctx.working_calendar(), d, self.offset) if self.offset else d
        else:
            d += _dt.timedelta(days=self.offset)
        if self.time is not None:
            return wall_time(base.tzinfo, d.year, d.month, d.day, int(self.time[:2]),
                             int(self.time[3:]))
        return wall_time(base.tzinfo, d.year, d.month, d.day, base.hour, base.minute,
                         base.second, base.microsecond)

    def describe(self) -> str:
        """Say the rung in words: ``remind secretary at T-3 working days``."""
        unit = {"working_days": "working day", "days": "day", "hours": "hour"}[self.unit]
        when = "at T" if self.offset == 0 else (
            f"at T{self.offset:+d} {unit}{'' if abs(self.offset) == 1 else 's'}"
        )
        if self.time is not None:
            when += f" {self.time}"
        if self.action == "auto":
            what = f"auto-action {self.auto}" if self.auto else "auto-action (hook only)"
        else:
            what = f"{self.action} {self.to}"
        return f"{what} {when}"

    def to_json(self) -> dict[str, Any]:
        """Return the rung as policy-file data."""
        out: dict[str, Any] = {"id": self.id, self.unit: self.offset, "action": self.action}
        if self.to is not None:
            out["to"] = self.to
        if self.auto is not None:
            out["auto"] = self.auto
        if self.time is not None:
            out["time"] = self.time
        return out


def default_report_ladder() -> tuple[Rung, ...]:
    """Return the seed's ladder for the report deadline.

    Remind the secretary at 09:00 three working days and one working day before the due
    time; escalate to the organizer when it passes.
    """
    return (
        Rung(id="remind-3wd", offset=-3, action="remind", to="secretary", time="09:00"),
        Rung(id="remind-1wd", offset=-1, action="remind", to="secretary", time="09:00"),
        Rung(id="escalate-at-due", offset=0, action="escalate", to="organizer"),
    )


def rung_key(rung: Rung, due: _dt.datetime) -> str:
    """Return the mark that says ``rung`` fired for a stage due at ``due``.

    The due time is part of the key: when a case re-enters a stage or is extended, its new
    due time gets its own reminders.
    """
    return f"{rung.id}@{due_tag(due)}"


def due_tag(due: _dt.datetime) -> str:
    """Return the due-time part of :func:`rung_key` (the same for every rung of one due time)."""
    off = utc_offset(due)
    if off is None:
        raise DeadlineError(f"due time {due!r} has no time zone")
    utc = _dt.datetime(due.year, due.month, due.day, due.hour, due.minute, due.second,
                       due.microsecond) - off
    return f"{utc.isoformat(timespec='microseconds')}Z"


def rung_schedule(
    ladder: Sequence[Rung], due: pendulum.DateTime, ctx: DueContext
) -> list[tuple[Rung, pendulum.DateTime]]:
    """Return each rung with its fire time for a stage due at ``due``, in firing order."""
    timed = [(rung.fire_at(due, ctx), i, rung) for i, rung in enumerate(ladder)]
    timed.sort(key=lambda t: (t[0], t[1]))
    return [(rung, at) for at, _, rung in timed]


def due_rungs(
    ladder: Sequence[Rung], due: pendulum.DateTime, ctx: DueContext, now: _dt.datetime,
    fired: Collection[str] = (),
) -> list[tuple[Rung, pendulum.DateTime]]:
    """Return the rungs whose fire time is at or before ``now`` and that have not fired."""
    at = ensure_aware(now, what="now", tz=ctx.tz)
    return [
        (rung, when) for rung, when in rung_schedule(ladder, due, ctx)
        if when <= at and rung_key(rung, due) not in fired
    ]


def next_fire(
    ladder: Sequence[Rung], due: pendulum.DateTime, ctx: DueContext,
    fired: Collection[str] = (),
) -> pendulum.DateTime | None:
    """Return the earliest fire time among rungs that have not fired, or None."""
    for rung, when in rung_schedule(ladder, due, ctx):
        if rung_key(rung, due) not in fired:
            return when
    return None


def ladder_from_json(items: Any, field: str) -> tuple[Rung, ...]:
    """Build a ladder from policy-file data; raise :class:`PolicyError` naming ``field``.

    Each item is a table with exactly one of ``working_days``, ``days`` or ``hours`` (the
    offset from the due time, negative before it), ``action`` (remind, escalate, auto),
    and optionally ``to``, ``auto``, ``time`` and ``id``.
    """
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise PolicyError(
            f"a ladder is a list of rungs, got {items!r}; write e.g. "
            "[{ working_days = -3, action = \"remind\", to = \"secretary\" }]",
            field=field,
        )
    rungs: list[Rung] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        if not isinstance(item, Mapping):
            raise PolicyError(f"a rung is a table, got {item!r}", field=where)
        allowed = {"id", "action", "to", "auto", "time", *_RUNG_UNITS}
        extra = sorted(set(item) - allowed)
        if extra:
            raise PolicyError(
                f"unknown key {extra[0]!r}; a rung takes: {', '.join(sorted(allowed))}",
                field=f"{where}.{extra[0]}",
            )
        units = [u for u in _RUNG_UNITS if u in item]
        if len(units) != 1:
            raise PolicyError(
                "give exactly one of working_days, days or hours (the offset from the due "
                "time, negative before it)", field=where,
            )
        unit: RungUnit = units[0]  # type: ignore[assignment]  # one of _RUNG_UNITS
        offset = item[unit]
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise PolicyError(f"{offset!r} is not a whole number", field=f"{where}.{unit}")
        try:
            kwargs = {k: item[k] for k in ("to", "auto", "time", "id") if k in item}
            rung = Rung(offset=offset, unit=unit, action=item.get("action", "remind"), **kwargs)
        except DeadlineError as exc:
            raise PolicyError(str(exc), field=where) from None
        if rung.id in seen:
            raise PolicyError(
                f"rung id {rung.id!r} is used twice; give each rung its own id",
                field=f"{where}.id",
            )
        seen.add(rung.id)
        rungs.append(rung)
    return tuple(rungs)


# -- reading rules from policy files ---------------------------------------------------------


def _parse_aware(value: Any, field: str) -> _dt.datetime:
    if isinstance(value, str):
        try:  # not pendulum.parse: it would take a time without an offset as UTC
            value = _dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise PolicyError(
                f"{value!r} is not a date-time; write e.g. 2016-01-18T00:00:00+08:00",
                field=field,
            ) from None
    if not isinstance(value, _dt.datetime) or value.tzinfo is None:
        raise PolicyError(
            f"{value!r} needs a date, a time and an offset, e.g. 2016-01-18T00:00:00+08:00",
            field=field,
        )
    return value


def _parse_day(value: Any, field: str) -> _dt.date:
    if isinstance(value, _dt.datetime):
        raise PolicyError(f"{value!r} is a date-time; give a day such as 2016-01-17", field=field)
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise PolicyError(f"{value!r} is not a day; write e.g. 2016-01-17", field=field)


def _parse_time(data: Mapping[str, Any], field: str, default: DayTime) -> DayTime:
    value = data.get("time", default)
    if value not in _DAY_TIMES:
        raise PolicyError(
            f"{value!r} is not a time of day rule; write \"end\" (23:59:59), \"start\" (00:00) "
            "or \"keep\" (the anchor's time)", field=f"{field}.time",
        )
    return value  # type: ignore[no-any-return]  # checked against _DAY_TIMES


def _anchor_from_json(value: Any, field: str) -> Anchor:
    if isinstance(value, str):
        text = value.strip()
        if text == "meeting":
            return MeetingDate()
        kind, _, stage = text.partition(":")
        if kind in ("entered", "due") and stage:
            try:
                return Entered(stage) if kind == "entered" else StageDue(stage)
            except DeadlineError as exc:
                raise PolicyError(str(exc), field=field) from None
    elif isinstance(value, Mapping):
        rule = due_rule_from_json(value, field)
        if isinstance(rule, (At, OnDay)):
            return rule
        raise PolicyError("a table anchor must be { at = ... } or { on = ... }", field=field)
    raise PolicyError(
        f"cannot read an anchor from {value!r}; write \"entered:<stage>\", \"due:<stage>\", "
        "\"meeting\", or { at = 2016-01-11T00:00:00+08:00 }",
        field=field,
    )


_RULE_KEYS = {
    "at": {"at"},
    "on": {"on", "time"},
    "after": {"after", "working_days", "days", "time"},
    "earliest": {"earliest"},
    "latest": {"latest"},
}


def due_rule_from_json(data: Any, field: str) -> DueRule:
    """Build a due rule from policy-file data; raise :class:`PolicyError` naming ``field``.

    Accepts ``{at = 2016-01-18T00:00:00+08:00}`` (an aware ISO time or a TOML datetime),
    ``{on = 2016-01-17, time = "end"}``, ``{after = "meeting", working_days = 5}``
    (anchors: ``"entered:<stage>"``, ``"due:<stage>"``, ``"meeting"``, or a table
    ``{at = ...}``; ``days`` for calendar days; ``time`` "end" by default, "start" or
    "keep"), ``{earliest = [rule, rule]}`` and ``{latest = [rule, rule]}``.
    """
    if not isinstance(data, Mapping):
        raise PolicyError(
            f"cannot read a due rule from {data!r}; write e.g. {{ at = 2016-01-18T00:00:00+08:00 }}",
            field=field,
        )
    kinds = [k for k in _RULE_KEYS if k in data]
    if len(kinds) != 1:
        raise PolicyError(
            f"cannot read a due rule from {dict(data)!r}; give exactly one of at, on, after, "
            "earliest, latest, e.g. { at = 2016-01-18T00:00:00+08:00 } or "
            "{ after = \"meeting\", working_days = 5 }",
            field=field,
        )
    kind = kinds[0]
    extra = sorted(set(data) - _RULE_KEYS[kind])
    if extra:
        raise PolicyError(
            f"{extra[0]!r} does not go with {kind!r}; this rule takes: "
            f"{', '.join(sorted(_RULE_KEYS[kind]))}",
            field=f"{field}.{extra[0]}",
        )
    if kind == "at":
        return At(_parse_aware(data["at"], f"{field}.at"))
    if kind == "on":
        return OnDay(day=_parse_day(data["on"], f"{field}.on"),
                     time=_parse_time(data, field, "end"))
    if kind == "after":
        units = [u for u in ("working_days", "days") if u in data]
        if len(units) != 1:
            raise PolicyError(
                "give exactly one of working_days or days with after", field=field
            )
        unit: Unit = units[0]  # type: ignore[assignment]  # working_days or days
        n = data[unit]
        if not isinstance(n, int) or isinstance(n, bool) or abs(n) > 3660:
            raise PolicyError(f"{n!r} is not a sensible whole number of days", field=f"{field}.{unit}")
        anchor = _anchor_from_json(data["after"], f"{field}.after")
        return After(anchor=anchor, n=n, unit=unit, time=_parse_time(data, field, "end"))
    parts = data[kind]
    if isinstance(parts, (str, bytes, Mapping)) or not isinstance(parts, Iterable):
        raise PolicyError(f"{kind} takes a list of two or more rules", field=f"{field}.{kind}")
    rules = [due_rule_from_json(p, f"{field}.{kind}[{i}]") for i, p in enumerate(parts)]
    if len(rules) < 2:
        raise PolicyError(f"{kind} takes a list of two or more rules", field=f"{field}.{kind}")
    return EarlierOf(rules) if kind == "earliest" else LaterOf(rules)


def _stage_refs(rule: Any) -> Iterable[tuple[str, Stage]]:
    if isinstance(rule, After):
        anchor = rule.anchor
        if isinstance(anchor, StageDue):
            yield "due", anchor.stage
        elif isinstance(anchor, Entered):
            yield "entered", anchor.stage
        else:
            yield from _stage_refs(anchor)
    elif isinstance(rule, (EarlierOf, LaterOf)):
        for part in rule.rules:
            yield from _stage_refs(part)


def check_due_rules(stages: Mapping[Any, Any], field: str = "stages") -> None:
    """Refuse stage due rules that refer to each other in a loop, or to a stage's own due.

    ``stages`` maps each stage to its :class:`~reviewflow.policy.StageRule` (or due rule).
    Raises :class:`PolicyError` naming the field.
    """
    graph: dict[Stage, set[Stage]] = {}
    for stage, rule in stages.items():
        due = _due_rule_of(rule)
        graph[Stage(stage)] = {s for kind, s in _stage_refs(due) if kind == "due"}
    state: dict[Stage, int] = {}

    def visit(node: Stage, path: list[Stage]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ()), key=lambda s: s.order):
            if state.get(nxt) == 1:
                loop = " -> ".join(s.value for s in [*path[path.index(nxt):], nxt])
                raise PolicyError(
                    f"due rules refer to each other in a loop ({loop}); anchor one of them on "
                    "a fixed time, a stage entry or the meeting",
                    field=f"{field}.{node.value}.due",
                )
            if state.get(nxt) is None:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph, key=lambda s: s.order):
        if state.get(node) is None:
            visit(node, [node])


def explain_text(steps: Sequence[str]) -> str:
    """Join explanation steps into one line, as ``explain_due`` shows them."""
    return "; ".join(steps)


#: A function giving another stage's due time, for :attr:`DueContext.stage_due`.
StageDueFn = Callable[[Stage], "pendulum.DateTime | None"]
