"""The SQL store's reads: cases (one, many, all), histories, every chain at once for
``verify``, and idempotency keys."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from reviewflow.exceptions import SchemaVersionError
from reviewflow.model import Case, EventRecord
from reviewflow.store import _schema as s
from reviewflow.store._conn import SqlConnections
from reviewflow.store._rows import event_data
from reviewflow.store.rows import StoredChain

_new_record = tuple.__new__


#: The columns of a case row, in the order :meth:`SqlStore._case_from_tuple` reads them.
_CASE_COLUMNS = "campaign_id, case_id, stage, version, last_hash, previous_case_id, state"


class SqlReads(SqlConnections):
    """Reads of a SQL store (single statements, autocommit on a server)."""

    def _case_from_tuple(self, row: Any) -> Case:
        """Build a case from a row of :data:`_CASE_COLUMNS`, read by position."""
        campaign_id, case_id, stage, version, last_hash, previous, state = row
        doc = json.loads(state)
        fmt = doc.pop("format", 1)
        if not isinstance(fmt, int) or fmt > s.FORMAT:
            raise SchemaVersionError(
                f"case {case_id!r} was written in format {fmt} by a newer reviewflow; "
                "upgrade reviewflow"
            )
        doc.update(campaign_id=campaign_id, case_id=case_id, stage=stage, version=version,
                   last_hash=last_hash, previous_case_id=previous)
        return Case.from_json(doc, source=self)

    def _case_from_row(self, row: Any) -> Case:
        """Build a case from a row of the cases table, read by column name."""
        return self._case_from_tuple((row.campaign_id, row.case_id, row.stage, row.version,
                                      row.last_hash, row.previous_case_id, row.state))

    @staticmethod
    def _record_from_row(row: Any) -> EventRecord:
        return EventRecord(
            campaign_id=row.campaign_id, case_id=row.case_id, seq=row.seq, event=row.event,
            actor_id=row.actor_id, role=row.role, at=row.at, from_stage=row.from_stage,
            to_stage=row.to_stage, reason=row.reason, data=event_data(row.data),
            prev_hash=row.prev_hash, hash=row.hash,
        )

    def get(self, campaign_id: str, case_id: str) -> Case | None:
        """Return a detached snapshot of the case (bound to this store for history)."""
        if not isinstance(case_id, str):  # no such case (ids are text), as in memory
            return None
        mark = self._mark
        with self._translated(), self._read.connect() as conn:
            row = conn.exec_driver_sql(
                f"SELECT {_CASE_COLUMNS} FROM rf_cases WHERE campaign_id = {mark} "  # noqa: S608
                f"AND case_id = {mark}", (campaign_id, case_id),
            ).first()
        return None if row is None else self._case_from_tuple(row)

    def get_many(self, campaign_id: str, case_ids: Sequence[str]) -> dict[str, Case]:
        """Return snapshots of many cases by id (missing ids are left out), in few queries."""
        out: dict[str, Case] = {}
        wanted = [i for i in dict.fromkeys(case_ids) if isinstance(i, str)]  # ids are text
        mark = self._mark
        # The driver's own SQL (no statement to compile per chunk) and rows read by
        # position: a sweep loads thousands of cases this way.
        head = (f"SELECT {_CASE_COLUMNS} FROM rf_cases WHERE campaign_id = {mark} "  # noqa: S608
                "AND case_id ")
        with self._translated(), self._read.connect() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                params: tuple[Any, ...]
                if self._pg:
                    sql, params = head + "= ANY(%s)", (campaign_id, chunk)
                else:
                    sql = head + f"IN ({', '.join([mark] * len(chunk))})"
                    params = (campaign_id, *chunk)
                for row in conn.exec_driver_sql(sql, params).fetchall():
                    case = self._case_from_tuple(row)
                    out[case.case_id] = case
        return out

    def cases(self, campaign_id: str, stage: str | None = None) -> list[Case]:
        """Return snapshots of the campaign's cases (in one stage, if given), by case id."""
        query = sa.select(s.cases).where(s.cases.c.campaign_id == campaign_id)
        if stage is not None:
            query = query.where(s.cases.c.stage == str(stage))
        with self._translated(), self._read.connect() as conn:
            out = [self._case_from_row(row) for row in conn.execute(query)]
        # Sorted here: database collations order text differently from Python.
        out.sort(key=lambda case: case.case_id)
        return out

    def history(self, campaign_id: str, case_id: str) -> list[EventRecord]:
        """Return the case's event records in order."""
        e = s.events.c
        with self._translated(), self._read.connect() as conn:
            rows = conn.execute(
                sa.select(s.events)
                .where(e.campaign_id == campaign_id)
                .where(e.case_id == case_id)
                .order_by(e.seq)
            )
            return [self._record_from_row(row) for row in rows]

    def iter_histories(self, campaign_id: str) -> Iterator[StoredChain]:
        """Yield every case of the campaign with its events in order (for ``verify``).

        One streamed query over the whole campaign, instead of one per case.
        """
        c, e = s.cases.c, s.events.c
        query = (
            sa.select(
                c.case_id.label("k_case"), c.version.label("k_version"),
                c.last_hash.label("k_last_hash"), c.stage.label("k_stage"),
                c.previous_case_id.label("k_previous"), c.state.label("k_state"),
                *s.events.c,
            )
            .select_from(s.cases.outerjoin(
                s.events, sa.and_(e.campaign_id == c.campaign_id, e.case_id == c.case_id),
            ))
            .where(c.campaign_id == campaign_id)
            .order_by(c.case_id, e.seq)
        )
        with self._translated(), self._engine.connect() as conn:
            current: StoredChain | None = None
            for row in conn.execution_options(yield_per=2000).execute(query):
                if current is None or current.case_id != row.k_case:
                    if current is not None:
                        yield current
                    try:
                        stored: Case | None = self._case_from_tuple((
                            campaign_id, row.k_case, row.k_stage, row.k_version,
                            row.k_last_hash, row.k_previous, row.k_state))
                    except Exception:  # an unreadable row: verify reports it
                        stored = None
                    current = StoredChain(row.k_case, row.k_version, row.k_last_hash, [],
                                          stored)
                if row.seq is not None:  # by position: the events' columns, in order
                    t = tuple(row)
                    current.records.append(_new_record(EventRecord, (
                        *t[6:16], event_data(t[16]), t[17], t[18])))
            if current is not None:
                yield current

    def find_idempotent(self, campaign_id: str, key: str) -> tuple[str, str, int] | None:
        """Return ``(fingerprint, case_id, version)`` stored for an idempotency key, if any."""
        i = s.idempotency.c
        with self._translated(), self._read.connect() as conn:
            row = conn.execute(
                sa.select(i.fingerprint, i.case_id, i.version)
                .where(i.campaign_id == campaign_id)
                .where(i.key == key)
            ).first()
        return None if row is None else (str(row[0]), str(row[1]), int(row[2]))
