"""The vote's state: ballots, paper counts, rounds, the :class:`Vote` (plain data a store keeps as JSON)."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Any, Literal

import attrs

from reviewflow._vote.tally import Tally

#: Paper entries without a category are kept under this key.
ALL = "*"

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
