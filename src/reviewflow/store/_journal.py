"""The SQL store's refusal journal: refused commands, kept per campaign (they change no case)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reviewflow.store import _schema as s
from reviewflow.store._campaigns import SqlCampaigns
from reviewflow.store._rows import dumps
from reviewflow.store.base import Refusal


class SqlJournal(SqlCampaigns):
    """The refusal journal of a SQL store."""

    def record_refusals(self, refusals: Sequence[Refusal]) -> None:
        """Append refused commands to the refusal journal."""
        if not refusals:
            return
        rows = [{
            "campaign_id": r.campaign_id, "case_id": r.case_id, "event": r.event,
            "actor_id": r.actor_id, "roles": dumps(list(r.roles), "refusal roles"),
            "at": r.at, "stage": r.stage, "reason": r.reason, "message": r.message,
        } for r in refusals]

        def work(conn: Connection) -> None:
            self._require_campaigns(conn, {r.campaign_id for r in refusals})
            conn.execute(sa.insert(s.refusals), rows)

        self._run_write(work)

    def refusals(self, campaign_id: str, case_id: str | None = None) -> list[Refusal]:
        """Return the refusal journal, oldest first."""
        r = s.refusals.c
        query = sa.select(s.refusals).where(r.campaign_id == campaign_id).order_by(r.id)
        if case_id is not None:
            query = query.where(r.case_id == case_id)
        with self._translated(), self._read.connect() as conn:
            return [
                Refusal(
                    campaign_id=row.campaign_id, case_id=row.case_id, event=row.event,
                    actor_id=row.actor_id, roles=tuple(json.loads(row.roles)), at=row.at,
                    stage=row.stage, reason=row.reason, message=row.message,
                )
                for row in conn.execute(query)
            ]
