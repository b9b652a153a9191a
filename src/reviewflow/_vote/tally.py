"""Counting a vote: a :class:`Tally` of choices, and how a paper slip's marks are read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from reviewflow.scoring import GradeScale, ScoreResult, ScoringPolicy, VoteRules, score


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
