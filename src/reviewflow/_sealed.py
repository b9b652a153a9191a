"""The cases as their sealed events say they are: what results, publication and exports read.

The case row is a snapshot anyone with write access to the database could edit; the
events are sealed on each case's hash chain. :func:`sealed_cases` reads each case's
events, checks its chain and folds them (:func:`reviewflow._replay.replay`) into the
case they imply, so that a score, a grade, a rank, the counts behind them and the
person they belong to come from the sealed record, never from the row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from reviewflow._replay import UnknownEvent, replay
from reviewflow.audit import verify_chain
from reviewflow.exceptions import StoreError
from reviewflow.model import Actor, Case, EventRecord, Stage

if TYPE_CHECKING:
    from reviewflow.campaign import Campaign

__all__ = ["sealed_case", "sealed_cases"]


def sealed_case(c: Campaign, case_id: str, records: Sequence[EventRecord],
                version: int | None = None, last_hash: str | None = None) -> Case:
    """Return the case its sealed ``records`` imply; StoreError when the chain is broken."""
    problems = verify_chain(case_id, records, expected_version=version, expected_hash=last_hash)
    if not records:
        problems = problems or []
    if problems:
        raise StoreError(f"the record of case {case_id!r} is broken ({problems[0]}); its "
                         "score cannot be read from it: run `reviewflow verify`")
    try:
        state = replay(records)
    except (UnknownEvent, KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"the events of case {case_id!r} cannot be replayed ({exc}); run "
                         "`reviewflow verify`") from None
    return Case(c.id, case_id, state.organization, Actor.from_json(state.secretary),
                Stage(state.stage), state.version, state.last_hash, state.data,
                state.previous_case_id, c.store)


def sealed_cases(c: Campaign, case_ids: Iterable[str] | None = None) -> list[Case]:
    """Return the campaign's cases (all, by id, or those given, in order) as sealed."""
    from reviewflow import _verify

    if case_ids is None:
        return [sealed_case(c, case_id, records, version, last_hash)
                for _case, case_id, version, last_hash, records in _verify.histories(c)
                if records]
    out = []
    for case_id in case_ids:
        stored = c.case(case_id)  # raises UnknownCaseError
        out.append(sealed_case(c, case_id, c.store.history(c.id, case_id), stored.version,
                               stored.last_hash))
    return out
