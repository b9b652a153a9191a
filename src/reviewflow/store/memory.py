"""The in-memory store: one process, no persistence; for tests, simulations and benchmarks.

It owns its parts as the SQL store does: the deadline index (fed by the
:class:`~reviewflow.store.rows.RungSchedule` rows of its commits), each campaign's ballot
box and delivery log, the campaign chains, the anchors and the events' MACs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from reviewflow._macs import EventMacs, with_macs
from reviewflow.exceptions import ConflictError, DuplicateCaseError, InputError, UnknownCaseError
from reviewflow.model import Case, EventRecord, canonical_data
from reviewflow.store._memory_box import MemoryBox
from reviewflow.store._memory_index import MemoryIndex
from reviewflow.store._memory_log import MemoryDeliveryLog
from reviewflow.store.base import Commit, Refusal
from reviewflow.store.rows import RungMark, RungSchedule, StoredChain

__all__ = ["MemoryStore"]


_new_tuple = tuple.__new__
_loads = json.loads


def _kept(record: EventRecord) -> tuple[Any, ...]:
    """A record as the store keeps it: a plain tuple of plain values, its data as the
    canonical JSON text its hash covers.

    The garbage collector stops tracking such a tuple, while it tracks a named tuple, and
    any tuple holding a dict, for good: a history of millions of records then costs no
    time in the collections (the durable stores keep the same text).
    """
    return (record[0], record[1], record[2], record[3], record[4], record[5], record[6],
            record[7], record[8], record[9], canonical_data(record[10]), record[11],
            record[12])


def _record(kept: tuple[Any, ...]) -> EventRecord:
    """The record again, with its data read back from the text (a fresh copy)."""
    return _new_tuple(EventRecord, (*kept[:10], _loads(kept[10]), kept[11], kept[12]))


#: Key tuples of kept snapshots, one object per distinct tuple (see _snapshot).
_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {}


def _copy(value: Any) -> Any:
    """A copy of plain JSON data that shares no list or dict with ``value``."""
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) if type(v) in _NESTED else v for k, v in value.items()}
    if kind is list:
        return [_copy(v) if type(v) in _NESTED else v for v in value]
    if kind is tuple:
        return tuple(_copy(v) if type(v) in _NESTED else v for v in value)
    return value


_NESTED = frozenset({dict, list, tuple})


def _snapshot(case: Case) -> tuple[Any, ...]:
    """A case as the store keeps it: one flat tuple, ``(organization, secretary, stage,
    version, last_hash, previous_case_id, keys, value, value, ...)``: copies of the values of
    ``case.data`` at the end, its keys in a tuple shared by every snapshot with the same keys.

    The store's own: its lists and dicts are copies, and a case read back gets copies of
    them again (:func:`_case`), so nothing a caller holds is shared with it and no caller
    can change a stored vote or score behind the store's back. About 180 bytes less per
    case than a ``Case`` and its ``data`` dict, and one object fewer for the collector.
    """
    data = case.data
    keys = tuple(data)
    shared = _KEYS.get(keys)
    if shared is None:
        if len(_KEYS) >= 4096:  # a bound; the engine's steps make a few dozen key sets
            _KEYS.clear()
        shared = _KEYS.setdefault(keys, keys)
    return (case.organization, case.secretary, case.stage, case.version, case.last_hash,
            case.previous_case_id, shared,
            *[_copy(v) if type(v) in _NESTED else v for v in data.values()])


def _case(campaign_id: str, case_id: str, kept: tuple[Any, ...], source: Any) -> Case:
    """A fresh, detached :class:`Case` from a kept snapshot (its lists and dicts copied)."""
    return Case(campaign_id, case_id, kept[0], kept[1], kept[2], kept[3], kept[4],
                {k: _copy(v) if type(v) in _NESTED else v
                 for k, v in zip(kept[6], kept[7:], strict=True)}, kept[5], source)


def _keep_macs(store: MemoryStore, macs: EventMacs) -> None:
    kept = store.event_macs.setdefault(macs.campaign_id, {})
    for case_id, seq, mac in macs.rows:
        case = kept.get(case_id)
        if case is None:
            case = kept[case_id] = {}
        case[seq] = mac


def _keep_schedule(store: MemoryStore, row: RungSchedule) -> None:
    store._index.apply(row)


def _keep_in_snapshot(_store: MemoryStore, _row: RungMark) -> None:
    """A rung mark: this store keeps it in the case snapshot only (``data["rungs"]``)."""


class _CampaignData:
    __slots__ = ("cases", "chain", "history", "idempotency", "outbox", "policy", "refusals")

    def __init__(self, policy: str) -> None:
        self.policy = policy
        #: Each case's current snapshot, as :func:`_snapshot` keeps it.
        self.cases: dict[str, tuple[Any, ...]] = {}
        #: Each case's event records, as :func:`_kept` keeps them.
        self.history: dict[str, list[tuple[Any, ...]]] = {}
        self.refusals: list[Refusal] = []
        self.outbox: dict[str, EventRecord] = {}
        self.idempotency: dict[str, tuple[str, str, int]] = {}
        #: The campaign's own chain (the sealed policy and its amendments), as kept.
        self.chain: list[tuple[Any, ...]] = []


class MemoryStore:
    """Keep everything in this process's memory; thread-safe, lost at exit."""

    durable = False
    #: Its work runs in this process.
    server = False

    def __init__(self) -> None:
        self._campaigns: dict[str, _CampaignData] = {}
        self._lock = threading.Lock()
        #: Extra-row handlers by type: ``handler(store, row)``, called before the commit
        #: applies (raising refuses it). The store's own row kinds are here from the start.
        self.extra_handlers: dict[type, object] = {
            EventMacs: _keep_macs, RungSchedule: _keep_schedule, RungMark: _keep_in_snapshot,
        }
        self._index = MemoryIndex()
        self._boxes: dict[str, MemoryBox] = {}
        self._logs: dict[str, MemoryDeliveryLog] = {}
        #: The key event MACs are sealed with (see reviewflow.anchoring); never stored.
        self.audit_key: bytes | None = None
        #: Per campaign: the MAC of each event by case id and seq; the anchors' texts by digest.
        self.event_macs: dict[str, dict[str, dict[int, str]]] = {}
        self.anchor_texts: dict[str, dict[str, str]] = {}

    def _c(self, campaign_id: str) -> _CampaignData:
        try:
            return self._campaigns[campaign_id]
        except KeyError:
            raise UnknownCaseError(f"no campaign {campaign_id!r} in this store") from None

    def setup_campaign(self, campaign_id: str, policy_json: str) -> None:
        """Create the campaign if it is new."""
        with self._lock:
            if campaign_id not in self._campaigns:
                self._campaigns[campaign_id] = _CampaignData(policy_json)

    def campaign_policy(self, campaign_id: str) -> str | None:
        """Return the campaign's policy JSON."""
        data = self._campaigns.get(campaign_id)
        return None if data is None else data.policy

    def campaign_events(self, campaign_id: str) -> list[EventRecord]:
        """Return the campaign's own chain (the policy seal and amendments), oldest first."""
        data = self._campaigns.get(campaign_id)
        return [] if data is None else [_record(kept) for kept in data.chain]

    def append_campaign_event(self, record: EventRecord, policy_json: str | None = None) -> None:
        """Append ``record`` to the campaign's chain (ConflictError unless it is the next);
        with ``policy_json``, keep it as the campaign's policy in the same step."""
        with self._lock:
            data = self._c(record.campaign_id)
            if record.seq != len(data.chain) + 1:
                raise ConflictError("", record.seq - 1, len(data.chain))
            data.chain.append(_kept(record))
            if policy_json is not None:
                data.policy = policy_json

    # -- the parts

    def deadline_due(self, campaign_id: str, until_us: int, limit: int | None = None) -> list[str]:
        """Return ids of cases whose next rung fires at or before ``until_us``, earliest first."""
        return self._index.deadline_due(campaign_id, until_us, limit)

    def deadline_overdue(self, campaign_id: str, at_us: int, limit: int | None = None) -> list[str]:
        """Return ids of cases whose current due time is before ``at_us``, earliest first."""
        return self._index.deadline_overdue(campaign_id, at_us, limit)

    def ballot_box(self, campaign_id: str) -> MemoryBox:
        """Return the campaign's ballot box (tokens and ballots in this process)."""
        box = self._boxes.get(campaign_id)
        if box is None:
            with self._lock:
                box = self._boxes.setdefault(campaign_id, MemoryBox())
        return box

    def delivery_log(self, campaign_id: str) -> MemoryDeliveryLog:
        """Return the campaign's failed deliveries to the hooks (in this process)."""
        log = self._logs.get(campaign_id)
        if log is None:
            with self._lock:
                log = self._logs.setdefault(campaign_id, MemoryDeliveryLog())
        return log

    def save_anchor(self, campaign_id: str, digest: str, at: str, text: str) -> None:
        """Keep an anchor's text (once per digest)."""
        with self._lock:
            self.anchor_texts.setdefault(campaign_id, {}).setdefault(digest, text)

    def stored_anchors(self, campaign_id: str) -> list[str]:
        """Return the texts of the campaign's kept anchors, oldest first."""
        return list(self.anchor_texts.get(campaign_id, {}).values())

    def stored_macs(self, campaign_id: str, case_ids: Sequence[str]
                    ) -> dict[tuple[str, int], str]:
        """Return the kept MACs of these cases' events, by ``(case_id, seq)``."""
        kept = self.event_macs.get(campaign_id, {})
        return {(case_id, seq): mac for case_id in case_ids
                for seq, mac in kept.get(case_id, {}).items()}

    def flush(self) -> None:
        """Nothing is kept back."""

    def campaigns(self) -> list[str]:
        """Return the campaign ids."""
        return sorted(self._campaigns)

    def insert_cases(self, commits: Sequence[Commit]) -> None:
        """Add new cases with their opening events, all or none."""
        if self.audit_key is not None:
            commits = with_macs(commits, self.audit_key)
        with self._lock:
            seen: set[tuple[str, str]] = set()
            for c in commits:
                key = (c.case.campaign_id, c.case.case_id)
                if key in seen or c.case.case_id in self._c(c.case.campaign_id).cases:
                    raise DuplicateCaseError(
                        f"case {c.case.case_id!r} is already open in campaign "
                        f"{c.case.campaign_id!r}; use another id or fire events on the open case"
                    )
                seen.add(key)
            kept = [self._kept_of(c) for c in commits]  # all or none: refuse bad data first
            for c, k in zip(commits, kept, strict=True):
                self._apply(self._campaigns[c.case.campaign_id], c, k)

    @staticmethod
    def _kept_of(c: Commit) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
        """The snapshot and records a commit leaves, built before anything is applied (a
        refusal of its data then changes nothing)."""
        snapshot = _snapshot(c.case)
        try:
            records = [_kept(record) for record in c.events]
        except (TypeError, ValueError, RecursionError) as exc:
            raise InputError(
                f"case {c.case.case_id!r}: an event's data is not plain JSON data ({exc}); "
                "nothing was stored"
            ) from None
        return snapshot, records

    def _apply(self, data: _CampaignData, c: Commit,
               kept: tuple[tuple[Any, ...], list[tuple[Any, ...]]] | None = None) -> None:
        snapshot, records = self._kept_of(c) if kept is None else kept
        if c.extras:
            handlers = self.extra_handlers
            for extra in c.extras:
                handler = handlers.get(type(extra))
                if handler is not None:
                    handler(self, extra)  # type: ignore[operator]  # handlers are callables
        case = c.case
        # The store's own snapshot: never the committed object, which its caller keeps.
        case_id = case.case_id
        data.cases[case_id] = snapshot
        events = data.history.get(case_id)
        if events is None:
            data.history[case_id] = records
        else:
            events.extend(records)
        if c.outbox:
            for record in c.events:
                data.outbox[record.event_id] = record
        if c.idempotency_key is not None:
            data.idempotency[c.idempotency_key] = (c.fingerprint or "", case_id, case.version)

    def get(self, campaign_id: str, case_id: str) -> Case | None:
        """Return a detached copy of the case."""
        data = self._campaigns.get(campaign_id)
        if data is None:
            return None
        kept = data.cases.get(case_id)
        if kept is None:
            return None
        return _case(campaign_id, case_id, kept, self)

    def get_many(self, campaign_id: str, case_ids: Sequence[str]) -> dict[str, Case]:
        """Return copies of many cases by id (missing ids are left out)."""
        data = self._campaigns.get(campaign_id)
        if data is None:
            return {}
        found = data.cases
        return {cid: _case(campaign_id, cid, found[cid], self) for cid in case_ids if cid in found}

    def cases(self, campaign_id: str, stage: str | None = None) -> list[Case]:
        """Return copies of the campaign's cases, by case id."""
        data = self._campaigns.get(campaign_id)
        if data is None:
            return []
        return [
            _case(campaign_id, case_id, kept, self) for case_id, kept in sorted(data.cases.items())
            if stage is None or kept[2] == stage
        ]

    def history(self, campaign_id: str, case_id: str) -> list[EventRecord]:
        """Return the case's event records."""
        data = self._campaigns.get(campaign_id)
        if data is None:
            return []
        return [_record(kept) for kept in data.history.get(case_id, ())]

    def iter_histories(self, campaign_id: str) -> Iterator[StoredChain]:
        """Yield every case of the campaign with its events in order, by case id."""
        data = self._campaigns.get(campaign_id)
        if data is None:
            return
        for case_id, kept in sorted(data.cases.items()):
            records = [_record(k) for k in data.history.get(case_id, ())]
            yield StoredChain(case_id, kept[3], kept[4], records,
                              _case(campaign_id, case_id, kept, self))

    def commit(self, commits: Sequence[Commit]) -> list[Exception | None]:
        """Apply each commit whose expected version still holds."""
        if self.audit_key is not None:
            commits = with_macs(commits, self.audit_key)
        results: list[Exception | None] = []
        campaigns = self._campaigns
        with self._lock:
            for c in commits:
                case = c.case
                data = campaigns.get(case.campaign_id)
                current = None if data is None else data.cases.get(case.case_id)
                if data is None or current is None:
                    results.append(UnknownCaseError(
                        f"no case {case.case_id!r} in campaign {case.campaign_id!r}"
                    ))
                    continue
                if current[3] != c.expected_version:  # the kept snapshot's version
                    results.append(ConflictError(case.case_id, c.expected_version, current[3]))
                    continue
                try:
                    self._apply(data, c)
                except Exception as exc:  # an extra-row handler refused; nothing else applied
                    results.append(exc)
                    continue
                results.append(None)
        return results

    def find_idempotent(self, campaign_id: str, key: str) -> tuple[str, str, int] | None:
        """Return what an idempotency key recorded."""
        data = self._campaigns.get(campaign_id)
        return None if data is None else data.idempotency.get(key)

    def record_refusals(self, refusals: Sequence[Refusal]) -> None:
        """Append to the refusal journal."""
        with self._lock:
            for r in refusals:
                self._c(r.campaign_id).refusals.append(r)

    def refusals(self, campaign_id: str, case_id: str | None = None) -> list[Refusal]:
        """Return the refusal journal."""
        data = self._campaigns.get(campaign_id)
        if data is None:
            return []
        return [r for r in data.refusals if case_id is None or r.case_id == case_id]

    def pending_outbox(self, campaign_id: str, limit: int = 1000) -> list[EventRecord]:
        """Return events not yet dispatched."""
        data = self._campaigns.get(campaign_id)
        if data is None:
            return []
        out = []
        for record in data.outbox.values():
            out.append(record)
            if len(out) >= limit:
                break
        return out

    def mark_dispatched(self, campaign_id: str, event_ids: Sequence[str]) -> None:
        """Drop dispatched events from the outbox."""
        data = self._campaigns.get(campaign_id)
        if data is None:
            return
        with self._lock:
            for event_id in event_ids:
                data.outbox.pop(event_id, None)

    def close(self) -> None:
        """Nothing to release."""
