"""The audit chain: every case's events are hash-chained; ``verify`` finds any edit or gap.

>>> from reviewflow.model import EventRecord, GENESIS_HASH
>>> first = EventRecord.make("2016", "c1", 1, "open", "bureau", "organizer",
...                          "2016-01-04T09:00:00+08:00", None, "research", None, {}, GENESIS_HASH)
>>> verify_chain("c1", [first], expected_version=1, expected_hash=first.hash)
[]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from reviewflow.model import GENESIS_HASH, EventRecord

__all__ = [
    "ChainProblem",
    "VerifyReport",
    "compare_case",
    "verify_chain",
    "verify_snapshot",
]

_UNSET: Any = None


@attrs.frozen
class ChainProblem:
    """One problem ``verify`` found: the case, the event, what is wrong, and (for a stored
    field that differs from what the events say) the field, the value the events give
    (``expected``) and the value stored (``found``).

    ``kind`` says which check found it: ``chain`` (a broken link), ``field`` (the
    stored case differs from its replayed events), ``ballots`` (a closed ballot box
    does not recount to its sealed ``close_vote``), ``policy`` (the campaign's policy
    differs from its sealed digest), ``replay`` (an event that cannot be replayed).
    """

    case_id: str
    position: int
    message: str
    field: str | None = None
    expected: Any = _UNSET
    found: Any = _UNSET
    kind: str = "chain"

    def __str__(self) -> str:
        where = f"case {self.case_id!r}" if self.case_id else ""
        if self.field is not None:
            where = f"{where}, field {self.field}" if where else f"field {self.field}"
        if not where:  # a problem of the campaign (an anchor, the refusal journal)
            return self.message
        if not self.position:
            return f"{where}: {self.message}"
        return f"{where}, event {self.position}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        """Return the problem as plain JSON data (for ``reviewflow verify --json``)."""
        return {"case_id": self.case_id, "position": self.position, "kind": self.kind,
                "field": self.field, "expected": self.expected, "found": self.found,
                "message": self.message}


@attrs.frozen
class VerifyReport:
    """What :meth:`Campaign.verify` found: ``ok`` when every chain is intact."""

    cases: int
    events: int
    problems: tuple[ChainProblem, ...]
    #: The digests of the anchors the record was checked against (given and kept in the
    #: store), to compare with the digest printed in the 公示 notice.
    anchors: tuple[str, ...] = ()
    #: What could not be checked (no anchor, no audit key), one sentence each.
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def __str__(self) -> str:
        if self.ok:
            lines = [f"verified {self.cases} cases, {self.events} events: the audit chain is "
                     "intact" + (f" and extends {len(self.anchors)} anchor(s)" if self.anchors else "")]
        else:
            cases = len({p.case_id for p in self.problems})
            lines = [f"{len(self.problems)} problem(s) in {cases} of {self.cases} cases "
                     "(the record does not match what is stored):"]
            lines += [f"  {p}" for p in self.problems]
        lines += [f"note: {n}" for n in self.notes]
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


#: Snapshot fields that must equal what the last event of a kind recorded:
#: (event, snapshot key, keys of the record's data that the snapshot holds).
_RECORDED_FIELDS: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    ("finish_evaluation", "evaluation", ("score", "rounded")),
    ("publish_results", "publication", None),
)


def verify_snapshot(
    case_id: str, stage: str, data: Mapping[str, Any], records: Sequence[EventRecord],
) -> list[ChainProblem]:
    """Return where a case's stored snapshot disagrees with its (verified) events.

    The chain proves the events; this ties the snapshot to them: the stage is where the
    last event led, and the recorded results (the evaluation's score, the publication)
    equal what their events recorded, so an edit of the stored score is found too.
    """
    if records and records[-1].to_stage != stage:
        return [ChainProblem(case_id, len(records),
                             f"the case is in stage {stage!r} but its last event leads to "
                             f"{records[-1].to_stage!r}: the snapshot was edited")]
    for event, key, keys in _RECORDED_FIELDS:
        last = next((r for r in reversed(records) if r.event == event), None)
        if last is None:
            continue
        recorded = ({k: v for k, v in last.data.items() if k != "clock"} if keys is None
                    else {k: last.data.get(k) for k in keys})  # "clock": the record's own mark
        stored = data.get(key)
        if keys is not None and isinstance(stored, Mapping):
            stored = {k: stored.get(k) for k in keys}
        if stored != recorded:
            return [ChainProblem(case_id, last.seq,
                                 f"the stored {key} ({stored!r}) differs from what event "
                                 f"{last.seq} ({event}) recorded ({recorded!r}): the snapshot "
                                 "was edited")]
    return []


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _diff(path: str, expected: Any, found: Any, out: list[tuple[str, Any, Any]]) -> None:
    """Append (path, expected, found) for each place two JSON values differ."""
    if expected == found and type(expected) is type(found):
        return
    if isinstance(expected, Mapping) and isinstance(found, Mapping):
        for key in sorted(set(expected) | set(found), key=str):
            _diff(f"{path}.{key}", expected.get(key, _MISSING), found.get(key, _MISSING), out)
        return
    if expected == found and not (isinstance(expected, bool) or isinstance(found, bool)):
        return  # 1 and 1.0: the same JSON number
    out.append((path, expected, found))


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


_MISSING: Any = _Missing()


def compare_case(case: Any, replayed: Any) -> list[ChainProblem]:
    """Return each field where a stored case differs from its replayed events.

    ``case`` is a stored :class:`~reviewflow.model.Case`; ``replayed`` the
    :class:`~reviewflow._replay.Replayed` state its (verified) records fold into. Every
    field is compared: stage, version, last hash, organisation, secretary, previous
    case, and every ``data`` field down to its leaves (``data.vote.good``), each
    difference one :class:`ChainProblem` with the field, the value the events give
    and the value stored.
    """
    stored = {
        "stage": case.stage.value, "version": case.version, "last_hash": case.last_hash,
        "organization": case.organization, "secretary": case.secretary.to_json(),
        "previous_case_id": case.previous_case_id,
    }
    diffs: list[tuple[str, Any, Any]] = []
    for name, expected in replayed.fields().items():
        _diff(name, expected, stored[name], diffs)
    _diff("data", replayed.data, case.data, diffs)
    problems = []
    for path, expected, found in diffs:
        top = path.split(".")[1] if path.startswith("data.") else path.split(".")[0]
        seq, event = replayed.set_by.get(top, (replayed.version, ""))
        sealed = f"event {seq} ({event}) sealed" if event else "the events give"
        problems.append(ChainProblem(
            case.case_id, seq,
            f"stored {path} is {_short(found)} but {sealed} {_short(expected)}: the stored "
            "case was edited",
            field=path, expected=None if expected is _MISSING else expected,
            found=None if found is _MISSING else found, kind="field",
        ))
    return problems
