"""The checks every vote, score and publication step makes before it runs: the stage the
case is in and the role the actor acts in; a refusal is journaled before it is raised."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reviewflow.exceptions import BallotError, InputError, TransitionRefused
from reviewflow.model import Actor, Case, Stage

if TYPE_CHECKING:
    from reviewflow._engine.context import StepContext

__all__ = ["RESULT_STAGES", "VOTE_STAGES", "acting_role", "ballot_refusal", "check_stage",
           "guarded"]

#: Stages in which the vote may be prepared, cast, counted and closed.
VOTE_STAGES = frozenset({Stage.MEETING, Stage.EVALUATION})
#: Stages in which results may be published (the vote has closed by then).
RESULT_STAGES = frozenset({Stage.EVALUATION, Stage.GROUP_TALK, Stage.REPORT_BACK, Stage.CLOSED})


def acting_role(ctx: StepContext, case: Case, actor: Actor, permission: str, event: str) -> str:
    permitted = ctx.policy.permissions.get(permission, frozenset())
    held = ctx.roles_for(case, actor) & permitted
    if not held:
        names = ", ".join(f"{r} ({ctx.policy.role_label(r)})" for r in sorted(permitted))
        raise TransitionRefused(
            "not_permitted", f"{actor.id} may not {event}: it needs the role {names or 'none'}",
            case_id=case.case_id, event=event,
        )
    return min(held)


def check_stage(case: Case, event: str, stages: frozenset[Stage]) -> None:
    if case.stage not in stages:
        names = ", ".join(f"{s.label} ({s.value})" for s in Stage if s in stages)
        raise TransitionRefused(
            "wrong_stage",
            f"the case is in {case.stage.label} ({case.stage.value}); {event} needs {names}",
            case_id=case.case_id, event=event,
        )


def guarded(ctx: StepContext, case_id: str, event: str, actor: Actor, permission: str,
             stages: frozenset[Stage]) -> str:
    """Check stage and role up front (journaling a refusal); return the acting role."""
    case = ctx.case(case_id)
    try:
        check_stage(case, event, stages)
        return acting_role(ctx, case, actor, permission, event)
    except TransitionRefused as exc:
        _now, iso = ctx.now()
        raise ctx.refuse(case, event, actor, exc, iso) from None


def ballot_refusal(case: Case, event: str, exc: BallotError | InputError) -> TransitionRefused:
    reason = exc.reason or "invalid_data"  # an InputError without a code of its own
    return TransitionRefused(reason, str(exc).rsplit(" [", 1)[0], case_id=case.case_id,
                             event=event)
