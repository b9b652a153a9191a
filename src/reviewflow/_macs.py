"""Keyed MACs of sealed events: made where every commit passes (the store's commit).

When an audit key is attached to a store (``Campaign(..., audit_key=...)``), each
commit carries one :class:`EventMacs` extra row set with an HMAC-SHA256 over the hash
of each of its events, written in the same transaction as the events. The key is
never stored; the hash format of the events does not change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from reviewflow.store.base import Commit

__all__ = ["EventMacs", "anchor_mac", "event_mac", "with_macs"]

_EVENT = b"reviewflow event\x1f"
_ANCHOR = b"reviewflow anchor\x1f"
_sha256 = hashlib.sha256


class EventMacs(NamedTuple):
    """The MACs of one commit's events: ``(case_id, seq, mac)`` each (an extra row set)."""

    campaign_id: str
    rows: tuple[tuple[str, int, str], ...]


def _pads(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """The HMAC-SHA256 inner and outer hashes with the key's pads absorbed (RFC 2104),
    made once per key: a MAC then costs two hash copies instead of a new HMAC object."""
    pads = _PADS.get(key)
    if pads is None:
        block = key if len(key) <= 64 else _sha256(key).digest()
        block = block.ljust(64, b"\0")
        pads = (_sha256(bytes(b ^ 0x36 for b in block)), _sha256(bytes(b ^ 0x5C for b in block)))
        if len(_PADS) >= 16:
            _PADS.clear()
        _PADS[key] = pads
    return pads


_PADS: dict[bytes, tuple[hashlib._Hash, hashlib._Hash]] = {}


def _hmac(key: bytes, message: bytes) -> str:
    inner, outer = _pads(key)
    i = inner.copy()
    i.update(message)
    o = outer.copy()
    o.update(i.digest())
    return o.hexdigest()


def event_mac(key: bytes, record_hash: str) -> str:
    """Return the MAC of an event: HMAC-SHA256 (hex) over its hash, with a domain prefix.

    >>> import hmac
    >>> event_mac(b"k" * 16, "ab") == hmac.new(b"k" * 16, _EVENT + b"ab", "sha256").hexdigest()
    True
    """
    return _hmac(key, _EVENT + record_hash.encode())


def anchor_mac(key: bytes, digest: str) -> str:
    """Return the MAC of an anchor: HMAC-SHA256 (hex) over its digest, with a domain prefix."""
    return _hmac(key, _ANCHOR + digest.encode())


def with_macs(commits: Sequence[Commit], key: bytes) -> list[Commit]:
    """Return the commits, each with an :class:`EventMacs` extra for its events.

    (On every commit while a key is configured: the HMAC is inlined, and the commit
    rebuilt without the named tuple's ``_replace``.)
    """
    inner, outer = _pads(key)
    out = []
    for c in commits:
        events = c.events
        if events:
            rows = []
            for r in events:
                i = inner.copy()
                i.update(_EVENT + r.hash.encode())
                o = outer.copy()
                o.update(i.digest())
                rows.append((r.case_id, r.seq, o.hexdigest()))
            macs = _new_tuple(EventMacs, (c[0].campaign_id, tuple(rows)))
            c = _new_tuple(type(c), (c[0], c[1], events, c[3], c[4], (*c[5], macs), *c[6:]))
        out.append(c)
    return out


_new_tuple = tuple.__new__
