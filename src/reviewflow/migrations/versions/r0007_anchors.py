"""Anchors and MACs: the campaign checkpoints and the keyed MAC of each sealed event.

Revision ID: 0007
Revises: 0006

On MySQL/MariaDB the new tables get the NO PAD binary collation of revision 0005.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from reviewflow.store._collation import use_nopad

revision = "0007"
down_revision: str | None = "0006"
branch_labels = None
depends_on = None

_MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def _json_text() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    """Create the anchor and event-MAC tables."""
    op.create_table(
        "rf_anchors",
        sa.Column("campaign_id", sa.String(200), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("body", _json_text(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "digest", name="rf_anchors_pk"),
        **_MYSQL,
    )
    op.create_table(
        "rf_event_macs",
        sa.Column("campaign_id", sa.String(200), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "case_id", "seq", name="rf_event_macs_pk"),
        **_MYSQL,
    )
    use_nopad(op.get_bind())  # MySQL/MariaDB: the new tables compare ids exactly too


def downgrade() -> None:
    """Drop the anchor and event-MAC tables."""
    op.drop_table("rf_event_macs")
    op.drop_table("rf_anchors")
