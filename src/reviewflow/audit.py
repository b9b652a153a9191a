"""The audit chain: every case's events are hash-chained; ``verify`` finds any edit or gap.

>>> from reviewflow.model import EventRecord, GENESIS_HASH
>>> first = EventRecord.make("2016", "c1", 1, "open", "bureau", "organizer",
...                          "2016-01-04T09:00:00+08:00", None, "research", None, {}, GENESIS_HASH)
>>> verify_chain("c1", [first], expected_version=1, expected_hash=first.hash)
[]
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from reviewflow.model import GENESIS_HASH, EventRecord

__all__ = ["ChainProblem", "VerifyReport", "verify_chain"]


@attrs.frozen
class ChainProblem:
    """The first broken link of one case's chain: where it is and what is wrong."""

    case_id: str
    position: int
    message: str

    def __str__(self) -> str:
        return f"case {self.case_id!r}, event {self.position}: {self.message}"


@attrs.frozen
class VerifyReport:
    """What :meth:`Campaign.verify` found: ``ok`` when every chain is intact."""

    cases: int
    events: int
    problems: tuple[ChainProblem, ...]

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def __str__(self) -> str:
        if self.ok:
            return f"verified {self.cases} cases, {self.events} events: the audit chain is intact"
        lines = [f"{len(self.problems)} broken chain(s) in {self.cases} cases:"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def verify_chain(
    case_id: str,
    records: Sequence[EventRecord],
    *,
    expected_version: int | None = None,
    expected_hash: str | None = None,
) -> list[ChainProblem]:
    """Return the first broken link of one case's records (empty when intact).

    Checks that positions run 1, 2, 3 ... without gaps, that each record's hash
    matches its content, that each ``prev_hash`` is the previous record's hash,
    and (when given) that the chain ends at the case's version and last hash,
    which catches a deleted last event.
    """
    prev = GENESIS_HASH
    for i, record in enumerate(records, 1):
        if record.seq != i:
            return [ChainProblem(case_id, i, f"expected event {i}, found event {record.seq}: "
                                             "an event was removed or reordered")]
        if record.prev_hash != prev:
            return [ChainProblem(case_id, i, "does not follow the previous event "
                                             "(prev_hash mismatch): an event was removed or edited")]
        if record.compute_hash() != record.hash:
            return [ChainProblem(case_id, i, "content does not match its hash: the event was edited")]
        prev = record.hash
    if expected_version is not None and expected_version != len(records):
        return [ChainProblem(case_id, len(records) + 1,
                             f"the case is at version {expected_version} but has "
                             f"{len(records)} events: events are missing")]
    if expected_hash is not None and records and expected_hash != prev:
        return [ChainProblem(case_id, len(records),
                             "the case's last hash does not match its last event")]
    return []
