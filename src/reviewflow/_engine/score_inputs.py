"""The evaluation's other inputs: a number the host supplies for a scored channel
(``record_score``) and a veto condition that holds for a case (``flag_condition``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pendulum

from reviewflow._engine.guards import RESULT_STAGES, VOTE_STAGES, guarded
from reviewflow.exceptions import InputError, ScoringError, TransitionRefused
from reviewflow.model import Actor, Case

if TYPE_CHECKING:
    from reviewflow._engine.context import StepContext

__all__ = ["flag_condition", "record_score"]


def record_score(ctx: StepContext, case_id: str, channel: str, value: Any, *, actor: Actor) -> Case:
    """Record a host-supplied number for a scored channel (event ``record_score``)."""
    policy = ctx.policy.scoring
    known = {ch.key: ch for ch in policy.channels}
    if channel not in known or known[channel].kind != "number":
        numbers = ", ".join(k for k, ch in known.items() if ch.kind == "number") or "none"
        raise InputError(f"unknown number channel {channel!r}; number channels: {numbers}")
    role = guarded(ctx, case_id, "record_score", actor, "finish_evaluation",
                   VOTE_STAGES | RESULT_STAGES)

    def apply(case: Case, now: pendulum.DateTime) -> tuple[dict[str, Any], None, tuple[()]]:
        from reviewflow.scoring import _channel_score

        try:
            part = _channel_score(known[channel], value, policy)
        except ScoringError as exc:
            raise TransitionRefused("invalid_data", str(exc), case_id=case.case_id,
                                    event="record_score") from None
        inputs = dict(case.data.get("channel_inputs", {}))
        inputs[channel] = str(part.value)
        case.data["channel_inputs"] = inputs
        return {"channel": channel, "value": str(part.value)}, None, ()

    return ctx.side_step(case_id, "record_score", actor=actor, role=role, apply=apply)


def flag_condition(ctx: StepContext, case_id: str, condition: str, *, actor: Actor,
                   reason: str) -> Case:
    """Record that a veto condition holds for a case (event ``flag_condition``), with why."""
    declared = {v.condition for v in ctx.policy.scoring.vetoes}
    if condition not in declared:
        raise InputError(f"unknown veto condition {condition!r}; the policy declares: "
                         f"{', '.join(sorted(declared)) or 'none'}")
    if not reason or not reason.strip():
        raise InputError("flagging a veto condition needs a reason")
    role = guarded(ctx, case_id, "flag_condition", actor, "finish_evaluation",
                   VOTE_STAGES | RESULT_STAGES)

    def apply(case: Case, now: pendulum.DateTime) -> tuple[dict[str, Any], str, tuple[()]]:
        conditions = sorted(set(case.data.get("conditions", [])) | {condition})
        case.data["conditions"] = conditions
        return {"condition": condition}, reason, ()

    return ctx.side_step(case_id, "flag_condition", actor=actor, role=role, apply=apply)
