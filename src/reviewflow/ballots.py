"""The on-site vote (现场测评): one-time tokens, secret ballots, paper counts, tallies.

A :class:`Vote` is plain in-memory state (rounds of ballots and paper counts) that a
store can keep as JSON; the functions here change it and say what they changed, and
never read a clock. Tokens live in a :class:`TokenBook`: redeeming one is atomic, so a
SQL store can implement the same protocol with one ``UPDATE ... WHERE used = false``.

A stored :class:`Ballot` carries a random id, the round, the voter's category and the
choice: no voter, no token, no time. Ballots are kept and exported in the order of
their random ids, never in the order they were cast.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import operator
import os
import secrets
import threading
from collections import Counter
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, Sequence, ValuesView
from fractions import Fraction
from pathlib import Path
from typing import IO, Any, Literal, Protocol, runtime_checkable

import attrs

from reviewflow._files import csv_rows, read_capped, size_text, xlsx_rows
from reviewflow.exceptions import BallotError, InputError, ScoringError, TransitionRefused
from reviewflow.scoring import GradeScale, ScoreResult, ScoringPolicy, VoteRules, score

__all__ = [
    "Ballot",
    "CloseResult",
    "IssuedToken",
    "MemoryTokenBook",
    "PaperCount",
    "PaperRow",
    "Tally",
    "TokenBook",
    "TokenGrant",
    "Vote",
    "VoteRound",
    "ballots_digest",
    "cast",
    "category_results",
    "classify_marks",
    "close_round",
    "enter_paper",
    "issue_tokens",
    "open_round",
    "read_paper_counts",
    "recount",
    "tally",
    "verify_vote",
    "void_round",
]

#: The largest import file (bytes; at most one more byte is read) and the most rows; beyond
#: them the file is refused.
MAX_IMPORT_BYTES = 10 * 1024 * 1024
MAX_IMPORT_ROWS = 100_000
#: Paper entries without a category are kept under this key.
ALL = "*"


# --------------------------------------------------------------------------- tallies


@attrs.frozen(kw_only=True)
class Tally:
    """The counts of one vote: per option (valid ballots), invalid, blank, and issued.

    ``returned`` = ``valid`` + ``invalid`` + ``blank``; reconciliation requires
    ``issued`` >= ``returned``. Options outside the score's denominator (不了解) are
    valid ballots here; the score leaves them out.
    """

    counts: Mapping[str, int]
    invalid: int = 0
    blank: int = 0
    issued: int = 0

    @property
    def valid(self) -> int:
        """The number of valid ballots (every option, counted or not)."""
        return sum(self.counts.values())

    @property
    def returned(self) -> int:
        """The number of ballots returned: valid + invalid + blank."""
        return self.valid + self.invalid + self.blank

    def score(self, policy: ScoringPolicy | None = None) -> ScoreResult:
        """Return the satisfaction score of these counts under the policy's scale."""
        policy = policy or ScoringPolicy()
        return score(self.counts, policy.scale, rounding=policy.rounding_rule)

    def __add__(self, other: Tally) -> Tally:
        counts = dict(self.counts)
        for k, n in other.counts.items():
            counts[k] = counts.get(k, 0) + n
        return Tally(counts=counts, invalid=self.invalid + other.invalid,
                     blank=self.blank + other.blank, issued=self.issued + other.issued)

    def to_json(self) -> dict[str, Any]:
        """Return the tally as plain data."""
        return {"counts": dict(self.counts), "invalid": self.invalid, "blank": self.blank,
                "issued": self.issued}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Tally:
        """Build a tally from :meth:`to_json` data."""
        return cls(counts={str(k): int(v) for k, v in data["counts"].items()},
                   invalid=int(data.get("invalid", 0)), blank=int(data.get("blank", 0)),
                   issued=int(data.get("issued", 0)))


