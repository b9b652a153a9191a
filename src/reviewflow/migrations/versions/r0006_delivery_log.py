"""The delivery log: failed deliveries to the hooks, kept until delivered.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from reviewflow.store._collation import use_nopad

revision = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None

_MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def upgrade() -> None:
    """Create the delivery log."""
    op.create_table(
        "rf_delivery_log",
        sa.Column("campaign_id", sa.String(200), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("plugin", sa.String(200), nullable=False),
        sa.Column("hook", sa.String(64), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("first_failed_at", sa.String(40), nullable=False),
        sa.Column("next_try_at", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "case_id", "seq", "plugin", "hook",
                                name="rf_delivery_log_pk"),
        **_MYSQL,
    )
    op.create_index("rf_delivery_log_due", "rf_delivery_log", ["campaign_id", "next_try_at"])
    use_nopad(op.get_bind())  # ids compare exactly on MySQL/MariaDB, as in every rf_ table


def downgrade() -> None:
    """Drop the delivery log (failed deliveries are then forgotten)."""
    op.drop_index("rf_delivery_log_due", table_name="rf_delivery_log")
    op.drop_table("rf_delivery_log")
