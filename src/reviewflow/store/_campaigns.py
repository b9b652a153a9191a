"""The SQL store's campaigns: setting one up, its policy and its own chain (the sealed
policy and its amendments)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from reviewflow.exceptions import (
    ConflictError,
    UnknownCaseError,
)
from reviewflow.model import EventRecord, canonical_data
from reviewflow.store import _schema as s
from reviewflow.store._conn import SqlConnections
from reviewflow.store._rows import (
    check_id,
    event_data,
)


class SqlCampaigns(SqlConnections):
    """Campaigns of a SQL store."""

    def setup_campaign(self, campaign_id: str, policy_json: str) -> None:
        """Create the campaign if it is new; keep its policy (JSON)."""
        check_id(campaign_id, "campaign id")
        if campaign_id in self._known_campaigns:
            return
        with self._translated():
            if self.campaign_policy(campaign_id) is None:
                try:
                    with self._write.begin() as conn:
                        conn.execute(
                            sa.insert(s.campaigns), {"id": campaign_id, "policy": policy_json},
                        )
                except sa_exc.IntegrityError:
                    pass  # set up by another process meanwhile
        self._known_campaigns.add(campaign_id)

    def campaign_policy(self, campaign_id: str) -> str | None:
        """Return the policy JSON the campaign was set up with, or None if unknown."""
        with self._translated(), self._read.connect() as conn:
            row = conn.execute(
                sa.select(s.campaigns.c.policy).where(s.campaigns.c.id == campaign_id)
            ).first()
        return None if row is None else str(row[0])

    def campaign_events(self, campaign_id: str) -> list[EventRecord]:
        """Return the campaign's own chain (the policy seal and amendments), oldest first."""
        e = s.campaign_events.c
        with self._translated(), self._read.connect() as conn:
            rows = conn.execute(sa.select(s.campaign_events).where(e.campaign_id == campaign_id)
                                .order_by(e.seq)).all()
        return [EventRecord(campaign_id=row.campaign_id, case_id="", seq=row.seq,
                            event=row.event, actor_id=row.actor_id, role=row.role, at=row.at,
                            from_stage=None, to_stage="", reason=row.reason,
                            data=event_data(row.data), prev_hash=row.prev_hash, hash=row.hash)
                for row in rows]

    def append_campaign_event(self, record: EventRecord, policy_json: str | None = None) -> None:
        """Append ``record`` to the campaign's chain, ConflictError unless it is the next;
        with ``policy_json``, keep it as the campaign's policy in the same transaction."""
        e = s.campaign_events.c
        row = {"campaign_id": record.campaign_id, "seq": record.seq, "event": record.event,
               "actor_id": record.actor_id, "role": record.role, "at": record.at,
               "reason": record.reason, "data": canonical_data(record.data),
               "prev_hash": record.prev_hash, "hash": record.hash}

        def work(conn: Connection) -> None:
            self._require_campaigns(conn, {record.campaign_id})
            last = conn.execute(sa.select(sa.func.max(e.seq))
                                .where(e.campaign_id == record.campaign_id)).scalar()
            if (last or 0) != record.seq - 1:
                raise ConflictError("", record.seq - 1, last)
            conn.execute(sa.insert(s.campaign_events), row)  # the key refuses a second writer
            if policy_json is not None:
                conn.execute(sa.update(s.campaigns).where(s.campaigns.c.id == record.campaign_id)
                             .values(policy=policy_json))

        self._run_write(work)

    def campaigns(self) -> list[str]:
        """Return the ids of the campaigns this store holds."""
        with self._translated(), self._read.connect() as conn:
            return sorted(str(r[0]) for r in conn.execute(sa.select(s.campaigns.c.id)))

    def _require_campaigns(self, conn: Connection, campaign_ids: set[str]) -> None:
        missing = campaign_ids - self._known_campaigns
        if not missing:
            return
        found = {
            str(r[0]) for r in conn.execute(
                sa.select(s.campaigns.c.id).where(s.campaigns.c.id.in_(sorted(missing)))
            )
        }
        self._known_campaigns |= found
        if missing - found:
            raise UnknownCaseError(
                f"no campaign {sorted(missing - found)[0]!r} in this store; "
                "create it first (Campaign(...) does)"
            )
