"""Forecast and explain: what will be overdue and fire, and how a due time was derived."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

import attrs
import pendulum

from reviewflow._deadlines.results import DueExplanation, FiredRung, Forecast, OverdueCase
from reviewflow._deadlines.state import _fired, _state
from reviewflow._deadlines.sweep import _candidates, _now, _rung_step
from reviewflow.deadlines import Rung, deadline_status
from reviewflow.deadlines import explain_due as _explain_steps
from reviewflow.exceptions import InputError
from reviewflow.model import Stage

if TYPE_CHECKING:
    from reviewflow.campaign import Campaign


# -- forecast and explain -------------------------------------------------------------------


def forecast(campaign: Campaign, at: _dt.datetime) -> Forecast:
    """Say, without changing anything, which cases will be overdue at ``at`` and which rungs
    a sweep at ``at`` would fire (the same code as :func:`sweep`)."""
    when = _now(campaign, at)
    st = _state(campaign)
    store = campaign.store
    rungs: list[FiredRung] = []
    for case_id in _candidates(campaign, st, when, overdue=False):
        case = store.get(campaign.id, case_id)
        if case is None:
            continue
        step = _rung_step(campaign, st, case, when)
        if step is not None:
            rungs.extend(attrs.evolve(f, seq=None) for f in step.fired)
    overdue: list[OverdueCase] = []
    for case_id in _candidates(campaign, st, when, overdue=True):
        case = store.get(campaign.id, case_id)
        if case is None:
            continue
        stage = case.stage
        due, state = deadline_status(st.policy.stage(stage), st.ctx(case, stage), when)
        if due is not None and state.is_late:
            overdue.append(OverdueCase(case_id=case_id, stage=stage, due=due, state=state))
    overdue.sort(key=lambda o: (o.due, o.case_id))
    return Forecast(at=when, overdue=tuple(overdue), rungs=tuple(rungs))


def explain_due(campaign: Campaign, case_id: str, stage: Stage | str | None = None) -> DueExplanation:
    """Explain how the case's due time for ``stage`` (default: its current stage) was
    derived, step by step, where it stands now, and its ladder."""
    case = campaign.case(case_id)
    st = _state(campaign)
    which = case.stage if stage is None else _stage_arg(stage)
    rule = st.policy.stage(which)
    ctx = st.ctx(case, which)
    now = _now(campaign, None)
    due, state = deadline_status(rule, ctx, now)
    steps = _explain_steps(rule, ctx)
    if rule.hard and due is not None:
        grace = f" (+ grace {rule.grace.in_words()})" if rule.grace else ""
        steps.append(f"hard deadline{grace}: the step out of {which.value} is refused after it")
    elif due is not None:
        steps.append("soft deadline: a later step is allowed and marked late")
    ladder: list[tuple[Rung, pendulum.DateTime, bool]] = []
    if due is not None and rule.ladder:
        fired = _fired(case, which)
        ladder = [(r, t, k in fired) for r, t, k in st.schedule(which, rule.ladder, due)]
    return DueExplanation(case_id=case_id, stage=which, due=due, state=state,
                          steps=tuple(steps), rungs=tuple(ladder))


def _stage_arg(stage: Stage | str) -> Stage:
    try:
        return Stage(stage)
    except ValueError:
        raise InputError(f"unknown stage {stage!r}; stages are: "
                         f"{', '.join(s.value for s in Stage)}") from None
