"""The SQL store's outbox: events committed but not yet told to the hooks, and the
dispatch marks, kept back and written with the store's next write."""

from __future__ import annotations

import time
from collections.abc import Sequence

import sqlalchemy as sa

from reviewflow.exceptions import InputError
from reviewflow.model import EventRecord
from reviewflow.store import _schema as s
from reviewflow.store._reads import SqlReads

#: Dispatch marks are kept in memory this long (or this many) before a write of their own.
_MARK_DELAY_S = 1.0


_MARK_BATCH = 10_000


class SqlOutbox(SqlReads):
    """The outbox of a SQL store."""

    def pending_outbox(self, campaign_id: str, limit: int = 1000) -> list[EventRecord]:
        """Return committed events not yet marked dispatched, oldest first."""
        if self._marks:
            self.flush()
        o, e = s.outbox.c, s.events.c
        query = (
            sa.select(s.events)
            .select_from(s.outbox.join(s.events, sa.and_(
                e.campaign_id == o.campaign_id, e.case_id == o.case_id, e.seq == o.seq,
            )))
            .where(o.campaign_id == campaign_id)
            .order_by(o.id)
            .limit(limit)
        )
        with self._translated(), self._read.connect() as conn:
            return [self._record_from_row(row) for row in conn.execute(query)]

    def mark_dispatched(self, campaign_id: str, event_ids: Sequence[str]) -> None:
        """Mark events as told to the hooks.

        The marks are written with this store's next write (or after a second, or
        10,000 marks, or at :meth:`flush` / :meth:`close`), not in a transaction of
        their own: a crash before then only means those events are delivered again,
        which at-least-once delivery allows.
        """
        prefix = f"{campaign_id}/"
        marks = []
        for event_id in event_ids:
            if not event_id.startswith(prefix):
                raise InputError(f"event id {event_id!r} is not of campaign {campaign_id!r}")
            case_id, _, seq = event_id[len(prefix):].rpartition("/")
            if not case_id or not seq.isdigit():
                raise InputError(f"malformed event id {event_id!r}: expected CAMPAIGN/CASE/SEQ")
            marks.append((campaign_id, case_id, int(seq)))
        with self._lock:
            if not self._marks:
                self._marks_since = time.monotonic()
            self._marks.extend(marks)
            due = (len(self._marks) >= _MARK_BATCH
                   or time.monotonic() - self._marks_since >= _MARK_DELAY_S)
        if due:
            self.flush()

    def flush(self) -> None:
        """Write the dispatch marks kept in memory now."""
        if self._marks:
            self._run_write(lambda conn: None)
