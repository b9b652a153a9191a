"""Who may fire what, now, and why not: pure functions of the policy, the case and the actor.

:func:`guard` is the check every step makes before its handler runs (``Campaign.fire``,
``fire_many``) and that :func:`allowed` (``Campaign.allowed``) makes for every event:
the stage, the role (a ``secretary`` acts as secretary only on their own case), the
sign-off levels (分级审阅: one level per signature, nobody signs their own report or two
levels of it), guidance-group membership (指导组), and the time window (``too_early``
before a stage opens, ``deadline_passed`` after a hard deadline and its grace). It returns
the acting role and the refusals, as :class:`~reviewflow.exceptions.TransitionRefused`
with their reason codes; it reads no store and no clock (the caller gives ``now`` and the
case's due time, as a value or as a function of the case and the stage).

>>> import pendulum
>>> from reviewflow.model import Actor, Case, Stage
>>> from reviewflow.policy import Policy, StageRule
>>> policy = Policy.default(year=2016)
>>> li = Actor("li", "李书记", roles={"secretary"})
>>> case = Case("2016", "s1", "一中", li, Stage.DRAFTING, 2, "", {})
>>> now = pendulum.datetime(2016, 1, 10, tz="Asia/Shanghai")
>>> guard(policy, case, "submit_report", li, now, None)
('secretary', [])
>>> role, refusals = guard(policy, case, "sign_off", li, now, None, collect=True)
>>> [r.reason for r in refusals]
['wrong_stage', 'self_sign_off']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import pendulum

from reviewflow._lifecycle import BY_NAME, FIRED, LifecycleEvent
from reviewflow.deadlines import fmt_time
from reviewflow.exceptions import TransitionRefused
from reviewflow.model import Actor, Case, Stage
from reviewflow.policy import Policy, StageRule

__all__ = ["Due", "allowed", "guard", "roles_for", "side_step_role"]

#: The case's due time for leaving a stage: a value, or ``due(case, stage)`` (called only
#: when a hard deadline applies to the step).
Due: TypeAlias = "Callable[[Case, Stage], pendulum.DateTime | None] | pendulum.DateTime | None"

_NOBODY: frozenset[str] = frozenset()
_SECRETARY = frozenset({"secretary"})
_SOURCES: dict[str, Stage] = {e.name: e.source for e in FIRED if e.source is not None}
_LABELS: dict[str, str] = {e.name: e.label for e in BY_NAME.values()}
#: The events that move the stage (a hard deadline refuses them once passed).
_MOVES = frozenset(e.name for e in FIRED if e.dest is not None)


def roles_for(case: Case, actor: Actor) -> frozenset[str]:
    """The roles an actor holds for this case: ``secretary`` only for their own case."""
    roles = actor.roles
    if "secretary" in roles and actor.id != case.secretary.id:
        roles = roles - _SECRETARY
    return roles


def guard(
    policy: Policy, case: Case, event: str, actor: Actor, now: pendulum.DateTime, due: Due,
    *, collect: bool = False,
) -> tuple[str, list[TransitionRefused]]:
    """Check stage, role and time rules for firing ``event``; return the acting role and
    the refusals (empty: allowed). ``collect=False`` stops at the first refusal (the step
    path); ``collect=True`` gathers every reason (``allowed``)."""
    refusals: list[TransitionRefused] = []
    source = _SOURCES[event]
    if case.stage is not source:
        refusals.append(TransitionRefused(
            "wrong_stage",
            f"the case is in {case.stage.label} ({case.stage.value}); {event} "
            f"({_LABELS[event]}) needs {source.label} ({source.value})",
            case_id=case.case_id, event=event,
        ))
        if not collect:
            return "", refusals
    permitted = policy.permissions.get(event, _NOBODY)
    roles = actor.roles
    if "secretary" in roles and actor.id != case.secretary.id:  # see roles_for
        roles = roles - _SECRETARY
    held = roles & permitted
    role = ""
    if event == "sign_off":
        role = _sign_off_role(policy, case, actor, held, refusals)
    elif event == "return_for_revision":
        role = _reviewer_role(policy, case, actor, held, refusals)
    elif held:
        role = min(held)
    else:
        refusals.append(_not_permitted(policy, case, event, actor, permitted))
    if refusals and not collect:
        return role, refusals
    rule = policy.stages.get(source)  # most stages have no window and no hard deadline
    if rule is not None and (rule.opens is not None or rule.hard):
        _time_rules(policy, rule, case, event, source, now, due, refusals)
    return role, refusals


def allowed(
    policy: Policy, case: Case, actor: Actor, now: pendulum.DateTime, due: Due,
) -> list[tuple[LifecycleEvent, list[TransitionRefused]]]:
    """Every event ``fire`` takes, in the lifecycle's order, with every reason ``actor``
    may not fire it on ``case`` at ``now`` (an empty list: allowed)."""
    return [(e, guard(policy, case, e.name, actor, now, due, collect=True)[1]) for e in FIRED]


def side_step_role(
    policy: Policy, event: str, actor: Actor, *, what: str, default: frozenset[str],
    roles: frozenset[str] | None = None, case_id: str | None = None,
) -> tuple[str, TransitionRefused | None]:
    """The role through which ``actor`` may take a side step (``extend``: ``what`` is
    "extend a deadline (延期)"), or the ``not_permitted`` refusal (for ``case_id``).

    The policy's roles for ``event`` apply (``default`` when it names none), checked
    against ``roles`` (default: all the actor's roles; give ``roles_for(case, actor)`` to
    count ``secretary`` only on their own case)."""
    permitted = policy.permissions.get(event, default)
    held = (actor.roles if roles is None else roles) & permitted
    if held:
        return min(held), None
    names = ", ".join(sorted(permitted)) or "nobody"
    return "", TransitionRefused(
        "not_permitted", f"{actor.id} may not {what}: it needs the role {names}",
        case_id=case_id, event=event,
    )


def _not_permitted(
    policy: Policy, case: Case, event: str, actor: Actor, permitted: frozenset[str],
) -> TransitionRefused:
    names = ", ".join(f"{r} ({policy.role_label(r)})" for r in sorted(permitted)) or "nobody"
    extra = ""
    if "secretary" in permitted and "secretary" in actor.roles:
        extra = f"; only the case's own secretary ({case.secretary.id}) acts as secretary here"
    return TransitionRefused(
        "not_permitted",
        f"{actor.id} may not {event} ({_LABELS[event]}): it needs the role {names}{extra}",
        case_id=case.case_id, event=event,
    )


def _sign_off_role(
    policy: Policy, case: Case, actor: Actor, held: frozenset[str],
    refusals: list[TransitionRefused],
) -> str:
    levels = policy.approval_levels
    signatures = case.data.get("signatures", ())
    index = min(len(signatures), len(levels) - 1)
    level = levels[index]
    cid = case.case_id
    if actor.id == case.secretary.id:
        refusals.append(TransitionRefused(
            "self_sign_off",
            f"{actor.id} is this case's secretary and cannot sign off their own report",
            case_id=cid, event="sign_off",
        ))
        return ""
    usable = held & level.roles
    if not usable:
        names = ", ".join(f"{r} ({policy.role_label(r)})" for r in sorted(level.roles))
        refusals.append(TransitionRefused(
            "not_permitted",
            f"level {index + 1} ({level.label or level.name}) is signed by {names}; "
            f"{actor.id} holds none of these roles",
            case_id=cid, event="sign_off",
        ))
        return ""
    if any(s.get("actor") == actor.id for s in signatures):
        refusals.append(TransitionRefused(
            "already_signed",
            f"{actor.id} already signed an earlier level of this report; "
            f"another person signs level {index + 1} ({level.label or level.name})",
            case_id=cid, event="sign_off",
        ))
    role = min(usable)
    if role == "guidance_group":
        _group_member(policy, case, actor, "sign_off", refusals)
    return role


def _reviewer_role(
    policy: Policy, case: Case, actor: Actor, held: frozenset[str],
    refusals: list[TransitionRefused],
) -> str:
    if actor.id == case.secretary.id or not held:
        permitted = policy.permissions.get("return_for_revision", _NOBODY)
        refusals.append(_not_permitted(policy, case, "return_for_revision", actor, permitted))
        return ""
    role = min(held)
    if role == "guidance_group" and held == {"guidance_group"}:
        _group_member(policy, case, actor, "return_for_revision", refusals)
    return role


def _group_member(
    policy: Policy, case: Case, actor: Actor, event: str, refusals: list[TransitionRefused],
) -> None:
    groups = policy.guidance_groups
    if not groups:
        return
    assigned = case.data.get("guidance_group")
    if assigned is not None:
        if actor.id not in groups.get(assigned, ()):
            refusals.append(TransitionRefused(
                "not_in_group",
                f"case {case.case_id} is reviewed by guidance group {assigned!r} "
                f"(指导组); {actor.id} is not a member of it",
                case_id=case.case_id, event=event,
            ))
    elif not any(actor.id in members for members in groups.values()):
        refusals.append(TransitionRefused(
            "not_in_group",
            f"{actor.id} is not a member of any guidance group (指导组)",
            case_id=case.case_id, event=event,
        ))


def _time_rules(
    policy: Policy, rule: StageRule, case: Case, event: str, source: Stage,
    now: pendulum.DateTime, due: Due, refusals: list[TransitionRefused],
) -> None:
    if rule.opens is not None and now < rule.opens:
        opens = rule.opens.in_timezone(pendulum.timezone(policy.tz))
        refusals.append(TransitionRefused(
            "too_early",
            f"{source.label} ({source.value}) opens at {fmt_time(opens)}; "
            f"{event} ({_LABELS[event]}) cannot happen before then",
            case_id=case.case_id, event=event,
        ))
    if rule.hard and rule.due is not None and event in _MOVES:
        at = due(case, source) if callable(due) else due
        if at is not None and now > (at + rule.grace if rule.grace else at):
            refusals.append(TransitionRefused(
                "deadline_passed",
                f"the deadline for {source.label} ({source.value}) passed at "
                f"{fmt_time(at)}; ask the organizer for an extension",
                case_id=case.case_id, event=event,
                details={"due": at.isoformat(), "now": now.isoformat()},
            ))
