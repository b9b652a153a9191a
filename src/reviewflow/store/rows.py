"""The extra rows features persist with a commit (:attr:`Commit.extras`).

Defined here, in the store layer, so that a store knows every row kind it writes without
importing the features that make them: the deadline index entry and fired rung marks of
the deadline work, the ballot tokens and round freezes of the vote work, and the rows of
the delivery log. Each is plain data; what it means is the feature's business. Also the
:class:`StoredChain` a store's ``iter_histories`` yields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import attrs

from reviewflow.model import Case, EventRecord

if TYPE_CHECKING:
    from reviewflow.ballots import TokenGrant

__all__ = ["LogRow", "RoundFrozen", "RungMark", "RungSchedule", "StoredChain", "TokenRows"]


@attrs.frozen(kw_only=True, slots=True)
class RungSchedule:
    """The deadline index entry of one case, written with every commit that may change it.

    One row per case (upsert on ``campaign_id, case_id``): the current stage, its effective
    due time and the fire time of its next unfired rung, as microseconds since the epoch
    (UTC; None when there is none). A row with both None can be deleted.
    """

    campaign_id: str
    case_id: str
    stage: str
    due_us: int | None
    next_fire_us: int | None


@attrs.frozen(kw_only=True, slots=True)
class RungMark:
    """One fired rung (insert-only; unique on campaign, case, stage, rung id, due).

    The mark is also in the case snapshot (``data["rungs"]``); a durable store keeps these
    rows with a unique key so that the database itself refuses a second firing.
    """

    campaign_id: str
    case_id: str
    stage: str
    rung_id: str
    due_us: int
    #: When the sweep recorded it (ISO 8601 with offset).
    fired_at: str
    #: The ``seq`` of the ``deadline_rung`` event record.
    seq: int


@attrs.frozen(kw_only=True, slots=True)
class TokenRows:
    """Newly issued tokens (by hash) of one round, written with the ``issue_ballots`` commit."""

    campaign_id: str
    case_id: str
    round: int
    grants: tuple[TokenGrant, ...]


@attrs.frozen(kw_only=True, slots=True)
class RoundFrozen:
    """Freeze a round inside the commit that closes or voids it.

    ``ballots`` is how many ballots the tally counted: a box holding another number
    refuses the commit with a ConflictError (a ballot came in while closing), and the
    close is computed again.
    """

    campaign_id: str
    case_id: str
    round: int
    ballots: int


@attrs.frozen
class LogRow:
    """One row of a delivery log; times are fixed-width UTC keys whose text order is time
    order (``2026-01-31T08:00:00.000000Z``)."""

    case_id: str
    seq: int
    plugin: str
    hook: str
    event: str
    attempts: int
    last_error: str
    first_failed_at: str
    next_try_at: str

    @property
    def key(self) -> tuple[str, int, str, str]:
        """The row's identity: case, seq, plugin, hook."""
        return (self.case_id, self.seq, self.plugin, self.hook)


class StoredChain(NamedTuple):
    """One case's stored version, last hash and events, for verifying its hash chain."""

    case_id: str
    version: int
    last_hash: str
    records: list[EventRecord]
    #: The stored case (its row), read in the same pass.
    case: Case | None = None
