"""Stores: where cases, events and ballots are kept.

``MemoryStore`` for tests and simulations; the SQL store (SQLite by default,
PostgreSQL and MySQL/MariaDB in production) for everything that must survive.
:func:`open_store` turns what a user passes as ``store=`` into a store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reviewflow.exceptions import InputError
from reviewflow.store._timeouts import Timeouts
from reviewflow.store.base import Commit, Refusal, Store
from reviewflow.store.memory import MemoryStore

if TYPE_CHECKING:
    from reviewflow.store.sql import SqlStore

__all__ = ["Commit", "MemoryStore", "Refusal", "SqlStore", "Store", "Timeouts", "open_store"]


def open_store(store: Store | str | None = None, *, timeouts: Timeouts | None = None) -> Store:
    """Return a store for ``store``: a Store as is, None or ``"memory"`` in memory, a URL in SQL.

    URLs: ``sqlite:///reviewflow.db`` (the embedded default file),
    ``postgresql+psycopg://user@host/db``, ``mysql+pymysql://user@host/db``.
    ``timeouts`` bound every wait of a SQL store for its database (see
    :class:`Timeouts`; a URL's ``statement_timeout=...`` and the like win).

    >>> open_store(None).durable
    False
    """
    if store is None or store in ("memory", "memory://"):
        return MemoryStore()
    if isinstance(store, str):
        if "://" not in store:
            raise InputError(
                f"store {store!r} is not a database URL; write sqlite:///{store} for a SQLite "
                "file, postgresql+psycopg://user@host/db, or mysql+pymysql://user@host/db"
            )
        from reviewflow.store.sql import SqlStore

        return SqlStore(store, timeouts=timeouts)
    if not isinstance(store, Store):
        missing = [name for name in _store_members() if not hasattr(store, name)]
        if len(missing) < len(_store_members()):  # a store of the host's own, not complete
            raise InputError(
                f"store {type(store).__name__} lacks what every reviewflow store offers: "
                f"{', '.join(missing)}; implement them (reviewflow.store.Store lists each, "
                "docs/how-to/persist.md says what they keep) or pass a database URL",
                reason="invalid_argument",
            )
        raise InputError(
            f"store must be a Store, a database URL or None, not {type(store).__name__}",
            reason="invalid_argument",
        )
    return store


def _store_members() -> list[str]:
    """The public members of the :class:`Store` protocol (its parts' included), in order."""
    names: dict[str, None] = {}
    for cls in reversed(Store.__mro__):
        if not cls.__module__.startswith("reviewflow.store"):  # Protocol, Generic, object
            continue
        for name in (*getattr(cls, "__annotations__", {}), *vars(cls)):
            if not name.startswith("_"):
                names[name] = None
    return list(names)


def __getattr__(name: str) -> object:
    # SqlStore imports SQLAlchemy; load it only when asked for.
    if name == "SqlStore":
        from reviewflow.store.sql import SqlStore

        return SqlStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
