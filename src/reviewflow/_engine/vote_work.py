"""The vote (三评's on-site vote): ballot tokens, anonymous casts, paper counts, closing,
re-votes, and the recount of closed rounds.

Every step that changes a case goes through the engine's side-step path
(the StepContext's ``side_step``): it is an event on the case's hash chain, committed with the
case's version check, journaled when refused. Casting a ballot is the exception on
purpose: a ballot never becomes an event (an event carries an actor and a time, which
would link the ballot to the voter). Ballots and tokens live in the campaign's
ballot box; closing the vote records the tally and a digest of the ballots on the
case's chain, so any later change to a stored ballot shows in :func:`verify_votes`.

The ballot box is the store's ``ballot_box(campaign_id)``. A box with ``in_commit``
set (the SQL store's) gets its tokens and its freezes as extra rows of the commits
that issue tokens and close (or void) a round, so that they are written with the
event or not at all: :class:`~reviewflow.store.rows.TokenRows` and
:class:`~reviewflow.store.rows.RoundFrozen`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

import pendulum

from reviewflow._engine.guards import VOTE_STAGES, ballot_refusal, check_stage, guarded
from reviewflow._engine.results import FireResult
from reviewflow.ballots import (
    Ballot,
    CloseResult,
    IssuedToken,
    MemoryTokenBook,
    PaperCount,
    TokenGrant,
    Vote,
    VoteRound,
    category_results,
    close_round,
    enter_paper,
    issue_tokens,
    open_round,
    void_round,
)
from reviewflow.exceptions import (
    BallotError,
    ConflictError,
    InputError,
    ReviewflowError,
    ScrubIncomplete,
    TransitionRefused,
)
from reviewflow.imports import read_paper_counts_by_case
from reviewflow.model import Actor, Case
from reviewflow.store.parts import BallotBox
from reviewflow.store.rows import RoundFrozen, TokenRows

if TYPE_CHECKING:
    from reviewflow._engine.context import StepContext


__all__ = [
    "ballot_box",
    "cast",
    "close_vote",
    "enter_paper_counts",
    "import_paper_counts",
    "issue_ballot_tokens",
    "revote",
    "scrub_ballots",
    "verify_votes",
    "vote_round",
]


# --------------------------------------------------------------------------- the ballot box


def _grants(tokens: Sequence[IssuedToken]) -> tuple[TokenGrant, ...]:
    from reviewflow.ballots import token_hash

    return tuple(TokenGrant(token_hash=token_hash(t.token), case_id=t.case_id, round=t.round,
                            category=t.category) for t in tokens)


def ballot_box(ctx: StepContext) -> BallotBox:
    """Return the campaign's ballot box (the store keeps it)."""
    return ctx.store.ballot_box(ctx.campaign_id)


def _vote_of(case: Case) -> Vote:
    data = case.data.get("ballot_vote")
    if not data:
        return Vote(case_id=case.case_id)
    return Vote.from_json(data)


def _save(case: Case, vote: Vote) -> None:
    data = vote.to_json()
    for r in data["rounds"]:
        r.pop("ballots", None)  # ballots stay in the ballot box, never on the case
    case.data["ballot_vote"] = data


# --------------------------------------------------------------------------- vote operations


