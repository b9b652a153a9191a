"""The checks of one case's record beyond its chain, and the recount of the ballot boxes.

For each case (read with its events in one streamed pass where the store can,
:func:`reviewflow._sealed.histories`), :func:`check_case` runs:

1. the hash chain (:func:`reviewflow.audit.verify_chain`): positions, links, hashes, and
   that the case row ends where its chain ends;
2. the replay (:func:`reviewflow._replay.replay`): the events folded into the state they
   imply, compared with the stored case field by field
   (:func:`reviewflow.audit.compare_case`);
3. the ballot boxes: every round a sealed ``close_vote`` (or a re-vote's void) closed is
   recounted from the ballot box and the sealed paper entries, and the recount and the
   ballots' digest compared with what that event sealed (not with the case row).

Memory stays bounded by one case's events at a time (plus the problems found). What is
checked for the whole campaign (the policy's seal, the anchors, the MACs) is composed
on top of this by :mod:`reviewflow._engine.verification`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from reviewflow._replay import Replayed, UnknownEvent, replay
from reviewflow._sealed import histories
from reviewflow.audit import ChainProblem, compare_case, verify_chain
from reviewflow.ballots import PaperCount, VoteRound, ballots_digest, recount
from reviewflow.exceptions import ReviewflowError
from reviewflow.model import Case, EventRecord
from reviewflow.scoring import ScoringPolicy
from reviewflow.store.base import Store
from reviewflow.store.parts import BallotBox

__all__ = ["check_case", "recount_sealed", "verify_ballots"]


def _sealed_rounds(records: Sequence[EventRecord]) -> Iterator[tuple[EventRecord, int,
                                                                     Mapping[str, Any]]]:
    """Yield (record, round, sealed {status, tally, digest}) for every round an event closed."""
    for record in records:
        if record.event == "close_vote":
            yield record, int(record.data["round"]), record.data
        elif record.event == "revote" and record.data.get("voided"):
            voided = record.data["voided"]
            yield record, int(voided["round"]), voided


def recount_sealed(scoring: ScoringPolicy, box: BallotBox, case_id: str,
                   records: Sequence[EventRecord],
                   state: Replayed | None = None) -> list[ChainProblem]:
    """Recount every closed ballot box of one case against its sealed event.

    The ballots come from the ballot box, the paper entries and issued counts from the
    sealed events (replayed); the recount and the ballots' digest must equal the tally
    and digest the closing event sealed.
    """
    sealed = list(_sealed_rounds(records))
    if not sealed:
        return []
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
            counted: Any = recount(r, scoring).to_json()
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


def check_case(scoring: ScoringPolicy, box: BallotBox, case: Case | None, case_id: str,
               version: int, last_hash: str,
               records: Sequence[EventRecord]) -> list[ChainProblem]:
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
    problems += recount_sealed(scoring, box, case_id, records, state)
    return problems


def verify_ballots(store: Store, campaign_id: str, scoring: ScoringPolicy,
                   box: BallotBox) -> list[ChainProblem]:
    """Recount every closed ballot box of the campaign against its sealed events."""
    problems: list[ChainProblem] = []
    for _case, case_id, _v, _h, records in histories(store, campaign_id):
        try:
            problems += recount_sealed(scoring, box, case_id, records)
        except (UnknownEvent, KeyError, TypeError, ValueError) as exc:
            problems.append(ChainProblem(case_id, len(records),
                                         f"the events cannot be replayed ({exc})",
                                         kind="replay"))
    return problems
