"""Results and their publication (在一定范围内公布, 公示, 反馈).

Results are computed from the cases' sealed events (:mod:`reviewflow._sealed`), never
from the stored rows. Publication records a ``publish_results`` event per case (and a
``feedback`` event when the policy feeds back), then tells
``reviewflow_results_published`` once; the rules of idempotency keys and of
re-publication are in :mod:`reviewflow._corrections`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import pendulum

from reviewflow import _corrections
from reviewflow._engine.guards import RESULT_STAGES, acting_role, check_stage, guarded
from reviewflow.exceptions import InputError, ReviewflowError, TransitionRefused
from reviewflow.model import Actor, Case, EventRecord
from reviewflow.scoring import OBLIGATION_LABELS, CaseResult, grade_cases

if TYPE_CHECKING:
    from reviewflow._engine.context import StepContext

__all__ = ["publish", "redeliver_published", "results"]


def _inputs(ctx: StepContext, case: Case) -> dict[str, Any] | None:
    """Return the case's channel inputs, or None while one is missing."""
    out: dict[str, Any] = {}
    stored = case.data.get("channel_inputs", {})
    first_vote = True
    for ch in ctx.policy.scoring.channels:
        if ch.weight == 0:
            continue
        if ch.kind == "vote":
            value = case.data.get("vote") if first_vote else stored.get(ch.key)
            first_vote = False
        elif ch.kind == "comment":
            comment = case.data.get("comments", {}).get(ch.role or ch.key)
            value = None if comment is None else comment.get("rating")
        else:
            value = stored.get(ch.key)
        if value is None:
            return None
        out[ch.key] = value
    return out


def results(ctx: StepContext, case_ids: Iterable[str] | None = None) -> list[CaseResult]:
    """Score, grade and rank the cases whose evaluations are complete (ids in order).

    Each case is read from its sealed events (replayed), not from its stored row: an
    edit of the row changes no score. Cases still missing an input (the vote not
    closed, a rated comment, a host number) are left out. Quotas and ranks are computed
    over the cases given (all by default), from their sealed inputs.
    """
    return _sealed_results(ctx, case_ids)[0]


def _sealed_results(ctx: StepContext, case_ids: Iterable[str] | None
                    ) -> tuple[list[CaseResult], dict[str, Case]]:
    """:func:`results`, and the sealed cases they were computed from, by id."""
    from reviewflow._sealed import sealed_cases

    cases = sealed_cases(ctx.store, ctx.campaign_id, case_ids)  # the record, never the case rows
    inputs: dict[str, dict[str, Any]] = {}
    conditions: dict[str, list[str]] = {}
    for case in cases:
        got = _inputs(ctx, case)
        if got is None:
            continue
        inputs[case.case_id] = got
        if case.data.get("conditions"):
            conditions[case.case_id] = list(case.data["conditions"])
    return (grade_cases(inputs, ctx.policy.scoring, conditions=conditions),
            {case.case_id: case for case in cases})


def _until(ctx: StepContext, now: pendulum.DateTime, days: int | None) -> str | None:
    if not days:
        return None
    if ctx.policy.scoring.publication.publicity_working_days:
        from reviewflow.calendar import add_working_days

        return str(add_working_days(ctx.calendar, now, days).isoformat())
    return str(now.add(days=days).isoformat())


