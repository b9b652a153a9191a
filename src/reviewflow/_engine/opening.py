"""Opening cases: the first record of each case's chain, committed in one write."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reviewflow import _corrections, _ids
from reviewflow._chain import seal as _seal
from reviewflow._engine.context import StepContext
from reviewflow._engine.deadline_work import DeadlineWork
from reviewflow.exceptions import InputError
from reviewflow.model import GENESIS_HASH, Actor, Case, Stage
from reviewflow.store.base import Commit

__all__ = ["open_cases"]


def open_cases(ctx: StepContext, work: DeadlineWork, rows: Iterable[Mapping[str, Any]],
               actor: Actor | None) -> list[Case]:
    """Open many cases in one write (all or none); each row has ``open_case``'s arguments."""
    _now, iso = ctx.now()
    if actor is not None:
        _ids.check_command(actor, None, 0)
    opener = actor or Actor("system", "reviewflow", roles={"organizer"})
    commits = [_opening(ctx, work, row, i, opener, iso) for i, row in enumerate(rows)]
    ctx.store.insert_cases(commits)
    # The store keeps its own snapshot (as for every commit): the caller gets ours.
    cases = [c.case.bind(ctx.store) for c in commits]
    ctx.tell([(c.events, case) for c, case in zip(commits, cases, strict=True)])
    return cases


def _first_role(actor: Actor) -> str:
    return min(actor.roles) if actor.roles else ""


def _opening(ctx: StepContext, work: DeadlineWork, row: Mapping[str, Any], index: int,
             opener: Actor, iso: str) -> Commit:
    case_id = row.get("case_id")
    if not isinstance(case_id, str) or not case_id.strip() or len(case_id) > 200:
        raise InputError(f"row {index + 1}: case_id must be a non-empty string of at most "
                         f"200 characters, got {case_id!r}")
    case_id = _ids.identifier(case_id, f"row {index + 1}: case_id")
    organization = row.get("organization")
    if not isinstance(organization, str) or not organization.strip():
        raise InputError(f"case {case_id!r}: organization must be a non-empty string")
    organization = _ids.name(organization, f"row {index + 1}: organization")
    secretary = row.get("secretary")
    if not isinstance(secretary, Actor):
        raise InputError(f"case {case_id!r}: secretary must be a reviewflow.Actor, "
                         f"got {type(secretary).__name__}")
    group = (_ids.optional_identifier(row.get("guidance_group") or None,
                                      f"case {case_id!r}: guidance_group")
             or ctx.policy.assignments.get(case_id))
    if group is not None and group not in ctx.policy.guidance_groups:
        raise InputError(f"case {case_id!r}: unknown guidance group {group!r}; the policy "
                         f"has: {', '.join(sorted(ctx.policy.guidance_groups)) or 'none'}")
    previous = _ids.optional_identifier(row.get("previous_case_id") or None,
                                        f"case {case_id!r}: previous_case_id")
    carried = row.get("carried_over") or ()
    if isinstance(carried, str) or not isinstance(carried, list | tuple) or not all(
            isinstance(p, str) for p in carried):
        raise InputError(f"case {case_id!r}: carried_over must be a list of last year's "
                         f"problems (texts), got {carried!r:.60}", reason="invalid_argument")
    carried = list(carried)
    if previous and not carried:
        carried = _carry_over(ctx, previous)
    data: dict[str, Any] = {"entered": {Stage.RESEARCH.value: iso}, "last_at": iso}
    if group:
        data["guidance_group"] = group
    if carried:
        data["carried_over"] = [str(p) for p in carried]
    record_data: dict[str, Any] = {
        "organization": organization, "secretary": secretary.to_json(),
    }
    if group:
        record_data["guidance_group"] = group
    if previous:
        record_data["previous_case_id"] = previous
    if carried:
        record_data["carried_over"] = data["carried_over"]
    record = _seal(
        ctx.campaign_id, case_id, 1, "open", opener.id, _first_role(opener), iso, None,
        Stage.RESEARCH.value, None, _corrections.mark(record_data, ctx.clock), GENESIS_HASH,
    )
    case = Case(ctx.campaign_id, case_id, organization, secretary, Stage.RESEARCH, 1, record.hash,
                data, previous)
    return ctx.step_commit(case, 0, (record,), work.commit_extras(case, None))


def _carry_over(ctx: StepContext, previous_case_id: str) -> list[str]:
    """Return last year's problems from a case of another campaign in the same store."""
    if "/" in previous_case_id:
        campaign_id, case_id = previous_case_id.split("/", 1)
    else:
        campaign_id, case_id = str(ctx.policy.year - 1), previous_case_id
    previous = ctx.store.get(campaign_id, case_id)
    if previous is None:
        return []
    report = previous.data.get("report") or {}
    return [p["description"] for p in report.get("problems", [])]
