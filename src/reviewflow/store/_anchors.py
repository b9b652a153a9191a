"""The SQL store's anchors and event MACs (``rf_anchors``, ``rf_event_macs``, revision 0004).

The MAC rows ride on each commit as an :class:`~reviewflow._macs.EventMacs` extra (see
:func:`reviewflow.store.sql.register_extra`); anchors are written by
:meth:`reviewflow.Campaign.anchor`. Both are read by :meth:`reviewflow.Campaign.verify`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reviewflow._macs import EventMacs
from reviewflow.store import _schema as s

if TYPE_CHECKING:
    from reviewflow.store._conn import SqlConnections

__all__ = ["event_macs", "save_anchor", "stored_anchors", "write_macs", "write_macs_one"]


_PG_MACS = (
    "INSERT INTO rf_event_macs (campaign_id, case_id, seq, mac) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[])"
)


def write_macs(store: SqlConnections, conn: Connection, rows: Sequence[EventMacs]) -> None:
    """Insert the MACs of a batch of commits (one statement, in the driver's own SQL)."""
    values = [(m.campaign_id, case_id, seq, mac) for m in rows for case_id, seq, mac in m.rows]
    if not values:
        return
    dialect = store.dialect
    if dialect == "postgresql":
        conn.exec_driver_sql(_PG_MACS, tuple(list(c) for c in zip(*values, strict=True)))
        return
    mark = "?" if dialect == "sqlite" else "%s"
    conn.exec_driver_sql(
        f"INSERT INTO rf_event_macs (campaign_id, case_id, seq, mac) "  # noqa: S608
        f"VALUES ({mark}, {mark}, {mark}, {mark})", values)


def write_macs_one(store: SqlConnections, conn: Connection, row: EventMacs) -> None:
    """Insert the MACs of one commit."""
    write_macs(store, conn, [row])


def event_macs(store: SqlConnections, campaign_id: str,
               case_ids: Sequence[str]) -> dict[tuple[str, int], str]:
    """Return the stored MACs of these cases' events, by ``(case_id, seq)``."""
    m = s.event_macs.c
    out: dict[tuple[str, int], str] = {}
    with store.reading() as conn:
        for start in range(0, len(case_ids), 500):
            chunk = list(case_ids[start:start + 500])
            for case_id, seq, mac in conn.execute(
                sa.select(m.case_id, m.seq, m.mac)
                .where(m.campaign_id == campaign_id)
                .where(m.case_id.in_(chunk))
            ):
                out[(str(case_id), int(seq))] = str(mac)
    return out


def save_anchor(store: SqlConnections, campaign_id: str, digest: str, at: str, body: str) -> None:
    """Keep an anchor's text (once: the same anchor again is left as it is)."""
    a = s.anchors.c
    with store.transaction() as conn:
        kept = conn.execute(
            sa.select(a.digest).where(a.campaign_id == campaign_id).where(a.digest == digest)
        ).first()
        if kept is None:
            conn.execute(sa.insert(s.anchors), {
                "campaign_id": campaign_id, "digest": digest, "at": at, "body": body,
            })


def stored_anchors(store: SqlConnections, campaign_id: str) -> list[str]:
    """Return the texts of the campaign's kept anchors, oldest first."""
    a = s.anchors.c
    with store.reading() as conn:
        return [str(row[0]) for row in conn.execute(
            sa.select(a.body).where(a.campaign_id == campaign_id).order_by(a.at, a.digest)
        )]