def publish(ctx: StepContext, *, actor: Actor, scope: str | None = None,
            case_ids: Iterable[str] | None = None,
            publicity_days: int | None = None, idempotency_key: str | None = None,
            reason: str | None = None) -> list[CaseResult]:
    """Publish results to a scope (在一定范围内公布), with a publicity period (公示), and feed
    each back to its secretary (反馈).

    Per case: a ``publish_results`` event (score, grade, rank, scope, publicity end, the
    obligations its grade brings, put on ``case.data["obligations"]``) and, when the
    policy feeds back, a ``feedback`` event. Then the hook
    ``reviewflow_results_published(campaign, results, scope)`` fires once.

    With ``idempotency_key``, running the same publication again (after a crash, a
    timeout) publishes nothing twice: cases it published are left as they are (their
    missing feedback is recorded), the others are published. A case published already
    (by another command) is refused with ``already_published`` unless ``reason`` says
    why it is published again; the new publication then records what it supersedes.
    """
    rules = ctx.policy.scoring.publication
    scope = scope or rules.scope
    if not scope:
        raise InputError("name the scope the results are published to (公布范围), e.g. "
                         "scope='全局党员干部'; or set scoring.publication.scope")
    days = rules.publicity_days if publicity_days is None else publicity_days
    if days is not None and (not isinstance(days, int) or days < 0):
        raise InputError("publicity_days must be a whole number of days, 0 or more")
    found, sealed = _sealed_results(ctx, case_ids)
    if not found:
        raise InputError("no case has complete evaluations to publish yet")
    by_id = {r.case_id: r for r in found}
    key = idempotency_key
    done: set[str] = set()  # published by this very command (the same key) before
    loaded = ctx.load_many(list(by_id))
    # the feedback goes to the secretary the record names, not the one in the row
    to = {cid: sealed[cid].secretary.id for cid in by_id}
    for r in found:  # refuse the whole publication before recording any of it
        role = guarded(ctx, r.case_id, "publish_results", actor, "finish_evaluation",
                       RESULT_STAGES)
        case = loaded[r.case_id]
        if _corrections.published_by(case, key, scope):
            done.add(r.case_id)
            continue
        try:
            _corrections.republication(case, reason)
        except TransitionRefused as exc:
            raise ctx.refuse(case, "publish_results", actor, exc, ctx.now()[1]) from None

    def apply(case: Case, now: pendulum.DateTime
              ) -> tuple[dict[str, Any], str | None, tuple[()]]:
        check_stage(case, "publish_results", RESULT_STAGES)
        acting_role(ctx, case, actor, "finish_evaluation", "publish_results")
        supersedes = _corrections.republication(case, reason)
        r = by_id[case.case_id]
        body = r.to_json()
        body.pop("case_id")
        publication = {**body, "scope": scope, "publicity_until": _until(ctx, now, days)}
        if key is not None:
            publication["key"] = key
        if supersedes is not None:
            publication["supersedes"] = supersedes
            publication["reason"] = reason
        case.data["publication"] = publication
        if r.follow_ups or supersedes is not None:
            case.data["obligations"] = _corrections.obligations_after(case, [
                {"kind": o, "label": OBLIGATION_LABELS.get(o, o), "grade": r.grade.key,
                 "status": "open"} for o in r.follow_ups])
        return publication, reason if supersedes is not None else None, ()

    outcome = ctx.side_step_many([i for i in by_id if i not in done], "publish_results",
                             actor=actor, role=role, apply=apply)
    failed = [o for o in outcome if not o.ok]
    if rules.feedback:
        def feedback(case: Case, now: pendulum.DateTime
                     ) -> tuple[dict[str, Any], str | None, tuple[()]]:
            r = by_id[case.case_id]
            case.data["feedback"] = {"to": to[case.case_id], "grade": r.grade.key}
            told = {"to": to[case.case_id], "score": str(r.score.rounded),
                    "grade": r.grade.key, "grade_label": r.grade.label, "rank": r.rank,
                    "of": r.of, "follow_ups": list(r.follow_ups)}
            if key is not None:
                case.data["feedback"]["key"] = told["key"] = key
            again = "supersedes" in case.data.get("publication", {})
            return told, reason if again else None, ()

        # The feedback of a publication interrupted before it (the same key) is recorded now.
        missing = [cid for cid in done
                   if ctx.case(cid).data.get("feedback", {}).get("key") != key]
        ctx.side_step_many([o.case_id for o in outcome if o.ok] + missing, "feedback",
                           actor=actor, role=role, apply=feedback)
    published = [by_id[o.case_id] for o in outcome if o.ok]
    told = [o.case for o in outcome if o.ok and o.case]
    # The publication's own events stay in the outbox until its hook has run (the engine
    # holds them back): after a crash before this, dispatch_pending() tells it again.
    ctx.tell_held("publish_results", told, results=published, scope=scope)
    if failed:
        first = failed[0].error
        assert first is not None  # not ok means an error
        raise first
    if done:  # a replay returns the whole publication, as the first run would have
        return [r for r in found if r.case_id in done or r in published]
    return published


def redeliver_published(ctx: StepContext, records: Sequence[EventRecord],
                        only: frozenset[str] | None = None,
                        ) -> list[tuple[list[EventRecord], list[tuple[str, str, BaseException]]]]:
    """Tell ``reviewflow_results_published`` of publications whose hook may not have run
    (to the plugins in ``only``, if given); return each publication's records and failures.

    ``records`` are ``publish_results`` events still in the outbox (a process stopped
    between committing a publication and calling the hook), or whose delivery failed.
    Each publication (scope and time) is told once, with its results as published: the
    score is computed again from the case (publication does not change it), the grade,
    rank, adjustments and follow-ups are those the event recorded.
    """
    outcome: list[tuple[list[EventRecord], list[tuple[str, str, BaseException]]]] = []
    if not ctx.has_hooks:
        return outcome
    groups: dict[tuple[str, str], list[EventRecord]] = {}
    for record in records:
        groups.setdefault((str(record.data.get("scope", "")), record.at), []).append(record)
    scoring = ctx.policy.scoring
    for (scope, _), group in groups.items():
        scored = {r.case_id: r for r in results(ctx, [record.case_id for record in group])}
        told: list[CaseResult] = []
        for record in group:
            found = scored.get(record.case_id)
            if found is None:  # pragma: no cover  # a published case keeps its inputs
                continue
            data = record.data
            try:
                grade = scoring.band(str(data["grade"]))
            except (KeyError, ReviewflowError):  # pragma: no cover  # the bands changed since
                grade = found.grade
            told.append(attrs.evolve(
                found, grade=grade, rank=int(data.get("rank", found.rank)),
                of=int(data.get("of", found.of)),
                adjustments=tuple(data.get("adjustments", ())),
                follow_ups=tuple(data.get("follow_ups", ())),
            ))
        if told:
            outcome.append((group, ctx.call_hook("reviewflow_results_published", only,
                                                results=told, scope=scope)))
    return outcome
