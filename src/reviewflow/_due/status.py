"""A case's due time with its extension, its explanation, and its :class:`DueState`."""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs
import pendulum

from reviewflow._due.base import DueContext, DueRule, fmt_time, parse_instant
from reviewflow.clock import DEFAULT_TZ, ensure_aware
from reviewflow.model import Stage

if TYPE_CHECKING:
    from reviewflow.model import Case


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
    until = parse_instant(raw.get("until"), "extension time", tz)
    by = raw.get("by") or raw.get("actor")
    return Extension(until=until, reason=str(raw.get("reason") or ""),
                     by=None if by is None else str(by))


def due_rule_of(rule: Any) -> DueRule | None:
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
    due_rule = due_rule_of(rule)
    base = None if due_rule is None else due_rule.resolve(ctx)
    ext = extension_of(ctx.case, ctx.stage, ctx.tz)
    if ext is None:
        return base
    if base is None or ext.until > base:
        return ext.until
    return base


def explain_due(rule: Any, ctx: DueContext) -> list[str]:
    """Return the steps that derive ``ctx.stage``'s due time, extension included."""
    due_rule = due_rule_of(rule)
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
    if due_rule_of(rule) is None and extension_of(ctx.case, ctx.stage, ctx.tz) is None:
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

def explain_text(steps: Sequence[str]) -> str:
    """Join explanation steps into one line, as ``explain_due`` shows them."""
    return "; ".join(steps)
