"""The campaign's vote and publication operations (三评): tokens, casts, paper counts,
closing, results, publication and feedback.

Every operation that changes a case goes through the engine's side-step path
(``Campaign._record``): it is an event on the case's hash chain, committed with the
case's version check, journaled when refused. Casting a ballot is the exception on
purpose: a ballot never becomes an event (an event carries an actor and a time, which
would link the ballot to the voter). Ballots and tokens live in the campaign's
ballot box; closing the vote records the tally and a digest of the ballots on the
case's chain, so any later change to a stored ballot shows in :func:`verify_votes`.

The ballot box is the store's ``ballot_box(campaign_id)`` when the store offers one
(durable stores), else one kept in memory beside the store. A box with ``in_commit``
set (the SQL store's) gets its tokens and its freezes as extra rows of the commits
that issue tokens and close (or void) a round, so that they are written with the
event or not at all: :class:`~reviewflow.store.rows.TokenRows` and
:class:`~reviewflow.store.rows.RoundFrozen`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import pendulum

from reviewflow import _corrections
from reviewflow.ballots import (
    Ballot,
    CloseResult,
    IssuedToken,
    MemoryTokenBook,
    PaperCount,
    TokenGrant,
    Vote,
    VoteRound,
    _InIdOrder,
    category_results,
    close_round,
    enter_paper,
    issue_tokens,
    open_round,
    read_paper_counts,
    void_round,
)
from reviewflow.exceptions import (
    BallotError,
    ConflictError,
    InputError,
    ReviewflowError,
    ScoringError,
    ScrubIncomplete,
    TransitionRefused,
)
from reviewflow.model import Actor, Case, EventRecord, Stage
from reviewflow.scoring import OBLIGATION_LABELS, CaseResult, grade_cases
from reviewflow.store.parts import BallotBox
from reviewflow.store.rows import RoundFrozen, TokenRows

if TYPE_CHECKING:
    from reviewflow.campaign import Campaign, FireResult


__all__ = [
    "cast",
    "close_vote",
    "enter_paper_counts",
    "flag_condition",
    "import_paper_counts",
    "issue_ballot_tokens",
    "publish",
    "record_score",
    "results",
    "revote",
    "verify_votes",
]

#: Stages in which the vote may be prepared, cast, counted and closed.
VOTE_STAGES = frozenset({Stage.MEETING, Stage.EVALUATION})
#: Stages in which results may be published (the vote has closed by then).
RESULT_STAGES = frozenset({Stage.EVALUATION, Stage.GROUP_TALK, Stage.REPORT_BACK, Stage.CLOSED})


# --------------------------------------------------------------------------- the ballot box


def _grants(tokens: Sequence[IssuedToken]) -> tuple[TokenGrant, ...]:
    from reviewflow.ballots import token_hash

    return tuple(TokenGrant(token_hash=token_hash(t.token), case_id=t.case_id, round=t.round,
                            category=t.category) for t in tokens)


class _MemoryBox:
    """A ballot box in memory: a token book and ballots per (case, round), one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.book = MemoryTokenBook()
        self._ballots: dict[tuple[str, int], _InIdOrder] = {}
        self._frozen: set[tuple[str, int]] = set()

    def add_tokens(self, tokens: Sequence[IssuedToken]) -> None:
        self.book.add(list(_grants(tokens)))

    def cast(self, case_id: str, round: int, token: str, choice: str | None,
             build: Any) -> Ballot:
        with self.lock:
            if (case_id, round) in self._frozen:
                raise BallotError("vote_closed", f"the vote of case {case_id!r} is closed")
            grant = self.book.redeem(token, case_id, round)
            ballot: Ballot = build(grant.round, grant.category)
            held = self._ballots.setdefault((case_id, round), _InIdOrder())
            held[ballot.ballot_id] = ballot  # listed in id order when read
            return ballot

    def ballots(self, case_id: str, round: int) -> dict[str, Ballot]:
        with self.lock:  # by random id, never in the order cast
            return dict(sorted(self._ballots.get((case_id, round), {}).items()))

    def freeze(self, case_id: str, round: int) -> None:
        with self.lock:
            self._frozen.add((case_id, round))

    def thaw(self, case_id: str, round: int) -> None:
        with self.lock:
            self._frozen.discard((case_id, round))


_BOXES: weakref.WeakKeyDictionary[Any, dict[str, _MemoryBox]] = weakref.WeakKeyDictionary()
_BOXES_LOCK = threading.Lock()


def ballot_box(c: Campaign) -> BallotBox:
    """Return the campaign's ballot box: the store's own, or one in memory beside it."""
    own = getattr(c.store, "ballot_box", None)
    if own is not None:
        box: BallotBox = own(c.id)
        return box
    with _BOXES_LOCK:
        per_store = _BOXES.setdefault(c.store, {})
        return per_store.setdefault(c.id, _MemoryBox())


# --------------------------------------------------------------------------- helpers


def _role(c: Campaign, case: Case, actor: Actor, permission: str, event: str) -> str:
    permitted = c.policy.permissions.get(permission, frozenset())
    held = c._roles_for(case, actor) & permitted
    if not held:
        names = ", ".join(f"{r} ({c.policy.role_label(r)})" for r in sorted(permitted))
        raise TransitionRefused(
            "not_permitted", f"{actor.id} may not {event}: it needs the role {names or 'none'}",
            case_id=case.case_id, event=event,
        )
    return min(held)


def _stage(case: Case, event: str, stages: frozenset[Stage]) -> None:
    if case.stage not in stages:
        names = ", ".join(f"{s.label} ({s.value})" for s in Stage if s in stages)
        raise TransitionRefused(
            "wrong_stage",
            f"the case is in {case.stage.label} ({case.stage.value}); {event} needs {names}",
            case_id=case.case_id, event=event,
        )


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


def _guarded(c: Campaign, case_id: str, event: str, actor: Actor, permission: str,
             stages: frozenset[Stage]) -> str:
    """Check stage and role up front (journaling a refusal); return the acting role."""
    case = c.case(case_id)
    try:
        _stage(case, event, stages)
        return _role(c, case, actor, permission, event)
    except TransitionRefused as exc:
        _now, iso = c._now()
        raise c._refuse(case, event, actor, exc, iso) from None


def _ballot_error(case: Case, event: str, exc: BallotError | InputError) -> TransitionRefused:
    reason = getattr(exc, "reason", "invalid_data")
    return TransitionRefused(reason, str(exc).rsplit(" [", 1)[0], case_id=case.case_id,
                             event=event)


# --------------------------------------------------------------------------- vote operations


def issue_ballot_tokens(c: Campaign, case_id: str, counts: Mapping[str, int], *,
                        actor: Actor,
                        before_commit: Callable[[Sequence[IssuedToken]], object] | None = None,
                        ) -> list[IssuedToken]:
    """Issue one-time ballot tokens for a case's vote, per attendee category.

    The event ``issue_ballots`` records the counts per category (never the tokens);
    the tokens are returned once, to be handed out. ``before_commit(tokens)``, when
    given, runs after the tokens are drawn and before anything is committed (see
    :meth:`Campaign.issue_ballot_tokens`): if it raises, nothing is committed.
    """
    role = _guarded(c, case_id, "issue_ballots", actor, "record_vote", VOTE_STAGES)
    box = ballot_box(c)
    in_commit = bool(getattr(box, "in_commit", False))
    issued: list[IssuedToken] = []

    def apply(case: Case, now: pendulum.DateTime) -> tuple[dict[str, Any], None, tuple[Any, ...]]:
        _stage(case, "issue_ballots", VOTE_STAGES)
        vote = _vote_of(case)
        current = vote.current
        before = dict(current.issued) if current is not None and current.status == "open" else {}
        try:
            tokens = issue_tokens(vote, MemoryTokenBook(), counts, rules=c.policy.scoring.vote)
        except (BallotError, InputError) as exc:
            raise _ballot_error(case, "issue_ballots", exc) from None
        issued[:] = tokens
        _save(case, vote)
        # per category, as the round counts them (a category given 0 tokens too)
        now_issued = vote.rounds[-1].issued
        by_cat = {k: n - before.get(k, 0) for k, n in now_issued.items()
                  if k not in before or n != before[k]}
        number = vote.rounds[-1].number
        extras = (TokenRows(campaign_id=c.id, case_id=case.case_id, round=number,
                            grants=_grants(tokens)),) if in_commit else ()
        if before_commit is not None:
            before_commit(tuple(tokens))  # the caller keeps them (a sheet) before they count
        return {"round": number, "issued": by_cat}, None, extras

    with box.lock:
        c._record(case_id, "issue_ballots", actor=actor, role=role, apply=apply)
        if not in_commit:
            box.add_tokens(issued)
    return issued


def cast(c: Campaign, case_id: str, token: str, choice: str | None) -> str:
    """Cast one anonymous ballot with a one-time token; return the random ballot id.

    No event is recorded (see the module docs). Raises BallotError (``unknown_token``,
    ``token_used``, ``wrong_case``, ``wrong_round``, ``vote_closed``, ``unknown_option``,
    ``no_vote``) and records nothing then.
    """
    import secrets

    case = c.case(case_id)
    if case.stage not in VOTE_STAGES:
        raise BallotError("vote_closed", f"case {case_id!r} is not voting now "
                                         f"({case.stage.label})")
    vote = _vote_of(case)
    current = vote.current
    if current is None or current.status != "open":
        raise BallotError("no_vote" if current is None else "vote_closed",
                          f"case {case_id!r} has no open vote")
    scale = c.policy.scoring.scale
    if choice is not None and choice not in scale:
        known = ", ".join(f"{lv.key} ({lv.label})" for lv in scale.levels)
        raise BallotError("unknown_option", f"unknown option {choice!r}; options are {known}")
    key = None if choice is None else scale.key_of(choice)

    def build(round_no: int, category: str) -> Ballot:
        return Ballot(ballot_id=secrets.token_hex(8), round=round_no, category=category,
                      choice=key)

    return ballot_box(c).cast(case_id, current.number, token, key, build).ballot_id


def enter_paper_counts(c: Campaign, case_id: str, entries: PaperCount | Sequence[PaperCount], *,
                       actor: Actor, replace: bool = False) -> Case:
    """Record paper-ballot counts entered by the scrutineers (event ``enter_paper_counts``)."""
    role = _guarded(c, case_id, "enter_paper_counts", actor, "record_vote", VOTE_STAGES)

    def apply(case: Case, now: pendulum.DateTime) -> tuple[dict[str, Any], None, tuple[()]]:
        _stage(case, "enter_paper_counts", VOTE_STAGES)
        vote = _vote_of(case)
        try:
            checked = enter_paper(vote, entries, policy=c.policy.scoring, replace=replace)
        except (BallotError, InputError) as exc:
            raise _ballot_error(case, "enter_paper_counts", exc) from None
        _save(case, vote)
        return ({"round": vote.rounds[-1].number, "entries": [e.to_json() for e in checked],
                 "replace": replace}, None, ())

    return c._record(case_id, "enter_paper_counts", actor=actor, role=role, apply=apply)


def import_paper_counts(c: Campaign, source: Any, *, actor: Actor,
                        case_id: str | None = None) -> list[FireResult]:
    """Import paper counts from a CSV/XLSX file: for ``case_id``, or per its case column.

    The whole file is checked before anything is recorded (InputError naming row and
    column); then one ``enter_paper_counts`` event per case.
    """
    from reviewflow.campaign import FireResult

    rows = read_paper_counts(source, policy=c.policy.scoring)
    by_case: dict[str, list[PaperCount]] = {}
    for r in rows:
        target = r.case_id or case_id
        if target is None:
            raise InputError(f"row {r.row}: no case named; add a 述职对象/case column or "
                             f"import for one case")
        if case_id is not None and r.case_id not in (None, case_id):
            raise InputError(f"row {r.row}: case {r.case_id!r} in a file imported for {case_id!r}")
        by_case.setdefault(target, []).append(r.entry)
    for target in by_case:
        c.case(target)  # every case exists before anything is written
    out = []
    for target, entries in by_case.items():
        try:
            out.append(FireResult(target, case=enter_paper_counts(c, target, entries,
                                                                  actor=actor)))
        except ReviewflowError as exc:
            out.append(FireResult(target, error=exc))
    return out


def close_vote(c: Campaign, case_id: str, *, actor: Actor, scrub: bool = False) -> CloseResult:
    """Close the vote and, with ``scrub``, scrub the ballot table after the closing commit
    (:func:`scrub_ballots`); a scrub that fails raises ScrubIncomplete naming the closed
    vote, whose ``result`` is the close's result."""
    result = _close_vote(c, case_id, actor=actor)
    if scrub:
        try:
            scrub_ballots(c)
        except ScrubIncomplete as exc:
            raise exc.after_close(case_id, result) from exc
    return result


