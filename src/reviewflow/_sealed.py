"""The cases as their sealed events say they are: what results, publication and exports read.

The case row is a snapshot anyone with write access to the database could edit; the
events are sealed on each case's hash chain. :func:`sealed_cases` reads each case's
events, checks its chain and folds them (:func:`reviewflow._replay.replay`) into the
case they imply, so that a score, a grade, a rank, the counts behind them and the
person they belong to come from the sealed record, never from the row.

:func:`histories` streams a campaign's cases with their events (what ``verify`` reads too).
This module asks only the store: it sits below the vote work, publication and verify.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from reviewflow._names import lookup
from reviewflow._replay import UnknownEvent, replay
from reviewflow.audit import verify_chain
from reviewflow.exceptions import ReviewflowError, StoreError, UnknownCaseError
from reviewflow.model import Actor, Case, EventRecord, Stage
from reviewflow.store.base import Store

__all__ = ["History", "histories", "sealed_case", "sealed_cases", "stored_case"]

#: ``(stored case, case id, version, last hash, records)``; the stored case is None when
#: its row cannot be read as a case.
History = tuple[Case | None, str, int, str, Sequence[EventRecord]]


def histories(store: Store, campaign_id: str) -> Iterator[History]:
    """Yield a :data:`History` for every case of the campaign, as the store streams them
    (``iter_histories``)."""
    for chain in store.iter_histories(campaign_id):
        case = chain.case
        if case is None:
            try:
                case = store.get(campaign_id, chain.case_id)
            except (ReviewflowError, ValueError, KeyError, TypeError):
                case = None
        yield case, chain.case_id, chain.version, chain.last_hash, chain.records


def sealed_case(store: Store, campaign_id: str, case_id: str, records: Sequence[EventRecord],
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
    return Case(campaign_id, case_id, state.organization, Actor.from_json(state.secretary),
                Stage(state.stage), state.version, state.last_hash, state.data,
                state.previous_case_id, store)


def sealed_cases(store: Store, campaign_id: str,
                 case_ids: Iterable[str] | None = None) -> list[Case]:
    """Return the campaign's cases (all, by id, or those given, in order) as sealed; a case
    id the campaign lacks raises UnknownCaseError."""
    if case_ids is None:
        return [sealed_case(store, campaign_id, case_id, records, version, last_hash)
                for _case, case_id, version, last_hash, records in histories(store, campaign_id)
                if records]
    out = []
    for case_id in case_ids:
        stored = stored_case(store, campaign_id, case_id)
        out.append(sealed_case(store, campaign_id, stored.case_id,
                               store.history(campaign_id, stored.case_id), stored.version,
                               stored.last_hash))
    return out


def stored_case(store: Store, campaign_id: str, case_id: str) -> Case:
    """Return the stored case (its row); UnknownCaseError when the campaign has none."""
    case_id = lookup(case_id)
    case = store.get(campaign_id, case_id)
    if case is None:
        raise UnknownCaseError(
            f"no case {case_id!r} in campaign {campaign_id!r}; open it first with open_case()"
        )
    return case
