"""One-time voting tokens: their hashes, grants, the :class:`TokenBook` protocol and the in-memory book."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import attrs

from reviewflow.exceptions import BallotError

_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read off paper slips


def _normalize_token(token: str) -> str:
    return "".join(ch for ch in str(token).upper() if ch.isalnum())


def token_hash(token: str) -> str:
    """Return the hash a token book stores for a token (the token itself is never stored)."""
    return hashlib.sha256(_normalize_token(token).encode()).hexdigest()


@attrs.frozen(kw_only=True)
class TokenGrant:
    """What a token entitles to: one ballot in one round of one case's vote, in a category."""

    token_hash: str
    case_id: str
    round: int
    category: str


@attrs.frozen(kw_only=True)
class IssuedToken:
    """A token handed to one attendee (the only place its plain text exists)."""

    token: str
    case_id: str
    round: int
    category: str


@runtime_checkable
class TokenBook(Protocol):
    """Where one-time tokens are kept. ``redeem`` must be atomic: of any number of
    concurrent redemptions of one token, exactly one succeeds."""

    def add(self, grants: Sequence[TokenGrant]) -> None:
        """Record newly issued tokens (by hash)."""

    def redeem(self, token: str, case_id: str, round: int) -> TokenGrant:
        """Mark the token used and return its grant, or raise BallotError and change nothing.

        Reasons: ``unknown_token``, ``wrong_case``, ``wrong_round``, ``token_used``.
        """

    def unused(self, case_id: str, round: int) -> int:
        """Return how many tokens of the case's round are still unused."""


def _check_grant(grant: TokenGrant | None, used: bool, case_id: str, round: int) -> TokenGrant:
    if grant is None:
        raise BallotError("unknown_token", "unknown ballot token; check the code on the slip")
    if grant.case_id != case_id:
        raise BallotError("wrong_case", "this ballot token belongs to another case's vote")
    if grant.round != round:
        raise BallotError(
            "wrong_round",
            f"this ballot token is for round {grant.round}; this vote is in round {round}",
        )
    if used:
        raise BallotError("token_used", "this ballot token has already been used")
    return grant


class MemoryTokenBook:
    """A token book in memory, safe across threads (a lock makes ``redeem`` atomic)."""

    def __init__(self) -> None:
        self._grants: dict[str, TokenGrant] = {}
        self._used: set[str] = set()
        self._lock = threading.Lock()

    def add(self, grants: Sequence[TokenGrant]) -> None:
        """Record newly issued tokens (by hash)."""
        with self._lock:
            for g in grants:
                if g.token_hash in self._grants:
                    raise BallotError("duplicate_token", "a token was issued twice")
            for g in grants:
                self._grants[g.token_hash] = g

    def redeem(self, token: str, case_id: str, round: int) -> TokenGrant:
        """Mark the token used and return its grant, or raise BallotError and change nothing."""
        h = token_hash(token)
        with self._lock:
            grant = _check_grant(self._grants.get(h), h in self._used, case_id, round)
            self._used.add(h)
            return grant

    def unused(self, case_id: str, round: int) -> int:
        """Return how many tokens of the case's round are still unused."""
        with self._lock:
            return sum(
                1 for h, g in self._grants.items()
                if g.case_id == case_id and g.round == round and h not in self._used
            )


def new_token() -> str:
    code = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"{code[:5]}-{code[5:]}"
