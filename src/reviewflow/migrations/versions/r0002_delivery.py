"""Delivery tables: the refusal journal, the hook outbox and idempotency keys.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None

_MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def _serial() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the refusals, outbox and idempotency tables."""
    op.create_table(
        "rf_refusals",
        sa.Column("id", _serial(), primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.String(200), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("actor_id", sa.String(200), nullable=False),
        sa.Column("roles", sa.Text, nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("stage", sa.String(32), nullable=True),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        **_MYSQL,
    )
    op.create_index("rf_refusals_case", "rf_refusals", ["campaign_id", "case_id"])
    op.create_table(
        "rf_outbox",
        sa.Column("id", _serial(), primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.String(200), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.UniqueConstraint("campaign_id", "case_id", "seq", name="rf_outbox_event"),
        **_MYSQL,
    )
    op.create_table(
        "rf_idempotency",
        sa.Column("campaign_id", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "key", name="rf_idempotency_pk"),
        **_MYSQL,
    )


def downgrade() -> None:
    """Drop the delivery tables."""
    op.drop_table("rf_idempotency")
    op.drop_table("rf_outbox")
    op.drop_index("rf_refusals_case", table_name="rf_refusals")
    op.drop_table("rf_refusals")
