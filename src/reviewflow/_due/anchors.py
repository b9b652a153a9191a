"""Fixed due times and anchors: :class:`At`, :class:`OnDay`, :class:`Entered`,
:class:`StageDue`, :class:`MeetingDate`."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

import attrs
import pendulum

from reviewflow._due.base import (
    DayTime,
    DueContext,
    aware,
    check_year,
    fmt_day,
    fmt_time,
    parse_instant,
    set_time,
)
from reviewflow._due.status import effective_due, explain_due
from reviewflow.calendar import (
    in_zone,
    wall_time,
    weekday_abbr,
    zone,
)
from reviewflow.exceptions import DeadlineError
from reviewflow.model import Stage


@attrs.frozen
class At:
    """A fixed due time (aware)."""

    at: pendulum.DateTime = attrs.field(converter=aware)

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
        return set_time(base, self.time if self.time != "keep" else "start")

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
        return parse_instant(raw, f"entry time of {self.stage.value}", ctx.tz)

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
            return None if value is None else in_zone(aware(value), ctx.tz)
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