def tally(
    choices: Iterable[str | None],
    scale: GradeScale | None = None,
    *,
    blank: Literal["abstain", "invalid"] = "abstain",
    issued: int = 0,
) -> Tally:
    """Count choices (option keys or labels; None for a blank ballot) into a :class:`Tally`.

    Counting runs at C speed (``collections.Counter``); options are resolved once per
    distinct value, so an unknown option raises ScoringError naming it.
    """
    scale = scale or GradeScale.default()
    raw = Counter(choices)
    counts = dict.fromkeys(scale.keys, 0)
    n_blank = 0
    for name, n in raw.items():
        if name is None:
            n_blank = n
        else:
            counts[scale.key_of(name)] += n
    if blank == "invalid":
        return Tally(counts=counts, invalid=n_blank, issued=issued)
    return Tally(counts=counts, blank=n_blank, issued=issued)


INVALID: Literal["invalid"] = "invalid"
BLANK: Literal["blank"] = "blank"


def classify_marks(
    marks: Iterable[str], *, readable: bool = True, scale: GradeScale | None = None,
    rules: VoteRules | None = None,
) -> str:
    """Return how one paper ballot counts: an option key, ``"blank"`` or ``"invalid"``.

    Unreadable, over-marked (more than one option) or marked with something that is not
    an option: invalid. No mark: blank (an abstention), or invalid if the policy says so.
    """
    scale = scale or GradeScale.default()
    rules = rules or VoteRules()
    found = {m.strip() for m in marks if m and m.strip()}
    if not readable:
        return INVALID
    if not found:
        return BLANK if rules.blank == "abstain" else INVALID
    if len(found) > 1:  # over-marked (多选)
        return INVALID
    mark = found.pop()
    return scale.key_of(mark) if mark in scale else INVALID


# --------------------------------------------------------------------------- tokens


_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read off paper slips


def _normalize_token(token: str) -> str:
    return "".join(ch for ch in str(token).upper() if ch.isalnum())


def token_hash(token: str) -> str:
    """Return the hash a token book stores for a token (the token itself is never stored)."""
    return hashlib.sha256(_normalize_token(token).encode()).hexdigest()


@attrs.frozen(kw_only=True)
class TokenGrant:
    """What a token entitles to: one ballot in one round of one case's vote, in a category."""

    token_hash: str
    case_id: str
    round: int
    category: str


@attrs.frozen(kw_only=True)
class IssuedToken:
    """A token handed to one attendee (the only place its plain text exists)."""

    token: str
    case_id: str
    round: int
    category: str


@runtime_checkable
class TokenBook(Protocol):
    """Where one-time tokens are kept. ``redeem`` must be atomic: of any number of
    concurrent redemptions of one token, exactly one succeeds."""

    def add(self, grants: Sequence[TokenGrant]) -> None:
        """Record newly issued tokens (by hash)."""

    def redeem(self, token: str, case_id: str, round: int) -> TokenGrant:
        """Mark the token used and return its grant, or raise BallotError and change nothing.

        Reasons: ``unknown_token``, ``wrong_case``, ``wrong_round``, ``token_used``.
        """

    def unused(self, case_id: str, round: int) -> int:
        """Return how many tokens of the case's round are still unused."""


def _check_grant(grant: TokenGrant | None, used: bool, case_id: str, round: int) -> TokenGrant:
    if grant is None:
        raise BallotError("unknown_token", "unknown ballot token; check the code on the slip")
    if grant.case_id != case_id:
        raise BallotError("wrong_case", "this ballot token belongs to another case's vote")
    if grant.round != round:
        raise BallotError(
            "wrong_round",
            f"this ballot token is for round {grant.round}; this vote is in round {round}",
        )
    if used:
        raise BallotError("token_used", "this ballot token has already been used")
    return grant