def issue_ballot_tokens(ctx: StepContext, case_id: str, counts: Mapping[str, int], *,
                        actor: Actor,
                        before_commit: Callable[[Sequence[IssuedToken]], object] | None = None,
                        ) -> list[IssuedToken]:
    """Issue one-time ballot tokens for a case's vote, per attendee category.

    The event ``issue_ballots`` records the counts per category (never the tokens);
    the tokens are returned once, to be handed out. ``before_commit(tokens)``, when
    given, runs after the tokens are drawn and before anything is committed (see
    :meth:`reviewflow.Campaign.issue_ballot_tokens`): if it raises, nothing is committed.
    """
    role = guarded(ctx, case_id, "issue_ballots", actor, "record_vote", VOTE_STAGES)
    box = ballot_box(ctx)
    in_commit = box.in_commit
    issued: list[IssuedToken] = []

    def apply(case: Case, now: pendulum.DateTime) -> tuple[dict[str, Any], None, tuple[Any, ...]]:
        check_stage(case, "issue_ballots", VOTE_STAGES)
        vote = _vote_of(case)
        current = vote.current
        before = dict(current.issued) if current is not None and current.status == "open" else {}
        try:
            tokens = issue_tokens(vote, MemoryTokenBook(), counts, rules=ctx.policy.scoring.vote)
        except (BallotError, InputError) as exc:
            raise ballot_refusal(case, "issue_ballots", exc) from None
        issued[:] = tokens
        _save(case, vote)
        # per category, as the round counts them (a category given 0 tokens too)
        now_issued = vote.rounds[-1].issued
        by_cat = {k: n - before.get(k, 0) for k, n in now_issued.items()
                  if k not in before or n != before[k]}
        number = vote.rounds[-1].number
        extras = (TokenRows(campaign_id=ctx.campaign_id, case_id=case.case_id, round=number,
                            grants=_grants(tokens)),) if in_commit else ()
        if before_commit is not None:
            before_commit(tuple(tokens))  # the caller keeps them (a sheet) before they count
        return {"round": number, "issued": by_cat}, None, extras

    with box.lock:
        ctx.side_step(case_id, "issue_ballots", actor=actor, role=role, apply=apply)
        if not in_commit:
            box.add_tokens(issued)
    return issued


def cast(ctx: StepContext, case_id: str, token: str, choice: str | None) -> str:
    """Cast one anonymous ballot with a one-time token; return the random ballot id.

    No event is recorded (see the module docs). Raises BallotError (``unknown_token``,
    ``token_used``, ``wrong_case``, ``wrong_round``, ``vote_closed``, ``unknown_option``,
    ``no_vote``) and records nothing then.
    """
    import secrets

    case = ctx.case(case_id)
    if case.stage not in VOTE_STAGES:
        raise BallotError("vote_closed", f"case {case_id!r} is not voting now "
                                         f"({case.stage.label})")
    vote = _vote_of(case)
    current = vote.current
    if current is None or current.status != "open":
        raise BallotError("no_vote" if current is None else "vote_closed",
                          f"case {case_id!r} has no open vote")
    scale = ctx.policy.scoring.scale
    if choice is not None and choice not in scale:
        known = ", ".join(f"{lv.key} ({lv.label})" for lv in scale.levels)
        raise BallotError("unknown_option", f"unknown option {choice!r}; options are {known}")
    key = None if choice is None else scale.key_of(choice)

    def build(round_no: int, category: str) -> Ballot:
        return Ballot(ballot_id=secrets.token_hex(8), round=round_no, category=category,
                      choice=key)

    return ballot_box(ctx).cast(case_id, current.number, token, key, build).ballot_id


def enter_paper_counts(ctx: StepContext, case_id: str, entries: PaperCount | Sequence[PaperCount], *,
                       actor: Actor, replace: bool = False) -> Case:
    """Record paper-ballot counts entered by the scrutineers (event ``enter_paper_counts``)."""
    role = guarded(ctx, case_id, "enter_paper_counts", actor, "record_vote", VOTE_STAGES)

    def apply(case: Case, now: pendulum.DateTime) -> tuple[dict[str, Any], None, tuple[()]]:
        check_stage(case, "enter_paper_counts", VOTE_STAGES)
        vote = _vote_of(case)
        try:
            checked = enter_paper(vote, entries, policy=ctx.policy.scoring, replace=replace)
        except (BallotError, InputError) as exc:
            raise ballot_refusal(case, "enter_paper_counts", exc) from None
        _save(case, vote)
        return ({"round": vote.rounds[-1].number, "entries": [e.to_json() for e in checked],
                 "replace": replace}, None, ())

    return ctx.side_step(case_id, "enter_paper_counts", actor=actor, role=role, apply=apply)


def import_paper_counts(ctx: StepContext, source: str | os.PathLike[str] | IO[bytes], *, actor: Actor,
                        case_id: str | None = None) -> list[FireResult]:
    """Import paper counts from a CSV/XLSX file: for ``case_id``, or per its case column.

    The whole file is checked before anything is recorded (InputError naming row and
    column); then one ``enter_paper_counts`` event per case.
    """
    by_case = read_paper_counts_by_case(source, policy=ctx.policy.scoring, case_id=case_id)
    for target in by_case:
        ctx.case(target)  # every case exists before anything is written
    out = []
    for target, entries in by_case.items():
        try:
            out.append(FireResult(target, case=enter_paper_counts(ctx, target, entries,
                                                                  actor=actor)))
        except ReviewflowError as exc:
            out.append(FireResult(target, error=exc))
    return out


def close_vote(ctx: StepContext, case_id: str, *, actor: Actor, scrub: bool = False) -> CloseResult:
    """Close the vote and, with ``scrub``, scrub the ballot table after the closing commit
    (:func:`scrub_ballots`); a scrub that fails raises ScrubIncomplete naming the closed
    vote, whose ``result`` is the close's result."""
    result = _close_vote(ctx, case_id, actor=actor)
    if scrub:
        try:
            scrub_ballots(ctx)
        except ScrubIncomplete as exc:
            raise exc.after_close(case_id, result) from exc
    return result


def scrub_ballots(ctx: StepContext) -> bool:
    """Remove old copies of the campaign's ballot rows from the database's files (the
    box's ``scrub``); False when the box keeps nothing on disk (memory)."""
    return ballot_box(ctx).scrub()


def _close_vote(ctx: StepContext, case_id: str, *, actor: Actor) -> CloseResult:
    """Close the case's current vote round (event ``close_vote``): freeze it, record the tally
    and the digest of its ballots, and the counts the evaluation uses.

    Refused with ``quorum_not_met`` or ``no_valid_ballots`` (nothing changed). More
    ballots returned than issued voids the round (recorded; hold a re-vote).

    With a durable ballot box the freeze is written by the closing commit itself, which
    is refused if a ballot came in after the tally was computed; if that keeps happening
    (three times), casts are stopped first in a write of their own, then the vote is
    closed (and reopened if the close fails).
    """
    role = guarded(ctx, case_id, "close_vote", actor, "record_vote", VOTE_STAGES)
    box = ballot_box(ctx)
    in_commit = box.in_commit
    outcome: list[CloseResult] = []

    def apply(case: Case, now: pendulum.DateTime
              ) -> tuple[dict[str, Any], str | None, tuple[Any, ...]]:
        check_stage(case, "close_vote", VOTE_STAGES)
        vote = _vote_of(case)
        r = vote.current
        if r is None:
            raise TransitionRefused("no_vote", "there is no vote to close",
                                    case_id=case.case_id, event="close_vote")
        r.ballots = box.ballots(case.case_id, r.number)
        try:
            result = close_round(vote, ctx.policy.scoring)
        except BallotError as exc:
            raise ballot_refusal(case, "close_vote", exc) from None
        except TransitionRefused as exc:
            exc.case_id = case.case_id
            raise
        outcome[:] = [result]
        _save(case, vote)
        if result.status == "closed":
            case.data["vote"] = dict(result.tally.counts)
            case.data["vote_tally"] = result.tally.to_json()
        shown = {k: (None if t is None else t.to_json())
                 for k, t in category_results(r, ctx.policy.scoring).items()}
        extras = (RoundFrozen(campaign_id=ctx.campaign_id, case_id=case.case_id, round=r.number,
                              ballots=len(r.ballots)),) if in_commit else ()
        return ({"round": r.number, "status": result.status, "tally": result.tally.to_json(),
                 "digest": result.digest, "by_category": shown},
                result.reason if result.status == "void" else None, extras)

    with box.lock:
        if in_commit:  # frozen by the close commit itself
            try:
                ctx.side_step(case_id, "close_vote", actor=actor, role=role, apply=apply)
                return outcome[0]
            except ConflictError:
                pass  # ballots kept coming in while closing: stop the casts first (below)
        current = _vote_of(ctx.case(case_id)).current
        number = current.number if current is not None else 0
        box.freeze(case_id, number)
        try:
            ctx.side_step(case_id, "close_vote", actor=actor, role=role, apply=apply)
        except BaseException:
            box.thaw(case_id, number)
            raise
    return outcome[0]


