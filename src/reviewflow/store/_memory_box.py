"""The in-memory store's ballot box: a token book and ballots per (case, round), one lock.

One box per campaign, kept by its :class:`~reviewflow.store.memory.MemoryStore`
(``store.ballot_box(campaign_id)``). Tokens come through :meth:`MemoryBox.add_tokens` and
freezes through :meth:`MemoryBox.freeze` (``in_commit`` is False): the vote work holds
the box's lock around the step, so no cast lands between a tally and its commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from reviewflow.ballots import Ballot, IssuedToken, MemoryTokenBook, TokenGrant, _InIdOrder, token_hash
from reviewflow.exceptions import BallotError

__all__ = ["MemoryBox"]


class MemoryBox:
    """A ballot box in memory: a token book and ballots per (case, round), one lock."""

    #: Tokens and freezes come through add_tokens() and freeze(), not as commit rows.
    in_commit = False

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.book = MemoryTokenBook()
        self._ballots: dict[tuple[str, int], _InIdOrder] = {}
        self._frozen: set[tuple[str, int]] = set()

    def add_tokens(self, tokens: Sequence[IssuedToken]) -> None:
        """Keep newly issued tokens (by hash)."""
        self.book.add([TokenGrant(token_hash=token_hash(t.token), case_id=t.case_id,
                                  round=t.round, category=t.category) for t in tokens])

    def cast(self, case_id: str, round: int, token: str, choice: str | None,
             build: Callable[[int, str], Ballot]) -> Ballot:
        """Redeem ``token`` and keep ``build(round, category)``'s ballot, or refuse both."""
        with self.lock:
            if (case_id, round) in self._frozen:
                raise BallotError("vote_closed", f"the vote of case {case_id!r} is closed")
            grant = self.book.redeem(token, case_id, round)
            ballot = build(grant.round, grant.category)
            held = self._ballots.setdefault((case_id, round), _InIdOrder())
            held[ballot.ballot_id] = ballot  # listed in id order when read
            return ballot

    def ballots(self, case_id: str, round: int) -> dict[str, Ballot]:
        """Return the round's ballots by id."""
        with self.lock:  # by random id, never in the order cast
            return dict(sorted(self._ballots.get((case_id, round), {}).items()))

    def freeze(self, case_id: str, round: int) -> None:
        """Refuse further casts in the round."""
        with self.lock:
            self._frozen.add((case_id, round))

    def thaw(self, case_id: str, round: int) -> None:
        """Undo :meth:`freeze`."""
        with self.lock:
            self._frozen.discard((case_id, round))

    def scrub(self) -> bool:
        """Nothing to scrub: no copy of a ballot is ever on disk. Returns False."""
        return False
