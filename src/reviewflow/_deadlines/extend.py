"""Extensions: move one case's due time for a stage later, with a reason."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

import pendulum

from reviewflow import _corrections
from reviewflow._chain import seal
from reviewflow._deadlines.explain import _stage_arg
from reviewflow._deadlines.rows import EXTEND_EVENT
from reviewflow._deadlines.state import _commit, _state, commit_extras
from reviewflow._deadlines.sweep import _now
from reviewflow.clock import ensure_aware
from reviewflow.deadlines import check_year, fmt_time
from reviewflow.exceptions import TransitionRefused
from reviewflow.model import Actor, Case, Stage
from reviewflow.permissions import side_step_role

if TYPE_CHECKING:
    from reviewflow.campaign import Campaign


# -- extensions ---------------------------------------------------------------------------------


def extend(campaign: Campaign, case_id: str, stage: Stage | str, until: _dt.datetime,
           reason: str, actor: Actor) -> Case:
    """Extend one case's due time for ``stage`` to ``until``, with a reason (an event).

    Only the roles the policy permits for ``extend`` (default: the organizer) may. The new
    time must be later than the current one; the stage must not be behind the case.
    Refusals are :class:`TransitionRefused` (``not_permitted``, ``missing_data``,
    ``wrong_stage``, ``no_deadline``, ``not_later``) and change nothing.
    """
    which = _stage_arg(stage)
    if isinstance(until, _dt.datetime):  # out of range, it would overflow in later steps
        check_year(until, "the extended due time")
    when = ensure_aware(until, what="the extended due time", tz=campaign.policy.tz)
    st = _state(campaign)
    _, iso = _campaign_now(campaign)
    case = campaign.case(case_id)

    def refuse(code: str, message: str) -> TransitionRefused:
        return journal(TransitionRefused(code, message, case_id=case_id, event=EXTEND_EVENT))

    def journal(error: TransitionRefused) -> TransitionRefused:
        refuse_fn = getattr(campaign, "_refuse", None)
        if refuse_fn is not None:
            refused: TransitionRefused = refuse_fn(case, EXTEND_EVENT, actor, error, iso)
            return refused
        return error

    last = case.data.get("last_at")
    if last is not None and _corrections.backwards(iso, last):
        raise refuse("time_backwards", _corrections.backwards_message(iso, last))
    role, refusal = side_step_role(campaign.policy, EXTEND_EVENT, actor,
                                   what="extend a deadline (延期)",
                                   default=frozenset({"organizer"}), case_id=case_id)
    if refusal is not None:
        raise journal(refusal)
    if not isinstance(reason, str) or not reason.strip():
        raise refuse("missing_data", "an extension needs a reason (延期理由): reason=\"...\"")
    if which.order < case.stage.order or which is Stage.CLOSED:
        raise refuse("wrong_stage",
                     f"the case has left {which.label} ({which.value}); only its current or a "
                     "later stage can be extended")
    current = st.due(case, which)
    if current is None:
        raise refuse("no_deadline",
                     f"{which.label} ({which.value}) has no due time for this case to extend")
    if when <= current:
        raise refuse("not_later",
                     f"{fmt_time(when)} is not later than the current due time "
                     f"{fmt_time(current)}; an extension must move the deadline later")
    after = case.copy()
    extensions = dict(after.data.get("extensions") or {})
    extensions[which.value] = {
        "until": when.isoformat(), "reason": reason, "by": actor.id, "at": iso,
        "previous": current.isoformat(),
    }
    after.data["extensions"] = extensions
    after.data["last_at"] = iso
    record = seal(
        campaign.id, case.case_id, case.version + 1, EXTEND_EVENT, actor.id, role, iso,
        case.stage.value, case.stage.value, reason,
        _corrections.mark({"stage": which.value, "until": when.isoformat(),
                           "previous_due": current.isoformat()}, campaign.clock),
        case.last_hash,
    )
    after.version = case.version + 1
    after.last_hash = record.hash
    extras = commit_extras(campaign, after, case.stage)
    error = campaign.store.commit([_commit(after, case.version, (record,), extras, campaign)])[0]
    if error is not None:
        raise error
    result = after.copy().bind(campaign.store)
    after_commit = getattr(campaign, "_after_commit", None)
    if after_commit is not None:
        after_commit((record,), result)
    return result


def _campaign_now(campaign: Campaign) -> tuple[pendulum.DateTime, str]:
    inner = getattr(campaign, "_now", None)
    if inner is not None:
        now, iso = inner()
        return now, iso
    now = _now(campaign, None)
    return now, now.isoformat()
