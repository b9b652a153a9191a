"""``Campaign.verify``: every check of the record, streamed case by case.

For each case (read with its events in one streamed pass where the store can):

1. the hash chain (:func:`reviewflow.audit.verify_chain`): positions, links, hashes, and
   that the case row ends where its chain ends;
2. the replay (:func:`reviewflow._replay.replay`): the events folded into the state they
   imply, compared with the stored case field by field
   (:func:`reviewflow.audit.compare_case`);
3. the ballot boxes: every round a sealed ``close_vote`` (or a re-vote's void) closed is
   recounted from the ballot box and the sealed paper entries, and the recount and the
   ballots' digest compared with what that event sealed (not with the case row).

Memory stays bounded by one case's events at a time (plus the problems found).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reviewflow._replay import Replayed, UnknownEvent, replay
from reviewflow.audit import ChainProblem, VerifyReport, compare_case, verify_chain
from reviewflow.exceptions import ReviewflowError
from reviewflow.model import Case, EventRecord

if TYPE_CHECKING:
    from reviewflow.campaign import Campaign

__all__ = ["histories", "recount_sealed", "verify_campaign"]


def histories(c: Campaign) -> Iterator[tuple[Case | None, str, int, str, Sequence[EventRecord]]]:
    """Yield ``(stored case, case id, version, last hash, records)`` for every case, streamed
    where the store can (``iter_histories``), else case by case. The stored case is None
    when its row cannot be read as a case."""
    streamed = getattr(c.store, "iter_histories", None)
    if streamed is not None:
        for chain in streamed(c.id):
            case = getattr(chain, "case", None)
            if case is None:
                try:
                    case = c.store.get(c.id, chain.case_id)
                except (ReviewflowError, ValueError, KeyError, TypeError):
                    case = None
            yield case, chain.case_id, chain.version, chain.last_hash, chain.records
        return
    for case in c.store.cases(c.id):
        yield (case, case.case_id, case.version, case.last_hash,
               c.store.history(c.id, case.case_id))


def _sealed_rounds(records: Sequence[EventRecord]) -> Iterator[tuple[EventRecord, int,
                                                                     Mapping[str, Any]]]:
    """Yield (record, round, sealed {status, tally, digest}) for every round an event closed."""
    for record in records:
        if record.event == "close_vote":
            yield record, int(record.data["round"]), record.data
        elif record.event == "revote" and record.data.get("voided"):
            voided = record.data["voided"]
            yield record, int(voided["round"]), voided


def recount_sealed(c: Campaign, case_id: str, records: Sequence[EventRecord],
                   state: Replayed | None = None, box: Any = None) -> list[ChainProblem]:
    """Recount every closed ballot box of one case against its sealed event.

    The ballots come from the ballot box, the paper entries and issued counts from the
    sealed events (replayed); the recount and the ballots' digest must equal the tally
    and digest the closing event sealed.
    """
    from reviewflow._engine import vote_work
    from reviewflow.ballots import PaperCount, VoteRound, ballots_digest, recount

    sealed = list(_sealed_rounds(records))
    if not sealed:
        return []
    if box is None:
        box = vote_work.ballot_box(c)
    if state is None:
        state = replay(records)
    rounds = {int(r["number"]): r for r in (state.data.get("ballot_vote") or {}).get("rounds", ())}
    problems: list[ChainProblem] = []
    for record, number, seal in sealed:
        kept = rounds.get(number, {})
        r = VoteRound(number=number,
                      issued={str(k): int(v) for k, v in kept.get("issued", {}).items()},
                      paper={str(k): PaperCount.from_json(v)
                             for k, v in kept.get("paper", {}).items()})
        r.ballots = box.ballots(case_id, number)
        where = f"round {number}"
        try:
            counted: Any = recount(r, c.policy.scoring).to_json()
        except ReviewflowError as exc:  # a stored ballot no longer reads as a ballot
            problems.append(ChainProblem(
                case_id, record.seq,
                f"{where}: a stored ballot cannot be counted ({exc}): the ballots were "
                f"changed after event {record.seq} ({record.event}) closed the round",
                field=f"ballots.round{number}", expected=seal.get("tally"), found=None,
                kind="ballots"))
            counted = None
        if counted is not None and counted != seal.get("tally"):
            problems.append(ChainProblem(
                case_id, record.seq,
                f"{where}: the ballot box recounts to {counted!r} but event {record.seq} "
                f"({record.event}) sealed {seal.get('tally')!r}: the ballots were changed "
                "after closing",
                field=f"ballots.round{number}.tally", expected=seal.get("tally"),
                found=counted, kind="ballots"))
        digest = ballots_digest(r)
        if digest != seal.get("digest"):
            problems.append(ChainProblem(
                case_id, record.seq,
                f"{where}: the stored ballots' digest differs from the one event "
                f"{record.seq} ({record.event}) sealed: the ballots were changed after closing",
                field=f"ballots.round{number}.digest", expected=seal.get("digest"),
                found=digest, kind="ballots"))
    return problems


def check_case(c: Campaign, case: Case | None, case_id: str, version: int, last_hash: str,
               records: Sequence[EventRecord], box: Any = None) -> list[ChainProblem]:
    """Every check of one case: chain, then replay against the stored case, then ballots."""
    found = verify_chain(case_id, records, expected_version=version, expected_hash=last_hash)
    if found:
        return found  # a broken chain: what it folds into proves nothing
    if case is None:
        return [ChainProblem(case_id, len(records),
                             "the stored case cannot be read as a case (its row was edited)",
                             field="state", kind="field")]
    try:
        state = replay(records)
    except UnknownEvent as exc:
        return [ChainProblem(case_id, exc.record.seq,
                             f"{exc}: this reviewflow cannot check what it changed "
                             "(a newer reviewflow, or a plugin's event)", kind="replay")]
    except (KeyError, TypeError, ValueError) as exc:
        return [ChainProblem(case_id, len(records),
                             f"the events cannot be replayed ({type(exc).__name__}: {exc})",
                             kind="replay")]
    problems = compare_case(case, state)
    problems += recount_sealed(c, case_id, records, state, box)
    return problems


def verify_campaign(c: Campaign, anchors: Iterable[Any] = ()) -> VerifyReport:
    """Run every check on every case of the campaign; see the module docs. The record must
    also extend every anchor (given, and kept in the store): :mod:`reviewflow.anchoring`."""
    from reviewflow import anchoring
    from reviewflow._engine import vote_work
    from reviewflow._policy_seal import verify_policy

    check = anchoring.Check(c, anchors)
    box = vote_work.ballot_box(c)
    problems: list[ChainProblem] = verify_policy(c)
    count = events = 0
    for case, case_id, version, last_hash, records in histories(c):
        count += 1
        events += len(records)
        problems += check_case(c, case, case_id, version, last_hash, records, box)
        check.chain(case_id, records)
    problems += check.finish()
    return VerifyReport(count, events, tuple(problems),
                        anchors=tuple(a.digest for a in check.anchors), notes=tuple(check.notes))


def verify_ballots(c: Campaign) -> list[ChainProblem]:
    """Recount every closed ballot box of the campaign against its sealed events."""
    from reviewflow._engine import vote_work

    box = vote_work.ballot_box(c)
    problems: list[ChainProblem] = []
    for _case, case_id, _v, _h, records in histories(c):
        try:
            problems += recount_sealed(c, case_id, records, None, box)
        except (UnknownEvent, KeyError, TypeError, ValueError) as exc:
            problems.append(ChainProblem(case_id, len(records),
                                         f"the events cannot be replayed ({exc})",
                                         kind="replay"))
    return problems
