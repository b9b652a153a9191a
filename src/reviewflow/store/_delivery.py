"""The SQL store's delivery log: failed deliveries to the hooks, in ``rf_delivery_log``.

One row per (event, plugin, hook) whose delivery failed, until it is delivered; see
:mod:`reviewflow._engine.dispatch` for how the engine uses it. Failures are rare: each write is
a transaction of its own, committed before the failed events are marked offered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reviewflow.exceptions import StoreError
from reviewflow.store import _schema as s
from reviewflow.store.rows import LogRow

if TYPE_CHECKING:
    from reviewflow.store._conn import SqlConnections

__all__ = ["SqlDeliveryLog"]

_L = s.delivery_log.c
_ORDER = (_L.next_try_at, _L.case_id, _L.seq, _L.plugin, _L.hook)


class SqlDeliveryLog:
    """One campaign's delivery log in the store's database."""

    def __init__(self, store: SqlConnections, campaign_id: str) -> None:
        self._store = store
        self._campaign_id = campaign_id

    def _where(self, key: tuple[str, int, str, str]) -> sa.ColumnElement[bool]:
        case_id, seq, plugin, hook = key
        return sa.and_(_L.campaign_id == self._campaign_id, _L.case_id == case_id,
                       _L.seq == seq, _L.plugin == plugin, _L.hook == hook)

    def fail(self, rows: Sequence[LogRow], next_try: Callable[[int], str],
             offered: Sequence[tuple[str, int]] = ()) -> None:
        """Write first failures in one transaction, with the ``offered`` events taken out
        of the outbox; a key already there counts one more attempt."""
        if not rows:
            return
        for attempt in range(2):
            try:
                with self._store.transaction() as conn:
                    self._fail(conn, rows, next_try)
                    if offered:
                        conn.execute(sa.delete(s.outbox).where(
                            s.outbox.c.campaign_id == self._campaign_id,
                            sa.tuple_(s.outbox.c.case_id, s.outbox.c.seq).in_(list(offered))))
                return
            except StoreError:
                if attempt:  # another process wrote the same key meanwhile: read it again
                    raise

    def _fail(self, conn: Connection, rows: Sequence[LogRow],
              next_try: Callable[[int], str]) -> None:
        lock = self._store.dialect != "sqlite"
        for row in rows:
            query = sa.select(_L.attempts).where(self._where(row.key))
            old = conn.execute(query.with_for_update() if lock else query).scalar()
            if old is None:
                conn.execute(sa.insert(s.delivery_log), {
                    "campaign_id": self._campaign_id, "case_id": row.case_id, "seq": row.seq,
                    "plugin": row.plugin, "hook": row.hook, "event": row.event, "attempts": 1,
                    "last_error": row.last_error, "first_failed_at": row.first_failed_at,
                    "next_try_at": next_try(1),
                })
            else:
                attempts = int(old) + 1
                conn.execute(sa.update(s.delivery_log).where(self._where(row.key)).values(
                    attempts=attempts, last_error=row.last_error,
                    next_try_at=next_try(attempts)))

    def settle(self, failed: Sequence[LogRow], done: Sequence[tuple[str, int, str, str]]
               ) -> None:
        """In one transaction: rewrite the failed rows' tries, delete the delivered keys."""
        if not failed and not done:
            return
        with self._store.transaction() as conn:
            for row in failed:
                conn.execute(sa.update(s.delivery_log).where(self._where(row.key)).values(
                    attempts=row.attempts, last_error=row.last_error,
                    next_try_at=row.next_try_at))
            for key in done:
                conn.execute(sa.delete(s.delivery_log).where(self._where(key)))

    def due(self, now_key: str, plugins: frozenset[str], limit: int) -> list[LogRow]:
        """Rows of these plugins whose next try is at or before ``now_key``, soonest first."""
        return self._select(sa.and_(_L.next_try_at <= now_key,
                                    _L.plugin.in_(sorted(plugins))), limit)

    def claim(self, rows: Sequence[LogRow], lease_key: str) -> list[LogRow]:
        """Lease the rows still as read, one compare-and-set ``UPDATE`` each, in one
        transaction; return those whose update hit their row."""
        if not rows:
            return []
        held: list[LogRow] = []
        with self._store.transaction() as conn:
            for row in rows:
                hit = conn.execute(sa.update(s.delivery_log).where(
                    self._where(row.key), _L.attempts == row.attempts,
                    _L.next_try_at == row.next_try_at).values(next_try_at=lease_key))
                if hit.rowcount == 1:
                    held.append(LogRow(row.case_id, row.seq, row.plugin, row.hook, row.event,
                                       row.attempts, row.last_error, row.first_failed_at,
                                       lease_key))
        return held

    def rows(self, limit: int) -> list[LogRow]:
        """Every row, soonest next try first."""
        return self._select(sa.true(), limit)

    def _select(self, condition: sa.ColumnElement[bool], limit: int) -> list[LogRow]:
        query = (sa.select(s.delivery_log)
                 .where(_L.campaign_id == self._campaign_id, condition)
                 .order_by(*_ORDER).limit(limit))
        with self._store.reading() as conn:
            return [_row(r) for r in conn.execute(query)]


def _row(r: Any) -> LogRow:
    return LogRow(r.case_id, int(r.seq), r.plugin, r.hook, r.event, int(r.attempts),
                  r.last_error, r.first_failed_at, r.next_try_at)
