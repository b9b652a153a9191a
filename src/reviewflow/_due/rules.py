"""Rules built on others: :class:`After` (N working or calendar days after an anchor),
:class:`EarlierOf`, :class:`LaterOf`."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs
import pendulum

from reviewflow._due.base import DAY_TIMES, Anchor, DayTime, DueContext, DueRule, check_offset, fmt_time
from reviewflow.calendar import (
    SkippedDays,
    in_zone,
    shift_date,
    wall_time,
)
from reviewflow.exceptions import DeadlineError

Unit = Literal["working_days", "days"]


@attrs.frozen(kw_only=True)
class After:
    """N working days (or calendar days) after an anchor; negative N counts back.

    >>> import pendulum
    >>> from reviewflow.deadlines import At
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
        if self.time not in DAY_TIMES:
            raise DeadlineError(f"time must be 'keep', 'start' or 'end', not {self.time!r}")
        if not isinstance(self.n, int) or isinstance(self.n, bool):
            raise DeadlineError(f"the number of {self.unit} must be a whole number, not {self.n!r}")
        check_offset(self.n, self.unit, "a due rule of")

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
