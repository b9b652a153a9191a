"""Running a round: open it (or a re-vote), issue tokens, cast ballots, enter paper counts."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence

import attrs

from reviewflow._vote.state import ALL, Ballot, PaperCount, Vote, VoteRound
from reviewflow._vote.tokens import IssuedToken, TokenBook, TokenGrant, new_token, token_hash
from reviewflow.exceptions import BallotError, InputError, ScoringError
from reviewflow.scoring import GradeScale, ScoringPolicy, VoteRules


def current_open(vote: Vote) -> VoteRound:
    r = vote.current
    if r is None:
        raise BallotError("no_vote", f"case {vote.case_id!r} has no vote open; issue tokens "
                                     f"or enter paper counts first")
    if r.status != "open":
        raise BallotError(
            "vote_closed",
            f"round {r.number} of case {vote.case_id!r}'s vote is {r.status}; "
            f"to change it, open a re-vote (`reviewflow ballots revote CASE --reason ...`, "
            f"Campaign.revote)",
        )
    return r


def open_round(vote: Vote, *, reason: str | None = None) -> VoteRound:
    """Open the vote's first round, or a new round (a re-vote) after the last one closed.

    A re-vote after a void round needs nothing more; after a closed round it needs a
    ``reason`` (it is recorded). The earlier rounds are kept.
    """
    last = vote.current
    if last is not None:
        if last.status == "open":
            raise BallotError("round_open", f"round {last.number} is still open; close it first")
        if last.status == "closed" and not reason:
            raise BallotError(
                "vote_closed",
                "the vote is closed with a result; a re-vote needs a reason",
            )
    r = VoteRound(number=len(vote.rounds) + 1, reason=reason)
    vote.rounds.append(r)
    return r


def category_key(rules: VoteRules, category: str) -> str:
    if category in rules.categories:
        return category
    for key, label in rules.categories.items():
        if category == label:
            return key
    raise BallotError(
        "unknown_category",
        f"unknown voter category {category!r}; categories are "
        + ", ".join(f"{k} ({v})" for k, v in rules.categories.items()),
    )


def issue_tokens(
    vote: Vote, book: TokenBook, counts: Mapping[str, int], *, rules: VoteRules | None = None,
) -> list[IssuedToken]:
    """Issue one-time ballot tokens, ``counts[category]`` of each, in the current round.

    Opens the first round if there is none. Returns the tokens in random order (hand
    one to each eligible attendee); only their hashes are kept.
    """
    rules = rules or VoteRules()
    if vote.current is None:
        open_round(vote)
    r = current_open(vote)
    cats: dict[str, int] = {}
    for category, n in counts.items():
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise InputError(f"token count for {category!r} must be a whole number, 0 or more")
        if n > 100_000:
            raise InputError(f"{n} tokens for {category!r} is more than one meeting can use")
        key = category_key(rules, category)
        cats[key] = cats.get(key, 0) + n
    issued = [
        IssuedToken(token=new_token(), case_id=vote.case_id, round=r.number, category=c)
        for c, n in cats.items() for _ in range(n)
    ]
    secrets.SystemRandom().shuffle(issued)
    book.add([
        TokenGrant(token_hash=token_hash(t.token), case_id=t.case_id, round=t.round,
                   category=t.category)
        for t in issued
    ])
    for c, n in cats.items():
        r.issued[c] = r.issued.get(c, 0) + n
    return issued


def _choice(scale: GradeScale, choice: str | None) -> str | None:
    if choice is None:
        return None
    if choice not in scale:
        known = ", ".join(f"{lv.key} ({lv.label})" for lv in scale.levels)
        raise BallotError("unknown_option", f"unknown option {choice!r}; options are {known}")
    return scale.key_of(choice)


def cast(
    vote: Vote, book: TokenBook, token: str, choice: str | None,
    *, policy: ScoringPolicy | None = None,
) -> Ballot:
    """Cast one ballot with a one-time token: redeem the token, store an anonymous ballot.

    ``choice`` is an option key or label, or None for a blank ballot. Everything is
    checked before the token is redeemed, so a refused cast (BallotError with a reason
    code) changes nothing and leaves the token usable.
    """
    policy = policy or ScoringPolicy()
    key = _choice(policy.scale, choice)
    r = current_open(vote)
    grant = book.redeem(token, vote.case_id, r.number)
    ballot = Ballot(ballot_id=secrets.token_hex(8), round=r.number, category=grant.category,
                    choice=key)
    r.ballots[ballot.ballot_id] = ballot  # listed in id order when read (_InIdOrder)
    return ballot


def check_entry(entry: PaperCount, policy: ScoringPolicy) -> PaperCount:
    scale, rules = policy.scale, policy.vote
    try:
        counts = scale.normalize(entry.counts)
    except ScoringError as exc:
        raise InputError(f"paper counts: {exc}") from None
    for name in ("invalid", "blank", "issued"):
        n = getattr(entry, name)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise InputError(f"paper counts: {name} must be a whole number, 0 or more; got {n!r}")
    category = None if entry.category is None else category_key(rules, entry.category)
    valid = sum(counts.values())
    if entry.returned is not None and entry.returned != valid + entry.invalid + entry.blank:
        raise InputError(
            f"paper counts do not reconcile for {rules.category_label(category)}: returned "
            f"{entry.returned} but valid {valid} + invalid {entry.invalid} + blank "
            f"{entry.blank} = {valid + entry.invalid + entry.blank}; recount the ballots"
        )
    return attrs.evolve(entry, category=category, counts=counts)


def enter_paper(
    vote: Vote, entries: PaperCount | Sequence[PaperCount], *,
    policy: ScoringPolicy | None = None, replace: bool = False,
) -> list[PaperCount]:
    """Enter paper-ballot counts (per category, or for all voters) in the current round.

    All entries are checked before any is applied: a bad one (InputError or BallotError)
    leaves the vote as it was. Entering a category twice needs ``replace=True``.
    Opens the first round if there is none.
    """
    policy = policy or ScoringPolicy()
    items = [entries] if isinstance(entries, PaperCount) else list(entries)
    checked = [check_entry(e, policy) for e in items]
    if vote.current is None:
        r = VoteRound(number=1)
        pending_open = True
    else:
        r = current_open(vote)
        pending_open = False
    keys = [ALL if e.category is None else e.category for e in checked]
    if len(set(keys)) != len(keys):
        raise BallotError("already_entered", "the same category is entered twice in one batch")
    existing = set(r.paper)
    if not replace and existing & set(keys):
        k = sorted(existing & set(keys))[0]
        raise BallotError("already_entered",
                          f"counts for {policy.vote.category_label(None if k == ALL else k)} "
                          f"are already entered; pass replace=True to correct them")
    after = (existing | set(keys))
    if ALL in after and len(after) > 1:
        raise BallotError("mixed_categories", "enter paper counts either per category or for "
                                              "all voters together, not both")
    if pending_open:
        vote.rounds.append(r)
    for key, e in zip(keys, checked, strict=True):
        old = r.paper.get(key)
        if old is not None:
            r.issued[key] = r.issued.get(key, 0) - old.issued
        r.paper[key] = e
        r.issued[key] = r.issued.get(key, 0) + e.issued
        if not r.issued[key]:
            del r.issued[key]
    return checked
