"""Reminder and escalation ladders: :class:`Rung`, the seed's ladder, when rungs come due."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Collection, Sequence
from typing import Any, Literal

import attrs
import pendulum

from reviewflow._due.base import DueContext, check_offset
from reviewflow.calendar import (
    in_zone,
    shift_date,
    utc_offset,
    wall_time,
)
from reviewflow.clock import ensure_aware
from reviewflow.exceptions import DeadlineError

RungUnit = Literal["working_days", "days", "hours"]
RungAction = Literal["remind", "escalate", "auto"]
AutoAction = Literal["return_report", "mark_missed"]
RUNG_UNITS = ("working_days", "days", "hours")
_RUNG_ACTIONS = ("remind", "escalate", "auto")
_AUTO_ACTIONS = ("return_report", "mark_missed")
_UNIT_ABBR = {"working_days": "wd", "days": "d", "hours": "h"}
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_RUNG_ID = re.compile(r"^[A-Za-z0-9_.:+-]{1,64}$")


def _check_rung(rung: Rung) -> None:
    if rung.unit not in RUNG_UNITS:
        raise DeadlineError(f"rung unit must be one of {', '.join(RUNG_UNITS)}, not {rung.unit!r}")
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
    check_offset(rung.offset, rung.unit, f"rung {rung.id!r}: an offset of")


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
