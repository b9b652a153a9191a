"""Due times as data: rules that say when a stage is due, and how that was derived.

A stage's due rule is resolved against a :class:`DueContext` (the case, the
policy's calendar and time zone). Every rule can explain itself step by step.

>>> import pendulum
>>> rule = At(pendulum.datetime(2016, 1, 18, tz="Asia/Shanghai"))
>>> rule.explain(DueContext.bare())
['fixed due time 2016-01-18 00:00:00 CST']
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs
import pendulum

from reviewflow.clock import DEFAULT_TZ, ensure_aware

if TYPE_CHECKING:
    from reviewflow.model import Case


__all__ = ["At", "DueContext", "DueRule", "fmt_time"]


def fmt_time(value: pendulum.DateTime) -> str:
    """Format a due time for people: ``2016-01-18 00:00:00 CST``."""
    abbrev = value.strftime("%Z")
    if abbrev in ("", "+08"):
        abbrev = "CST" if value.utcoffset() == _dt.timedelta(hours=8) else value.strftime("%z")
    return f"{value.strftime('%Y-%m-%d %H:%M:%S')} {abbrev}"


@attrs.frozen(kw_only=True)
class DueContext:
    """What a due rule may look at: the case (its stage entry times, meeting date, extensions),
    the campaign's time zone, and its working-day calendar (None: calendar days only)."""

    case: Case | None = None
    tz: str = DEFAULT_TZ
    calendar: Any = None
    #: Resolves another stage's due time (for rules anchored on it).
    stage_due: Any = None

    @classmethod
    def bare(cls, tz: str = DEFAULT_TZ) -> DueContext:
        """A context with no case: for absolute rules and examples."""
        return cls(tz=tz)


@runtime_checkable
class DueRule(Protocol):
    """A rule that gives a due time, or None while its anchor has not happened."""

    def resolve(self, ctx: DueContext) -> pendulum.DateTime | None: ...

    def explain(self, ctx: DueContext) -> list[str]: ...

    def to_json(self) -> Mapping[str, Any]: ...


def _aware(value: _dt.datetime) -> pendulum.DateTime:
    return ensure_aware(value, what="due time")


@attrs.frozen
class At:
    """A fixed due time (aware)."""

    at: pendulum.DateTime = attrs.field(converter=_aware)

    def resolve(self, ctx: DueContext) -> pendulum.DateTime | None:
        """Return the fixed time in the campaign's zone."""
        return self.at.in_timezone(ctx.tz)

    def explain(self, ctx: DueContext) -> list[str]:
        """Say it is a fixed time."""
        return [f"fixed due time {fmt_time(self.at.in_timezone(ctx.tz))}"]

    def to_json(self) -> Mapping[str, Any]:
        """Return the rule as policy-file data."""
        return {"at": self.at.isoformat()}


def due_rule_from_json(data: Any, field: str) -> DueRule:
    """Build a due rule from policy-file data; raise :class:`PolicyError` naming ``field``.

    Accepts ``{"at": "2016-01-18T00:00:00+08:00"}`` (an aware ISO time or a TOML datetime).
    """
    from reviewflow.exceptions import PolicyError

    if isinstance(data, Mapping) and "at" in data:
        value = data["at"]
        if isinstance(value, str):
            try:
                value = pendulum.parse(value)
            except Exception:
                raise PolicyError(
                    f"{value!r} is not a date-time; write e.g. 2016-01-18T00:00:00+08:00",
                    field=f"{field}.at",
                ) from None
        if not isinstance(value, _dt.datetime) or value.tzinfo is None:
            raise PolicyError(
                f"{value!r} needs a date, a time and an offset, e.g. 2016-01-18T00:00:00+08:00",
                field=f"{field}.at",
            )
        return At(value)
    raise PolicyError(
        f"cannot read a due rule from {data!r}; write e.g. {{ at = 2016-01-18T00:00:00+08:00 }}",
        field=field,
    )
