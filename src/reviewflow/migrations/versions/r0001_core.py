"""Core tables: campaigns, cases (one row per case, versioned) and insert-only events.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

_MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def _json_text() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    """Create the campaigns, cases and events tables."""
    op.create_table(
        "rf_campaigns",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("policy", _json_text(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False,
                  server_default=sa.func.current_timestamp()),
        **_MYSQL,
    )
    op.create_table(
        "rf_cases",
        sa.Column("campaign_id", sa.String(200), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("previous_case_id", sa.String(401), nullable=True),
        sa.Column("state", _json_text(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "case_id", name="rf_cases_pk"),
        **_MYSQL,
    )
    op.create_index("rf_cases_stage", "rf_cases", ["campaign_id", "stage"])
    op.create_table(
        "rf_events",
        sa.Column("campaign_id", sa.String(200), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("actor_id", sa.String(200), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("from_stage", sa.String(32), nullable=True),
        sa.Column("to_stage", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("data", _json_text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "case_id", "seq", name="rf_events_pk"),
        **_MYSQL,
    )


def downgrade() -> None:
    """Drop the core tables (and everything in them)."""
    op.drop_table("rf_events")
    op.drop_index("rf_cases_stage", table_name="rf_cases")
    op.drop_table("rf_cases")
    op.drop_table("rf_campaigns")
