"""The in-memory store's delivery log: a campaign's failed deliveries to the hooks, in this
process (``MemoryStore.delivery_log(campaign_id)``; lost at exit, like the store)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import attrs

from reviewflow.store.rows import LogRow

__all__ = ["MemoryDeliveryLog"]


class MemoryDeliveryLog:
    """A delivery log in this process's memory (one per campaign of a MemoryStore)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, int, str, str], LogRow] = {}
        self._lock = threading.Lock()

    def fail(self, rows: Sequence[LogRow], next_try: Callable[[int], str],
             offered: Sequence[tuple[str, int]] = ()) -> None:
        """Write first failures; an existing key counts one more attempt (``offered``: the
        caller marks them in the in-memory store, which a crash loses anyway)."""
        with self._lock:
            for row in rows:
                old = self._rows.get(row.key)
                attempts = 1 if old is None else old.attempts + 1
                self._rows[row.key] = attrs.evolve(
                    row, attempts=attempts, next_try_at=next_try(attempts),
                    first_failed_at=row.first_failed_at if old is None else old.first_failed_at)

    def settle(self, failed: Sequence[LogRow], done: Sequence[tuple[str, int, str, str]]
               ) -> None:
        """Rewrite failed rows, drop delivered ones."""
        with self._lock:
            for row in failed:
                self._rows[row.key] = row
            for key in done:
                self._rows.pop(key, None)

    def due(self, now_key: str, plugins: frozenset[str], limit: int) -> list[LogRow]:
        """Rows of these plugins due at ``now_key``."""
        with self._lock:
            found = [r for r in self._rows.values()
                     if r.next_try_at <= now_key and r.plugin in plugins]
        found.sort(key=lambda r: (r.next_try_at, r.key))
        return found[:limit]

    def claim(self, rows: Sequence[LogRow], lease_key: str) -> list[LogRow]:
        """Lease the rows still as read (see :meth:`~reviewflow.store.parts.DeliveryLog.claim`)."""
        held: list[LogRow] = []
        with self._lock:
            for row in rows:
                now = self._rows.get(row.key)
                if (now is not None and now.attempts == row.attempts
                        and now.next_try_at == row.next_try_at):
                    self._rows[row.key] = leased = attrs.evolve(now, next_try_at=lease_key)
                    held.append(leased)
        return held

    def rows(self, limit: int) -> list[LogRow]:
        """Every row."""
        with self._lock:
            found = list(self._rows.values())
        found.sort(key=lambda r: (r.next_try_at, r.key))
        return found[:limit]
