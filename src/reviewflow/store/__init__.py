"""Stores: where cases, events and ballots are kept.

``MemoryStore`` for tests and simulations; the SQL store (SQLite by default,
PostgreSQL and MySQL/MariaDB in production) for everything that must survive.
"""

from __future__ import annotations

from reviewflow.store.base import Commit, Refusal, Store
from reviewflow.store.memory import MemoryStore


__all__ = ["Commit", "MemoryStore", "Refusal", "Store"]
