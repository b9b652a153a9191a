"""The store port: what the engine asks of any store (memory, SQLite, PostgreSQL, MySQL).

A store keeps, per campaign, the current snapshot of each case, its append-only
event records, the journal of refused commands, the outbox of events not yet
told to hooks, and idempotency keys. Each :class:`Commit` is atomic: the case's
new snapshot and its events (and any extra rows) are written together or not at
all, and only if the stored version still equals ``expected_version``.

A store also offers the parts of :mod:`reviewflow.store.parts` (the deadline index, each
campaign's ballot box and delivery log, the campaign chain, the anchors): every store of
reviewflow has them all, so the engine and its features call them directly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

import attrs

from reviewflow.model import Case, EventRecord
from reviewflow.store.parts import AnchorShelf, BallotBox, CampaignChain, DeadlineIndex, DeliveryLog
from reviewflow.store.rows import StoredChain

__all__ = ["Commit", "Refusal", "Store"]


class Commit(NamedTuple):
    """One atomic write: a case's new snapshot and the events that led to it.

    (A named tuple: built on every step, so it is kept cheap.)
    """

    #: The new snapshot; its ``version`` is ``expected_version + len(events)``.
    case: Case
    #: The version the command read; 0 for a case being opened.
    expected_version: int
    events: tuple[EventRecord, ...]
    #: Replaying the same key returns the first result; see :meth:`Store.find_idempotent`.
    idempotency_key: str | None = None
    #: A digest of the command (event and data), to refuse a key reused for other data.
    fingerprint: str | None = None
    #: Extra rows written in the same transaction (ballots, token redemptions, rung marks).
    extras: tuple[Any, ...] = ()
    #: Put the events in the outbox for hooks (always, for durable stores; the in-memory
    #: store skips it when nobody listens).
    outbox: bool = True


@attrs.frozen(kw_only=True)
class Refusal:
    """A refused command, kept in the campaign's refusal journal (it changes no case)."""

    campaign_id: str
    case_id: str
    event: str
    actor_id: str
    roles: tuple[str, ...]
    at: str
    stage: str | None
    reason: str
    message: str


@runtime_checkable
class Store(DeadlineIndex, CampaignChain, AnchorShelf, Protocol):
    """What the engine asks of a store. Every method is safe to call from several processes
    for durable stores; the in-memory store is for one process."""

    #: True when the store survives the process (the outbox then matters).
    durable: bool

    @property
    def server(self) -> bool:
        """True when the database works in a process of its own (a batch can commit there
        while the next is built here)."""

    def ballot_box(self, campaign_id: str) -> BallotBox:
        """Return the campaign's ballot box (the same object for the same campaign)."""

    def delivery_log(self, campaign_id: str) -> DeliveryLog:
        """Return the campaign's log of failed deliveries to the hooks."""

    def flush(self) -> None:
        """Write what the store keeps back for a later write (dispatch marks) now."""

    def setup_campaign(self, campaign_id: str, policy_json: str) -> None:
        """Create the campaign if it is new; keep its policy (JSON) for inspection."""

    def campaign_policy(self, campaign_id: str) -> str | None:
        """Return the policy JSON the campaign was set up with, or None if unknown."""

    def campaigns(self) -> list[str]:
        """Return the ids of the campaigns this store holds."""

    def insert_cases(self, commits: Sequence[Commit]) -> None:
        """Write new cases with their opening events, all or none.

        Raises :class:`~reviewflow.exceptions.DuplicateCaseError` naming the first case id
        that exists already (nothing is written then).
        """

    def get(self, campaign_id: str, case_id: str) -> Case | None:
        """Return a detached snapshot of the case (bound to this store for history)."""

    def get_many(self, campaign_id: str, case_ids: Sequence[str]) -> dict[str, Case]:
        """Return detached snapshots of many cases by id; missing ids are left out."""

    def cases(self, campaign_id: str, stage: str | None = None) -> list[Case]:
        """Return snapshots of the campaign's cases (in one stage, if given), by case id."""

    def history(self, campaign_id: str, case_id: str) -> list[EventRecord]:
        """Return the case's event records in order."""

    def iter_histories(self, campaign_id: str) -> Iterator[StoredChain]:
        """Yield every case of the campaign with its events in order, by case id (for
        ``verify``; ``case`` None where the stored row cannot be read as a case)."""

    def commit(self, commits: Sequence[Commit]) -> list[Exception | None]:
        """Apply each commit atomically; return, per commit, None or the error that stopped it.

        A stale ``expected_version`` gives :class:`~reviewflow.exceptions.ConflictError` and
        writes nothing for that commit; the others still apply. Batches may share one
        database transaction (with a savepoint per commit), never one per row.
        """

    def find_idempotent(self, campaign_id: str, key: str) -> tuple[str, str, int] | None:
        """Return ``(fingerprint, case_id, version)`` stored for an idempotency key, if any."""

    def record_refusals(self, refusals: Sequence[Refusal]) -> None:
        """Append refused commands to the refusal journal."""

    def refusals(self, campaign_id: str, case_id: str | None = None) -> list[Refusal]:
        """Return the refusal journal, oldest first."""

    def pending_outbox(self, campaign_id: str, limit: int = 1000) -> list[EventRecord]:
        """Return committed events not yet marked dispatched, oldest first."""

    def mark_dispatched(self, campaign_id: str, event_ids: Sequence[str]) -> None:
        """Mark events as told to the hooks."""

    def close(self) -> None:
        """Release connections and files."""