def revote(ctx: StepContext, case_id: str, *, actor: Actor, reason: str | None = None,
           void_reason: str | None = None) -> Case:
    """Start a re-vote (event ``revote``): a new round; the earlier ones are kept.

    After a void round nothing more is needed; after a closed round a ``reason``; an
    open round is voided first with ``void_reason``.
    """
    role = guarded(ctx, case_id, "revote", actor, "record_vote", VOTE_STAGES)
    box = ballot_box(ctx)
    in_commit = box.in_commit

    def apply(case: Case, now: pendulum.DateTime
              ) -> tuple[dict[str, Any], str | None, tuple[Any, ...]]:
        vote = _vote_of(case)
        voided = None
        extras: tuple[Any, ...] = ()
        try:
            if vote.current is not None and vote.current.status == "open":
                if not void_reason:
                    raise InputError("the current round is open: give void_reason to void it")
                r = vote.current
                r.ballots = box.ballots(case.case_id, r.number)
                voided = void_round(vote, void_reason, ctx.policy.scoring)
                if in_commit:
                    extras = (RoundFrozen(campaign_id=ctx.campaign_id, case_id=case.case_id,
                                          round=r.number, ballots=len(r.ballots)),)
            new = open_round(vote, reason=reason)
        except (BallotError, InputError) as exc:
            raise ballot_refusal(case, "revote", exc) from None
        _save(case, vote)
        case.data.pop("vote", None)
        data: dict[str, Any] = {"round": new.number}
        if voided is not None:
            # the void reason and the new round's own reason, both sealed (for the replay)
            data["voided"] = {"round": voided.round, "digest": voided.digest,
                              "tally": voided.tally.to_json(), "reason": void_reason}
            data["round_reason"] = reason
        return data, reason or void_reason, extras

    with box.lock:
        if in_commit:  # a voided round is frozen by the revote commit itself
            try:
                return ctx.side_step(case_id, "revote", actor=actor, role=role, apply=apply)
            except ConflictError:
                pass  # ballots kept coming in meanwhile: stop the casts first (below)
        current = _vote_of(ctx.case(case_id)).current
        if current is not None and current.status == "open":
            box.freeze(case_id, current.number)
        try:
            return ctx.side_step(case_id, "revote", actor=actor, role=role, apply=apply)
        except BaseException:
            if current is not None and current.status == "open":
                box.thaw(case_id, current.number)
            raise


def verify_votes(ctx: StepContext) -> list[str]:
    """Recount every closed round of every case from the ballot box and compare it with
    the tally and digest its sealed ``close_vote`` event recorded (not with the case
    row, which anyone with write access to the database could edit); return the
    discrepancies."""
    from reviewflow import _verify

    return [str(p) for p in _verify.verify_ballots(ctx.store, ctx.campaign_id, ctx.policy.scoring,
                                                   ballot_box(ctx))]


def vote_round(ctx: StepContext, case_id: str) -> VoteRound | None:
    """Return the case's current vote round with its ballots (for inspection)."""
    vote = _vote_of(ctx.case(case_id))
    r = vote.current
    if r is not None:
        r.ballots = ballot_box(ctx).ballots(case_id, r.number)
    return r