class MemoryTokenBook:
    """A token book in memory, safe across threads (a lock makes ``redeem`` atomic)."""

    def __init__(self) -> None:
        self._grants: dict[str, TokenGrant] = {}
        self._used: set[str] = set()
        self._lock = threading.Lock()

    def add(self, grants: Sequence[TokenGrant]) -> None:
        """Record newly issued tokens (by hash)."""
        with self._lock:
            for g in grants:
                if g.token_hash in self._grants:
                    raise BallotError("duplicate_token", "a token was issued twice")
            for g in grants:
                self._grants[g.token_hash] = g

    def redeem(self, token: str, case_id: str, round: int) -> TokenGrant:
        """Mark the token used and return its grant, or raise BallotError and change nothing."""
        h = token_hash(token)
        with self._lock:
            grant = _check_grant(self._grants.get(h), h in self._used, case_id, round)
            self._used.add(h)
            return grant

    def unused(self, case_id: str, round: int) -> int:
        """Return how many tokens of the case's round are still unused."""
        with self._lock:
            return sum(
                1 for h, g in self._grants.items()
                if g.case_id == case_id and g.round == round and h not in self._used
            )


def _new_token() -> str:
    code = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"{code[:5]}-{code[5:]}"


# --------------------------------------------------------------------------- the vote state


@attrs.frozen(kw_only=True)
class Ballot:
    """One secret ballot: a random id, its round, the voter's category, the choice.

    ``choice`` is an option key, or None for a blank ballot. No voter, token or time.
    """

    ballot_id: str
    round: int
    category: str
    choice: str | None

    def to_json(self) -> dict[str, Any]:
        """Return the ballot as plain data."""
        return {"id": self.ballot_id, "round": self.round, "category": self.category,
                "choice": self.choice}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Ballot:
        """Build a ballot from :meth:`to_json` data."""
        return cls(ballot_id=str(data["id"]), round=int(data["round"]),
                   category=str(data["category"]), choice=data.get("choice"))


@attrs.frozen(kw_only=True)
class PaperCount:
    """Counts of paper ballots entered by the scrutineers (计票/监票) for one category
    (None: all voters together).

    ``returned``, when given, must equal valid + invalid + blank (reconciliation).
    """

    category: str | None = None
    counts: Mapping[str, int] = attrs.field(factory=dict)
    invalid: int = 0
    blank: int = 0
    issued: int = 0
    returned: int | None = None

    def tally(self) -> Tally:
        """Return these counts as a :class:`Tally`."""
        return Tally(counts=dict(self.counts), invalid=self.invalid, blank=self.blank,
                     issued=self.issued)

    def to_json(self) -> dict[str, Any]:
        """Return the entry as plain data."""
        return {"category": self.category, "counts": dict(self.counts), "invalid": self.invalid,
                "blank": self.blank, "issued": self.issued, "returned": self.returned}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PaperCount:
        """Build an entry from :meth:`to_json` data."""
        return cls(category=data.get("category"),
                   counts={str(k): int(v) for k, v in data.get("counts", {}).items()},
                   invalid=int(data.get("invalid", 0)), blank=int(data.get("blank", 0)),
                   issued=int(data.get("issued", 0)), returned=data.get("returned"))


class _InIdOrder(dict[str, "Ballot"]):
    """Ballots keyed by their random id, listed in id order whatever order they came in.

    A plain dict lists its keys in the order they came in, which for ballots is the
    casting order. This one sorts when it is read (iteration, ``keys()``, ``values()``,
    ``items()``, ``repr``, ``copy()``, ``popitem()``, ``|``), so that a cast adds its
    ballot in constant time and no reader sees the casting order.
    """

    __slots__ = ()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(dict.keys(self)))

    def __reversed__(self) -> Iterator[str]:
        return iter(sorted(dict.keys(self), reverse=True))

    def keys(self) -> KeysView[str]:  # type: ignore[override]
        return KeysView(self)

    def values(self) -> ValuesView[Ballot]:  # type: ignore[override]
        return ValuesView(self)

    def items(self) -> ItemsView[str, Ballot]:  # type: ignore[override]
        return ItemsView(self)

    def copy(self) -> _InIdOrder:
        return _InIdOrder(self)

    def popitem(self) -> tuple[str, Ballot]:
        if not self:
            raise KeyError("popitem(): no ballots")
        key = max(dict.keys(self))
        return key, self.pop(key)

    def __or__(self, other: Any) -> Any:
        if not isinstance(other, Mapping):
            return NotImplemented
        out = _InIdOrder(self)
        out.update(other)
        return out

    def __ror__(self, other: Any) -> Any:
        if not isinstance(other, Mapping):
            return NotImplemented
        out = _InIdOrder(other)
        out.update(self)
        return out

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {v!r}" for k, v in self.items()) + "}"


