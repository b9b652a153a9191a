"""The parts a store offers beside the case store proper (:class:`~reviewflow.store.base.Store`).

Every store of reviewflow (:class:`~reviewflow.store.MemoryStore`, ``SqlStore``) offers
all of them; the features call them directly:

* :class:`DeadlineIndex`: case ids by next rung fire time and by due time, fed by the
  :class:`~reviewflow.store.rows.RungSchedule` rows every commit carries, so that the
  sweep does not scan;
* :class:`BallotBox` (``store.ballot_box(campaign_id)``): a campaign's tokens and ballots,
  apart from the cases;
* :class:`DeliveryLog` (``store.delivery_log(campaign_id)``): failed deliveries to the hooks;
* :class:`CampaignChain`: the campaign's own chain (the sealed policy and its amendments);
* :class:`AnchorShelf`: the anchors taken of a campaign, and the keyed MACs of its events.

:class:`~reviewflow.store.base.Store` is all of them together with the case store proper.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from reviewflow.store.rows import LogRow

if TYPE_CHECKING:
    from reviewflow.ballots import Ballot, IssuedToken
    from reviewflow.model import EventRecord

__all__ = ["AnchorShelf", "BallotBox", "CampaignChain", "DeadlineIndex", "DeliveryLog"]


@runtime_checkable
class DeadlineIndex(Protocol):
    """What a store offers so that the sweep does not scan."""

    def deadline_due(self, campaign_id: str, until_us: int, limit: int | None = None) -> list[str]:
        """Return ids of cases whose next fire time is at or before ``until_us``, earliest first."""

    def deadline_overdue(self, campaign_id: str, at_us: int, limit: int | None = None) -> list[str]:
        """Return ids of cases whose current due time is before ``at_us``, earliest first."""


class BallotBox(Protocol):
    """Where a campaign's tokens and ballots are kept, apart from the cases.

    ``cast`` must be atomic: redeem the token, check the round is not frozen, store the
    ballot, all or nothing. A SQL store implements it as one transaction
    (``UPDATE token SET used = true WHERE hash = ? AND NOT used`` + ``INSERT`` ballot).

    A box whose ``in_commit`` attribute is true takes new tokens as
    :class:`~reviewflow.store.rows.TokenRows` and freezes as
    :class:`~reviewflow.store.rows.RoundFrozen` extra rows of the step's commit instead of
    through :meth:`add_tokens` and :meth:`freeze` (which then serve direct use only).
    """

    lock: threading.RLock
    #: True when tokens and freezes come as extra rows of the step's commit.
    in_commit: bool

    def add_tokens(self, tokens: Sequence[IssuedToken]) -> None:
        """Keep newly issued tokens (their hashes)."""

    def cast(self, case_id: str, round: int, token: str, choice: str | None,
             build: Callable[[int, str], Ballot]) -> Ballot:
        """Redeem ``token`` and store ``build(vote_round_number, category)``'s ballot."""

    def ballots(self, case_id: str, round: int) -> dict[str, Ballot]:
        """Return the round's ballots by id."""

    def freeze(self, case_id: str, round: int) -> None:
        """Refuse further casts in the round."""

    def thaw(self, case_id: str, round: int) -> None:
        """Undo :meth:`freeze` (the close that froze it was not committed)."""

    def scrub(self) -> bool:
        """Remove old copies of ballot rows from the database's files; False when the box
        keeps nothing on disk (raises ScrubIncomplete when the database did not do it)."""


class DeliveryLog(Protocol):
    """A campaign's failed deliveries, kept by the store."""

    def fail(self, rows: Sequence[LogRow], next_try: Callable[[int], str],
             offered: Sequence[tuple[str, int]]) -> None:
        """Write first failures in one transaction: a new key is written as given, an
        existing one (told again after a crash) counts one more attempt and keeps its
        first time; ``next_try_at`` is ``next_try(attempts)``. A durable log takes the
        ``offered`` events (case id, seq) out of the outbox in the same transaction."""

    def settle(self, failed: Sequence[LogRow], done: Sequence[tuple[str, int, str, str]]
               ) -> None:
        """In one transaction: rewrite ``failed`` rows as given, delete the ``done`` keys."""

    def due(self, now_key: str, plugins: frozenset[str], limit: int) -> list[LogRow]:
        """Return rows of these plugins whose ``next_try_at`` is at or before ``now_key``,
        soonest first."""

    def claim(self, rows: Sequence[LogRow], lease_key: str) -> list[LogRow]:
        """Take a lease on ``rows`` (as :meth:`due` returned them): move each row's
        ``next_try_at`` to ``lease_key`` only where its attempts and next try are still
        the ones read (compare and set); return the rows this caller holds, with the
        lease as next try. A row another dispatcher claimed or settled meanwhile is left
        out, so that two dispatchers do not both deliver it."""

    def rows(self, limit: int) -> list[LogRow]:
        """Return every row, soonest next try first."""


class CampaignChain(Protocol):
    """The campaign's own hash chain: the sealed policy and its amendments."""

    def campaign_events(self, campaign_id: str) -> list[EventRecord]:
        """Return the campaign's chain, oldest first (empty for an unknown campaign)."""

    def append_campaign_event(self, record: EventRecord, policy_json: str | None = None) -> None:
        """Append ``record`` (ConflictError unless it is the next); with ``policy_json``,
        keep it as the campaign's policy in the same step."""


class AnchorShelf(Protocol):
    """The anchors kept of a campaign, and the keyed MACs of its events (see
    :mod:`reviewflow.anchoring`)."""

    #: The key event MACs are sealed with at commit (None: no MACs); never stored.
    audit_key: bytes | None

    def save_anchor(self, campaign_id: str, digest: str, at: str, text: str) -> None:
        """Keep an anchor's text (once: the same digest again is left as it is)."""

    def stored_anchors(self, campaign_id: str) -> list[str]:
        """Return the texts of the campaign's kept anchors, oldest first."""

    def stored_macs(self, campaign_id: str, case_ids: Sequence[str]
                    ) -> dict[tuple[str, int], str]:
        """Return the kept MACs of these cases' events, by ``(case_id, seq)``."""
