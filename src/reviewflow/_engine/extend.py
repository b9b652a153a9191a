"""Extensions (延期): move one case's due time for a stage later, with a reason.

An extension is a side step on the engine's one path
(:meth:`~reviewflow._engine.context.StepContext.side_step`): the same checks of the
command, the same seal and version check, the same refusal journal, outbox and hooks as
every other step.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import pendulum

from reviewflow import _ids
from reviewflow._engine.context import StepContext
from reviewflow._engine.deadline_work import EXTEND_EVENT, DeadlineWork
from reviewflow._engine.sweep import stage_arg
from reviewflow.clock import ensure_aware
from reviewflow.deadlines import check_year, fmt_time
from reviewflow.exceptions import TransitionRefused
from reviewflow.model import Actor, Case, Stage
from reviewflow.permissions import side_step_role

__all__ = ["extend"]


def extend(ctx: StepContext, work: DeadlineWork, case_id: str, stage: Stage | str,
           until: _dt.datetime, reason: str, actor: Actor) -> Case:
    """Extend one case's due time for ``stage`` to ``until``, with a reason (an event).

    Only the roles the policy permits for ``extend`` (default: the organizer) may. The new
    time must be later than the current one; the stage must not be behind the case.
    Refusals are :class:`TransitionRefused` (``not_permitted``, ``missing_data``,
    ``wrong_stage``, ``no_deadline``, ``not_later``, ``time_backwards``) and change nothing.
    """
    _ids.check_command(actor, None, 0)  # as fire: an Actor, or InputError
    which = stage_arg(stage)
    if isinstance(until, _dt.datetime):  # out of range, it would overflow in later steps
        check_year(until, "the extended due time")
    when = ensure_aware(until, what="the extended due time", tz=ctx.policy.tz)
    role, not_permitted = side_step_role(ctx.policy, EXTEND_EVENT, actor,
                                         what="extend a deadline (延期)",
                                         default=frozenset({"organizer"}), case_id=case_id)

    def apply(case: Case, now: pendulum.DateTime) -> tuple[dict[str, Any], str | None,
                                                           tuple[object, ...]]:
        def refuse(code: str, message: str) -> TransitionRefused:
            return TransitionRefused(code, message, case_id=case.case_id, event=EXTEND_EVENT)

        if not_permitted is not None:
            raise not_permitted
        if not isinstance(reason, str) or not reason.strip():
            raise refuse("missing_data", "an extension needs a reason (延期理由): reason=\"...\"")
        if which.order < case.stage.order or which is Stage.CLOSED:
            raise refuse("wrong_stage",
                         f"the case has left {which.label} ({which.value}); only its current "
                         "or a later stage can be extended")
        current = work.due(case, which)
        if current is None:
            raise refuse("no_deadline",
                         f"{which.label} ({which.value}) has no due time for this case to extend")
        if when <= current:
            raise refuse("not_later",
                         f"{fmt_time(when)} is not later than the current due time "
                         f"{fmt_time(current)}; an extension must move the deadline later")
        iso = now.isoformat()
        extensions = dict(case.data.get("extensions") or {})
        extensions[which.value] = {
            "until": when.isoformat(), "reason": reason, "by": actor.id, "at": iso,
            "previous": current.isoformat(),
        }
        case.data["extensions"] = extensions
        data = {"stage": which.value, "until": when.isoformat(),
                "previous_due": current.isoformat()}
        return data, reason, work.commit_extras(case, case.stage)

    return ctx.side_step(case_id, EXTEND_EVENT, actor=actor, role=role, apply=apply, retries=0)
