"""The campaign's own chain: the sealed policy and its amendments (``rf_campaign_events``).

Revision ID: 0008
Revises: 0007

A campaign set up before this revision has no seal: it is sealed, with the policy it
was set up with (``rf_campaigns.policy``), the first time a reviewflow of this version
opens it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from reviewflow.store._collation import use_nopad

revision = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None

_MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def _json_text() -> Any:
    return sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    """Create the campaign chain table."""
    op.create_table(
        "rf_campaign_events",
        sa.Column("campaign_id", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("actor_id", sa.String(200), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("data", _json_text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "seq", name="rf_campaign_events_pk"),
        **_MYSQL,
    )
    use_nopad(op.get_bind())  # exact ids on MySQL/MariaDB, as revision 0005 made the others


def downgrade() -> None:
    """Drop the campaign chain (the seal is made again on the next open)."""
    op.drop_table("rf_campaign_events")