def _in_id_order(ballots: Mapping[str, Ballot]) -> _InIdOrder:
    return ballots if isinstance(ballots, _InIdOrder) else _InIdOrder(ballots)


RoundStatus = Literal["open", "closed", "void"]


@attrs.define(slots=True)
class VoteRound:
    """One round of a case's vote. A re-vote is a new round; earlier rounds are kept."""

    number: int
    status: RoundStatus = "open"
    #: Ballots (and tokens) issued per category.
    issued: dict[str, int] = attrs.field(factory=dict)
    #: Eligible attendees, when more than were issued ballots (None: the number issued).
    eligible: int | None = None
    #: The ballots by random id; they are listed in id order, never in the order cast.
    ballots: dict[str, Ballot] = attrs.field(factory=_InIdOrder, converter=_in_id_order)
    paper: dict[str, PaperCount] = attrs.field(factory=dict)
    #: Recorded when the round closes: the tally, and the digest of the ballots behind it.
    tally: Tally | None = None
    digest: str | None = None
    reason: str | None = None

    @property
    def issued_total(self) -> int:
        """The number of ballots issued in this round."""
        return sum(self.issued.values())

    def to_json(self) -> dict[str, Any]:
        """Return the round as plain data (ballots in the order of their random ids)."""
        return {
            "number": self.number, "status": self.status, "issued": dict(self.issued),
            "eligible": self.eligible,
            "ballots": [self.ballots[k].to_json() for k in sorted(self.ballots)],
            "paper": {k: v.to_json() for k, v in sorted(self.paper.items())},
            "tally": None if self.tally is None else self.tally.to_json(),
            "digest": self.digest, "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VoteRound:
        """Build a round from :meth:`to_json` data."""
        ballots = [Ballot.from_json(b) for b in data.get("ballots", ())]
        return cls(
            number=int(data["number"]), status=data.get("status", "open"),
            issued={str(k): int(v) for k, v in data.get("issued", {}).items()},
            eligible=data.get("eligible"),
            ballots={b.ballot_id: b for b in ballots},
            paper={str(k): PaperCount.from_json(v) for k, v in data.get("paper", {}).items()},
            tally=None if data.get("tally") is None else Tally.from_json(data["tally"]),
            digest=data.get("digest"), reason=data.get("reason"),
        )


@attrs.define(slots=True)
class Vote:
    """A case's on-site vote: its rounds, the last one current."""

    case_id: str
    rounds: list[VoteRound] = attrs.field(factory=list)

    @property
    def current(self) -> VoteRound | None:
        """The latest round, or None before any."""
        return self.rounds[-1] if self.rounds else None

    @property
    def result_round(self) -> VoteRound | None:
        """The latest closed (not void) round: the one whose tally counts."""
        for r in reversed(self.rounds):
            if r.status == "closed":
                return r
        return None

    @property
    def result(self) -> Tally | None:
        """The tally that counts, once a round has closed."""
        r = self.result_round
        return None if r is None else r.tally

    def to_json(self) -> dict[str, Any]:
        """Return the vote as plain data."""
        return {"case_id": self.case_id, "rounds": [r.to_json() for r in self.rounds]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Vote:
        """Build a vote from :meth:`to_json` data."""
        return cls(case_id=str(data["case_id"]),
                   rounds=[VoteRound.from_json(r) for r in data.get("rounds", ())])


# --------------------------------------------------------------------------- operations


def _open(vote: Vote) -> VoteRound:
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


def _category(rules: VoteRules, category: str) -> str:
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
    r = _open(vote)
    cats: dict[str, int] = {}
    for category, n in counts.items():
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise InputError(f"token count for {category!r} must be a whole number, 0 or more")
        if n > 100_000:
            raise InputError(f"{n} tokens for {category!r} is more than one meeting can use")
        key = _category(rules, category)
        cats[key] = cats.get(key, 0) + n
    issued = [
        IssuedToken(token=_new_token(), case_id=vote.case_id, round=r.number, category=c)
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
    r = _open(vote)
    grant = book.redeem(token, vote.case_id, r.number)
    ballot = Ballot(ballot_id=secrets.token_hex(8), round=r.number, category=grant.category,
                    choice=key)
    r.ballots[ballot.ballot_id] = ballot  # listed in id order when read (_InIdOrder)
    return ballot


def _check_entry(entry: PaperCount, policy: ScoringPolicy) -> PaperCount:
    scale, rules = policy.scale, policy.vote
    try:
        counts = scale.normalize(entry.counts)
    except ScoringError as exc:
        raise InputError(f"paper counts: {exc}") from None
    for name in ("invalid", "blank", "issued"):
        n = getattr(entry, name)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise InputError(f"paper counts: {name} must be a whole number, 0 or more; got {n!r}")
    category = None if entry.category is None else _category(rules, entry.category)
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
    checked = [_check_entry(e, policy) for e in items]
    if vote.current is None:
        r = VoteRound(number=1)
        pending_open = True
    else:
        r = _open(vote)
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
    r = _open(vote)
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
    r = _open(vote)
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


# --------------------------------------------------------------------------- import


@attrs.frozen(kw_only=True)
class PaperRow:
    """One imported row: where it came from, the case it names (if any), its counts."""

    row: int
    case_id: str | None
    entry: PaperCount


_FIELD_ALIASES: Mapping[str, tuple[str, ...]] = {
    "case_id": ("case", "case_id", "case id", "述职对象", "编号", "单位"),
    "category": ("category", "类别", "人员类别", "参会人员类别"),
    "invalid": ("invalid", "无效", "无效票"),
    "blank": ("blank", "abstain", "abstention", "弃权", "空白", "弃权票", "空白票"),
    "issued": ("issued", "发出", "发放", "发出票", "发放票", "发出票数", "发放票数"),
    "returned": ("returned", "收回", "收回票", "收回票数"),
}
_ALL_NAMES = frozenset({"", "*", "all", "total", "合计", "全体", "全部"})


def _header_map(headers: list[str], scale: GradeScale, where: str) -> dict[int, str]:
    names: dict[str, str] = {}
    for field, aliases in _FIELD_ALIASES.items():
        for a in aliases:
            names[a] = field
    for lv in scale.levels:
        for n in (lv.key, lv.label):
            if n:
                names[n.lower()] = f"option:{lv.key}"
                names[f"{n.lower()}票"] = f"option:{lv.key}"
    out: dict[int, str] = {}
    for i, h in enumerate(headers):
        text = h.strip().lower()
        if not text:
            continue
        target = names.get(text)
        if target is None:
            raise InputError(
                f"{where}: column {i + 1} header {h!r} is not known; use option names "
                f"({', '.join(lv.label or lv.key for lv in scale.levels)}) and "
                f"category/invalid/blank/issued/returned (类别/无效/弃权/发出/收回)"
            )
        if target in out.values():
            raise InputError(f"{where}: column {i + 1} header {h!r} repeats an earlier column")
        out[i] = target
    if not any(f.startswith("option:") for f in out.values()):
        raise InputError(f"{where}: no option columns found in the header row")
    return out


def _cell_int(value: Any, where: str) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    if isinstance(value, bool):
        raise InputError(f"{where}: {value!r} is not a count")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float) and value.is_integer():
        n = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        n = int(value.strip())
    else:
        raise InputError(f"{where}: {value!r} is not a whole number of ballots")
    if n < 0:
        raise InputError(f"{where}: a count cannot be negative ({n})")
    return n


def _rows_csv(data: bytes, name: str) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for row in csv_rows(data, name):
        rows.append(list(row))
        if len(rows) > MAX_IMPORT_ROWS + 1:
            break
    return rows


def _rows_xlsx(data: bytes, name: str) -> list[list[Any]]:
    rows: list[list[Any]] = []
    with contextlib.closing(xlsx_rows(data, name)) as values:
        for row in values:
            rows.append(row)
            if len(rows) > MAX_IMPORT_ROWS + 1:
                break
    return rows


def read_paper_counts(
    source: str | os.PathLike[str] | IO[bytes],
    *,
    policy: ScoringPolicy | None = None,
    format: Literal["csv", "xlsx"] | None = None,
) -> list[PaperRow]:
    """Read paper-ballot counts from a CSV (UTF-8) or XLSX file, one row per category.

    Header names in Chinese or English: the options (好/较好/一般/差 or good/...),
    类别/category, 无效/invalid, 弃权/blank, 发出/issued, 收回/returned, and optionally
    述职对象/case. The whole file is checked first: any bad cell raises InputError naming
    its row and column, and nothing is returned.
    """
    policy = policy or ScoringPolicy()
    if hasattr(source, "read"):
        name = str(getattr(source, "name", "<file>"))
        try:
            data = source.read(MAX_IMPORT_BYTES + 1)
        except OSError as exc:
            raise InputError(f"{name}: cannot read the file: {exc.strerror or exc}") from None
        if not isinstance(data, bytes):
            raise InputError(f"{name}: open the file in binary mode ('rb') to import it")
        if len(data) > MAX_IMPORT_BYTES:
            raise InputError(f"{name}: the file is larger than {size_text(MAX_IMPORT_BYTES)}, "
                             "the limit for a paper-count file; split it by case")
    else:
        name = str(Path(source))
        data = read_capped(source, MAX_IMPORT_BYTES, "a paper-count file (.csv or .xlsx)",
                           too_large="split it by case")
    fmt = format or ("xlsx" if name.lower().endswith((".xlsx", ".xlsm"))
                     or data[:2] == b"PK" else "csv")
    rows = _rows_xlsx(data, name) if fmt == "xlsx" else _rows_csv(data, name)
    rows = [r for r in rows if any(c is not None and str(c).strip() for c in r)]
    if not rows:
        raise InputError(f"{name}: the file is empty; the first row must name the columns")
    if len(rows) > MAX_IMPORT_ROWS + 1:
        raise InputError(f"{name}: more than {MAX_IMPORT_ROWS} rows")
    header = ["" if c is None else str(c) for c in rows[0]]
    cols = _header_map(header, policy.scale, f"{name}: row 1")
    out: list[PaperRow] = []
    for rno, row in enumerate(rows[1:], start=2):
        fields: dict[str, Any] = {"counts": {}}
        case_id = None
        for i, field in cols.items():
            value = row[i] if i < len(row) else None
            where = f"{name}: row {rno}, column {_column(i, fmt)} ({header[i].strip()})"
            if field == "case_id":
                case_id = None if value is None else str(value).strip() or None
            elif field == "category":
                text = "" if value is None else str(value).strip()
                if text.lower() in _ALL_NAMES:
                    fields["category"] = None
                else:
                    try:
                        fields["category"] = _category(policy.vote, text)
                    except BallotError as exc:
                        raise InputError(f"{where}: {str(exc).rsplit(' [', 1)[0]}") from None
            elif field.startswith("option:"):
                fields["counts"][field[7:]] = _cell_int(value, where)
            elif field == "returned":
                fields["returned"] = None if value in (None, "") else _cell_int(value, where)
            else:
                fields[field] = _cell_int(value, where)
        entry = PaperCount(**fields)
        try:
            entry = _check_entry(entry, policy)
        except InputError as exc:
            raise InputError(f"{name}: row {rno}: {str(exc).removeprefix('paper counts ')}") \
                from None
        out.append(PaperRow(row=rno, case_id=case_id, entry=entry))
    seen: dict[tuple[str | None, str | None], int] = {}
    for pr in out:
        k = (pr.case_id, pr.entry.category)
        if k in seen:
            raise InputError(f"{name}: row {pr.row} repeats row {seen[k]} (same case and "
                             f"category); merge them into one row")
        seen[k] = pr.row
    return out


def _column(i: int, fmt: str) -> str:
    if fmt != "xlsx":
        return str(i + 1)
    letters = ""
    n = i + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters
