"""Closing a round: recount, digest, results by category, close, void, verify."""

from __future__ import annotations

import hashlib
import json
import math
import operator
from collections import Counter
from fractions import Fraction

import attrs

from reviewflow._vote.rounds import current_open
from reviewflow._vote.state import ALL, RoundStatus, Vote, VoteRound
from reviewflow._vote.tally import Tally, tally
from reviewflow.exceptions import InputError, TransitionRefused
from reviewflow.scoring import ScoringPolicy

_CHOICE = operator.attrgetter("choice")


def recount(r: VoteRound, policy: ScoringPolicy | None = None) -> Tally:
    """Recount a round from its stored ballots and paper entries (the issued count included)."""
    policy = policy or ScoringPolicy()
    total = tally(map(_CHOICE, r.ballots.values()), policy.scale,
                  blank=policy.vote.blank, issued=r.issued_total)
    for e in r.paper.values():
        total = total + attrs.evolve(e.tally(), issued=0)
    return total


def ballots_digest(r: VoteRound) -> str:
    """Return a SHA-256 digest of the round's ballots and paper entries (any change shows)."""
    h = hashlib.sha256()
    for k in sorted(r.ballots):
        b = r.ballots[k]
        h.update(f"{b.ballot_id}\x1f{b.round}\x1f{b.category}\x1f{b.choice}\n".encode())
    for k in sorted(r.paper):
        h.update(json.dumps(r.paper[k].to_json(), sort_keys=True, ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()


def category_results(
    r: VoteRound, policy: ScoringPolicy | None = None,
) -> dict[str, Tally | None]:
    """Return each category's tally, or None where showing it could reveal votes.

    A category with fewer voters than ``min_group_size`` is suppressed; when exactly one
    category is suppressed, the next smallest is suppressed too, so that the total minus
    the others cannot reveal it. Paper counts without categories give ``{}``.
    """
    policy = policy or ScoringPolicy()
    per: dict[str, list[str | None]] = {}
    for b in r.ballots.values():
        per.setdefault(b.category, []).append(b.choice)
    out: dict[str, Tally] = {
        c: tally(ch, policy.scale, blank=policy.vote.blank) for c, ch in per.items()
    }
    for key, e in r.paper.items():
        if key != ALL:
            t = attrs.evolve(e.tally(), issued=0)
            out[key] = out[key] + t if key in out else t
    minimum = policy.vote.min_group_size
    hidden = {c for c, t in out.items() if t.returned < minimum}
    shown = sorted((t.returned, c) for c, t in out.items() if c not in hidden)
    if len(hidden) == 1 and shown:
        hidden.add(shown[0][1])
    return {c: (None if c in hidden else out[c]) for c in sorted(out)}


@attrs.frozen(kw_only=True)
class CloseResult:
    """What closing a round did: ``status`` is ``closed`` (the tally counts) or ``void``
    (more ballots returned than issued: hold a re-vote)."""

    round: int
    status: RoundStatus
    tally: Tally
    digest: str
    reason: str | None = None


def close_round(vote: Vote, policy: ScoringPolicy | None = None) -> CloseResult:
    """Close the current round: check reconciliation and quorum, freeze it, record the tally.

    More ballots returned than issued (overall or in a category) voids the round (it is
    kept, marked ``void``). Below quorum, or with too few grassroots voters, the round
    cannot close: :class:`~reviewflow.exceptions.TransitionRefused` ``quorum_not_met``,
    nothing changed. No valid ballot at all: ``no_valid_ballots``.
    """
    policy = policy or ScoringPolicy()
    rules = policy.vote
    r = current_open(vote)
    t = recount(r, policy)
    digest = ballots_digest(r)
    returned_by: dict[str, int] = Counter(b.category for b in r.ballots.values())
    for key, e in r.paper.items():
        returned_by[key] = returned_by.get(key, 0) + e.tally().returned
    over = [c for c, n in returned_by.items() if n > r.issued.get(c, 0)]
    if t.returned > t.issued or over:
        where = f" ({', '.join(rules.category_label(None if c == ALL else c) for c in over)})" \
            if over else ""
        reason = (f"returned_exceeds_issued: {t.returned} ballots returned, {t.issued} "
                  f"issued{where}; the round is void, hold a re-vote")
        r.status, r.tally, r.digest, r.reason = "void", t, digest, reason
        return CloseResult(round=r.number, status="void", tally=t, digest=digest, reason=reason)
    eligible = r.eligible if r.eligible is not None else t.issued
    if rules.quorum is not None and t.returned < rules.quorum * eligible:
        need = math.ceil(rules.quorum * eligible)
        raise TransitionRefused(
            "quorum_not_met",
            f"{t.returned} of {eligible} eligible voters returned a ballot; the quorum of "
            f"{rules.quorum} needs {need} (到会人数不足)",
            case_id=vote.case_id, event="close_vote",
            details={"returned": t.returned, "eligible": eligible, "needed": need},
        )
    if rules.min_grassroots_share is not None:
        if ALL in r.paper:
            raise TransitionRefused(
                "quorum_not_met",
                "the grassroots share cannot be checked: enter paper counts per category",
                case_id=vote.case_id, event="close_vote",
            )
        grass = sum(n for c, n in returned_by.items() if c in rules.grassroots)
        if t.returned == 0 or Fraction(grass, t.returned) < rules.min_grassroots_share:
            raise TransitionRefused(
                "quorum_not_met",
                f"{grass} of {t.returned} ballots are from grassroots representatives "
                f"(基层代表); the policy needs at least {rules.min_grassroots_share}",
                case_id=vote.case_id, event="close_vote",
                details={"grassroots": grass, "returned": t.returned},
            )
    counted = sum(t.counts[lv.key] for lv in policy.scale.levels if lv.in_denominator)
    if counted == 0:
        raise TransitionRefused(
            "no_valid_ballots",
            "no valid ballot for a counted option (有效票数为0); void the round and re-vote",
            case_id=vote.case_id, event="close_vote",
        )
    r.status, r.tally, r.digest = "closed", t, digest
    return CloseResult(round=r.number, status="closed", tally=t, digest=digest)


def void_round(vote: Vote, reason: str, policy: ScoringPolicy | None = None) -> CloseResult:
    """Void the current round with a reason (kept in the record); a re-vote follows."""
    if not reason:
        raise InputError("voiding a vote needs a reason")
    r = current_open(vote)
    t = recount(r, policy)
    digest = ballots_digest(r)
    r.status, r.tally, r.digest, r.reason = "void", t, digest, reason
    return CloseResult(round=r.number, status="void", tally=t, digest=digest, reason=reason)


def verify_vote(vote: Vote, policy: ScoringPolicy | None = None) -> list[str]:
    """Recount every finished round from its stored ballots; return the discrepancies
    (an empty list when every recount equals the recorded tally and digest)."""
    problems = []
    for r in vote.rounds:
        if r.status == "open":
            continue
        if r.tally is None or recount(r, policy) != r.tally:
            problems.append(f"round {r.number}: the recount differs from the recorded tally")
        if r.digest != ballots_digest(r):
            problems.append(f"round {r.number}: the stored ballots changed after closing")
    return problems
