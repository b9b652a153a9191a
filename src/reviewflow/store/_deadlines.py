"""The SQL store's deadline index: rung schedule and rung mark rows, and the due queries.

Every commit of a case with a deadline carries a
:class:`~reviewflow.store.rows.RungSchedule` (upserted into ``rf_deadline_index``,
deleted when it has neither time); a sweep's commit also carries one
:class:`~reviewflow.store.rows.RungMark` per fired rung (inserted into
``rf_rung_marks``, whose key refuses a second firing). The sweep reads the cases
whose next fire time has come through the ``(campaign_id, next_fire_us)`` index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from reviewflow.exceptions import ConflictError
from reviewflow.store import _schema as s
from reviewflow.store.rows import RungMark, RungSchedule

if TYPE_CHECKING:
    from reviewflow.store._conn import SqlConnections

__all__ = ["due_cases", "write_marks", "write_schedules"]

_SQLITE_UPSERT = (
    "INSERT INTO rf_deadline_index (campaign_id, case_id, stage, due_us, next_fire_us)"
    " VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (campaign_id, case_id) DO UPDATE SET stage = excluded.stage, "
    "due_us = excluded.due_us, next_fire_us = excluded.next_fire_us"
)
_MYSQL_UPSERT = (
    "INSERT INTO rf_deadline_index (campaign_id, case_id, stage, due_us, next_fire_us)"
    " VALUES (%s, %s, %s, %s, %s) "
    "ON DUPLICATE KEY UPDATE stage = VALUES(stage), due_us = VALUES(due_us), "
    "next_fire_us = VALUES(next_fire_us)"
)
_PG_UPSERT = (
    "INSERT INTO rf_deadline_index (campaign_id, case_id, stage, due_us, next_fire_us)"
    " SELECT * FROM unnest(%s::text[], %s::text[], "
    "%s::text[], %s::bigint[], %s::bigint[]) ON CONFLICT (campaign_id, case_id) DO UPDATE SET "
    "stage = EXCLUDED.stage, due_us = EXCLUDED.due_us, next_fire_us = EXCLUDED.next_fire_us"
)
_PG_DELETE = (
    "DELETE FROM rf_deadline_index AS d USING unnest(%s::text[], %s::text[]) AS v(c, k) "
    "WHERE d.campaign_id = v.c AND d.case_id = v.k"
)
_SQLITE_MARKS = (
    "INSERT INTO rf_rung_marks (campaign_id, case_id, stage, rung_id, due_us, fired_at, seq)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)
_MYSQL_MARKS = (
    "INSERT INTO rf_rung_marks (campaign_id, case_id, stage, rung_id, due_us, fired_at, seq) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
_PG_MARKS = (
    "INSERT INTO rf_rung_marks (campaign_id, case_id, stage, rung_id, due_us, fired_at, seq)"
    " SELECT * FROM unnest(%s::text[], %s::text[], "
    "%s::text[], %s::text[], %s::bigint[], %s::text[], %s::int[]) ON CONFLICT DO NOTHING"
)


def _columns(rows: Sequence[tuple[Any, ...]]) -> tuple[list[Any], ...]:
    return tuple(list(column) for column in zip(*rows, strict=True))


def write_schedules(store: SqlConnections, conn: Connection, rows: Sequence[RungSchedule]) -> None:
    """Upsert deadline index rows by case (the last row of a case wins); delete empty ones."""
    last: dict[tuple[str, str], RungSchedule] = {}
    for r in rows:
        last[(r.campaign_id, r.case_id)] = r
    keep = [(r.campaign_id, r.case_id, r.stage, r.due_us, r.next_fire_us)
            for r in last.values() if r.due_us is not None or r.next_fire_us is not None]
    drop = [(r.campaign_id, r.case_id)
            for r in last.values() if r.due_us is None and r.next_fire_us is None]
    dialect = store.dialect
    if keep:
        if dialect == "postgresql":
            conn.exec_driver_sql(_PG_UPSERT, _columns(keep))
        else:
            conn.exec_driver_sql(_SQLITE_UPSERT if dialect == "sqlite" else _MYSQL_UPSERT, keep)
    if drop:
        if dialect == "postgresql":
            conn.exec_driver_sql(_PG_DELETE, _columns(drop))
        else:
            mark = "?" if dialect == "sqlite" else "%s"
            conn.exec_driver_sql(
                f"DELETE FROM rf_deadline_index WHERE campaign_id = {mark} "  # noqa: S608
                f"AND case_id = {mark}", drop,
            )


def write_schedule(store: SqlConnections, conn: Connection, row: RungSchedule) -> None:
    """Upsert one deadline index row (delete it when it has neither time)."""
    write_schedules(store, conn, [row])


def _already_fired(marks: Sequence[RungMark]) -> ConflictError:
    first = marks[0]
    mine = [m for m in marks if m.case_id == first.case_id]
    error = ConflictError(first.case_id, min(m.seq for m in mine) - 1, None)
    error.args = (
        f"case {first.case_id!r}: a rung of {first.stage} ({', '.join(m.rung_id for m in mine)})"
        " was already recorded as fired: another sweeper fired it first; nothing was written "
        "(reload the case: there is nothing left to fire)",
    )
    return error


def write_marks(store: SqlConnections, conn: Connection, marks: Sequence[RungMark]) -> None:
    """Insert fired-rung marks; a mark already stored refuses the commit (ConflictError)."""
    rows = [(m.campaign_id, m.case_id, m.stage, m.rung_id, m.due_us, m.fired_at, m.seq)
            for m in marks]
    if not rows:
        return
    dialect = store.dialect
    if dialect == "mysql":
        # A duplicate key undoes only the statement on MySQL; the transaction stays usable.
        try:
            conn.exec_driver_sql(_MYSQL_MARKS, rows)
        except sa_exc.IntegrityError as exc:
            if getattr(exc.orig, "args", (None,))[0] == 1062:
                raise _already_fired(marks) from None
            raise
        return
    if dialect == "postgresql":
        written = conn.exec_driver_sql(_PG_MARKS, _columns(rows)).rowcount
    else:
        written = conn.exec_driver_sql(_SQLITE_MARKS, rows).rowcount
    if written != len(rows):
        raise _already_fired(marks)


def write_mark(store: SqlConnections, conn: Connection, mark: RungMark) -> None:
    """Insert one fired-rung mark (see :func:`write_marks`)."""
    write_marks(store, conn, [mark])


def due_cases(store: SqlConnections, campaign_id: str, bound_us: int, limit: int | None, *,
              overdue: bool) -> list[str]:
    """Return case ids by next fire time ``<= bound_us`` (or due time ``< bound_us``)."""
    d = s.deadline_index.c
    column = d.due_us if overdue else d.next_fire_us
    query = (
        sa.select(d.case_id)
        .where(d.campaign_id == campaign_id)
        .where(column < bound_us if overdue else column <= bound_us)
        .order_by(column, d.case_id)
    )
    if limit is not None:
        query = query.limit(int(limit))
    with store.reading() as conn:
        return [str(r[0]) for r in conn.execute(query)]