def scrub_ballots(c: Campaign) -> bool:
    """Remove old copies of the campaign's ballot rows from the database's files (the
    box's ``scrub``); False when the box keeps nothing on disk (memory)."""
    scrub = getattr(ballot_box(c), "scrub", None)
    if scrub is None:
        return False
    scrub()
    return True


def _close_vote(c: Campaign, case_id: str, *, actor: Actor) -> CloseResult:
    """Close the case's current vote round (event ``close_vote``): freeze it, record the tally
    and the digest of its ballots, and the counts the evaluation uses.

    Refused with ``quorum_not_met`` or ``no_valid_ballots`` (nothing changed). More
    ballots returned than issued voids the round (recorded; hold a re-vote).

    With a durable ballot box the freeze is written by the closing commit itself, which
    is refused if a ballot came in after the tally was computed; if that keeps happening
    (three times), casts are stopped first in a write of their own, then the vote is
    closed (and reopened if the close fails).
    """
    role = _guarded(c, case_id, "close_vote", actor, "record_vote", VOTE_STAGES)
    box = ballot_box(c)
    in_commit = bool(getattr(box, "in_commit", False))
    outcome: list[CloseResult] = []

    def apply(case: Case, now: pendulum.DateTime
              ) -> tuple[dict[str, Any], str | None, tuple[Any, ...]]:
        _stage(case, "close_vote", VOTE_STAGES)
        vote = _vote_of(case)
        r = vote.current
        if r is None:
            raise TransitionRefused("no_vote", "there is no vote to close",
                                    case_id=case.case_id, event="close_vote")
        r.ballots = box.ballots(case.case_id, r.number)
        try:
            result = close_round(vote, c.policy.scoring)
        except BallotError as exc:
            raise _ballot_error(case, "close_vote", exc) from None
        except TransitionRefused as exc:
            exc.case_id = case.case_id
            raise
        outcome[:] = [result]
        _save(case, vote)
        if result.status == "closed":
            case.data["vote"] = dict(result.tally.counts)
            case.data["vote_tally"] = result.tally.to_json()
        shown = {k: (None if t is None else t.to_json())
                 for k, t in category_results(r, c.policy.scoring).items()}
        extras = (RoundFrozen(campaign_id=c.id, case_id=case.case_id, round=r.number,
                              ballots=len(r.ballots)),) if in_commit else ()
        return ({"round": r.number, "status": result.status, "tally": result.tally.to_json(),
                 "digest": result.digest, "by_category": shown},
                result.reason if result.status == "void" else None, extras)

    with box.lock:
        if in_commit:  # frozen by the close commit itself
            try:
                c._record(case_id, "close_vote", actor=actor, role=role, apply=apply)
                return outcome[0]
            except ConflictError:
                pass  # ballots kept coming in while closing: stop the casts first (below)
        current = _vote_of(c.case(case_id)).current
        number = current.number if current is not None else 0
        box.freeze(case_id, number)
        try:
            c._record(case_id, "close_vote", actor=actor, role=role, apply=apply)
        except BaseException:
            box.thaw(case_id, number)
            raise
    return outcome[0]


def revote(c: Campaign, case_id: str, *, actor: Actor, reason: str | None = None,
           void_reason: str | None = None) -> Case:
    """Start a re-vote (event ``revote``): a new round; the earlier ones are kept.

    After a void round nothing more is needed; after a closed round a ``reason``; an
    open round is voided first with ``void_reason``.
    """
    role = _guarded(c, case_id, "revote", actor, "record_vote", VOTE_STAGES)
    box = ballot_box(c)
    in_commit = bool(getattr(box, "in_commit", False))

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
                voided = void_round(vote, void_reason, c.policy.scoring)
                if in_commit:
                    extras = (RoundFrozen(campaign_id=c.id, case_id=case.case_id,
                                          round=r.number, ballots=len(r.ballots)),)
            new = open_round(vote, reason=reason)
        except (BallotError, InputError) as exc:
            raise _ballot_error(case, "revote", exc) from None
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
                return c._record(case_id, "revote", actor=actor, role=role, apply=apply)
            except ConflictError:
                pass  # ballots kept coming in meanwhile: stop the casts first (below)
        current = _vote_of(c.case(case_id)).current
        if current is not None and current.status == "open":
            box.freeze(case_id, current.number)
        try:
            return c._record(case_id, "revote", actor=actor, role=role, apply=apply)
        except BaseException:
            if current is not None and current.status == "open":
                box.thaw(case_id, current.number)
            raise


def verify_votes(c: Campaign) -> list[str]:
    """Recount every closed round of every case from the ballot box and compare it with
    the tally and digest its sealed ``close_vote`` event recorded (not with the case
    row, which anyone with write access to the database could edit); return the
    discrepancies."""
    from reviewflow import _verify

    return [str(p) for p in _verify.verify_ballots(c)]


# --------------------------------------------------------------------------- other channels


def record_score(c: Campaign, case_id: str, channel: str, value: Any, *, actor: Actor) -> Case:
    """Record a host-supplied number for a scored channel (event ``record_score``)."""
    policy = c.policy.scoring
    known = {ch.key: ch for ch in policy.channels}
    if channel not in known or known[channel].kind != "number":
        numbers = ", ".join(k for k, ch in known.items() if ch.kind == "number") or "none"
        raise InputError(f"unknown number channel {channel!r}; number channels: {numbers}")
    role = _guarded(c, case_id, "record_score", actor, "finish_evaluation",
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

    return c._record(case_id, "record_score", actor=actor, role=role, apply=apply)


def flag_condition(c: Campaign, case_id: str, condition: str, *, actor: Actor,
                   reason: str) -> Case:
    """Record that a veto condition holds for a case (event ``flag_condition``), with why."""
    declared = {v.condition for v in c.policy.scoring.vetoes}
    if condition not in declared:
        raise InputError(f"unknown veto condition {condition!r}; the policy declares: "
                         f"{', '.join(sorted(declared)) or 'none'}")
    if not reason or not reason.strip():
        raise InputError("flagging a veto condition needs a reason")
    role = _guarded(c, case_id, "flag_condition", actor, "finish_evaluation",
                    VOTE_STAGES | RESULT_STAGES)

    def apply(case: Case, now: pendulum.DateTime) -> tuple[dict[str, Any], str, tuple[()]]:
        conditions = sorted(set(case.data.get("conditions", [])) | {condition})
        case.data["conditions"] = conditions
        return {"condition": condition}, reason, ()

    return c._record(case_id, "flag_condition", actor=actor, role=role, apply=apply)


# --------------------------------------------------------------------------- results


def _inputs(c: Campaign, case: Case) -> dict[str, Any] | None:
    """Return the case's channel inputs, or None while one is missing."""
    out: dict[str, Any] = {}
    stored = case.data.get("channel_inputs", {})
    first_vote = True
    for ch in c.policy.scoring.channels:
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


def results(c: Campaign, case_ids: Iterable[str] | None = None) -> list[CaseResult]:
    """Score, grade and rank the cases whose evaluations are complete (ids in order).

    Each case is read from its sealed events (replayed), not from its stored row: an
    edit of the row changes no score. Cases still missing an input (the vote not
    closed, a rated comment, a host number) are left out. Quotas and ranks are computed
    over the cases given (all by default), from their sealed inputs.
    """
    return _sealed_results(c, case_ids)[0]


def _sealed_results(c: Campaign, case_ids: Iterable[str] | None
                    ) -> tuple[list[CaseResult], dict[str, Case]]:
    """:func:`results`, and the sealed cases they were computed from, by id."""
    from reviewflow._sealed import sealed_cases

    cases = sealed_cases(c, case_ids)  # the record, never the case rows
    inputs: dict[str, dict[str, Any]] = {}
    conditions: dict[str, list[str]] = {}
    for case in cases:
        got = _inputs(c, case)
        if got is None:
            continue
        inputs[case.case_id] = got
        if case.data.get("conditions"):
            conditions[case.case_id] = list(case.data["conditions"])
    return (grade_cases(inputs, c.policy.scoring, conditions=conditions),
            {case.case_id: case for case in cases})


def _until(c: Campaign, now: pendulum.DateTime, days: int | None) -> str | None:
    if not days:
        return None
    if c.policy.scoring.publication.publicity_working_days:
        from reviewflow.calendar import add_working_days, calendar_from_policy

        cal = getattr(c, "_calendar", None) or calendar_from_policy(c.policy.calendar)
        return str(add_working_days(cal, now, days).isoformat())
    return str(now.add(days=days).isoformat())


def publish(c: Campaign, *, actor: Actor, scope: str | None = None,
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
    rules = c.policy.scoring.publication
    scope = scope or rules.scope
    if not scope:
        raise InputError("name the scope the results are published to (公布范围), e.g. "
                         "scope='全局党员干部'; or set scoring.publication.scope")
    days = rules.publicity_days if publicity_days is None else publicity_days
    if days is not None and (not isinstance(days, int) or days < 0):
        raise InputError("publicity_days must be a whole number of days, 0 or more")
    found, sealed = _sealed_results(c, case_ids)
    if not found:
        raise InputError("no case has complete evaluations to publish yet")
    by_id = {r.case_id: r for r in found}
    key = idempotency_key
    done: set[str] = set()  # published by this very command (the same key) before
    loaded = c._load_many(list(by_id))
    # the feedback goes to the secretary the record names, not the one in the row
    to = {cid: sealed[cid].secretary.id for cid in by_id}
    for r in found:  # refuse the whole publication before recording any of it
        role = _guarded(c, r.case_id, "publish_results", actor, "finish_evaluation",
                        RESULT_STAGES)
        case = loaded[r.case_id]
        if _corrections.published_by(case, key, scope):
            done.add(r.case_id)
            continue
        try:
            _corrections.republication(case, reason)
        except TransitionRefused as exc:
            raise c._refuse(case, "publish_results", actor, exc, c._now()[1]) from None

    def apply(case: Case, now: pendulum.DateTime
              ) -> tuple[dict[str, Any], str | None, tuple[()]]:
        _stage(case, "publish_results", RESULT_STAGES)
        _role(c, case, actor, "finish_evaluation", "publish_results")
        supersedes = _corrections.republication(case, reason)
        r = by_id[case.case_id]
        body = r.to_json()
        body.pop("case_id")
        publication = {**body, "scope": scope, "publicity_until": _until(c, now, days)}
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

    outcome = c._record_many([i for i in by_id if i not in done], "publish_results",
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
                   if c.case(cid).data.get("feedback", {}).get("key") != key]
        c._record_many([o.case_id for o in outcome if o.ok] + missing, "feedback",
                       actor=actor, role=role, apply=feedback)
    published = [by_id[o.case_id] for o in outcome if o.ok]
    told = [o.case for o in outcome if o.ok and o.case]
    if getattr(c, "_has_hooks", False) and published:
        errors = c._call_hook("reviewflow_results_published", campaign=c, results=published,
                              scope=scope)
        if errors:  # kept, and retried by dispatch_pending(), before the events are marked
            from reviewflow import _delivery

            records = _publications(c, told)
            _delivery.hold(c, [(r, e) for r in records for e in errors], records)
    # The publication's own events stay in the outbox until the hook above has run: after
    # a crash before this point, dispatch_pending() tells reviewflow_results_published again.
    held = [f"{c.id}/{case.case_id}/{case.version}" for case in told]
    if held and getattr(c, "_outbox", True):
        c.store.mark_dispatched(c.id, held)
    if failed:
        first = failed[0].error
        assert first is not None  # not ok means an error
        raise first
    if done:  # a replay returns the whole publication, as the first run would have
        return [r for r in found if r.case_id in done or r in published]
    return published


def _publications(c: Campaign, cases: Sequence[Case]) -> list[EventRecord]:
    """The ``publish_results`` records of cases just published (each at its case's version)."""
    out = []
    for case in cases:
        history = c.store.history(c.id, case.case_id)
        if len(history) >= case.version and history[case.version - 1].event == "publish_results":
            out.append(history[case.version - 1])
    return out


def redeliver_published(c: Campaign, records: Sequence[EventRecord],
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
    if not getattr(c, "_has_hooks", False):
        return outcome
    groups: dict[tuple[str, str], list[EventRecord]] = {}
    for record in records:
        groups.setdefault((str(record.data.get("scope", "")), record.at), []).append(record)
    scoring = c.policy.scoring
    for (scope, _), group in groups.items():
        scored = {r.case_id: r for r in results(c, [record.case_id for record in group])}
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
            outcome.append((group, c._call_hook("reviewflow_results_published", only,
                                                campaign=c, results=told, scope=scope)))
    return outcome


def vote_round(c: Campaign, case_id: str) -> VoteRound | None:
    """Return the case's current vote round with its ballots (for inspection)."""
    vote = _vote_of(c.case(case_id))
    r = vote.current
    if r is not None:
        r.ballots = ballot_box(c).ballots(case_id, r.number)
    return r
