"""The ballot box and the deadline index: tokens, ballots, vote rounds, index rows, rung marks.

Revision ID: 0003
Revises: 0002

After upgrading a database that already holds cases, run
``campaign.reindex_deadlines()`` once per campaign to fill the deadline index.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None

_MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def upgrade() -> None:
    """Create the deadline index, rung marks, ballot tokens, ballots and vote rounds."""
    op.create_table(
        "rf_deadline_index",
        sa.Column("campaign_id", sa.String(200), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("due_us", sa.BigInteger, nullable=True),
        sa.Column("next_fire_us", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("campaign_id", "case_id", name="rf_deadline_index_pk"),
        **_MYSQL,
    )
    op.create_index("rf_deadline_index_fire", "rf_deadline_index",
                    ["campaign_id", "next_fire_us"])
    op.create_index("rf_deadline_index_due", "rf_deadline_index", ["campaign_id", "due_us"])
    op.create_table(
        "rf_rung_marks",
        sa.Column("campaign_id", sa.String(200), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("rung_id", sa.String(64), nullable=False),
        sa.Column("due_us", sa.BigInteger, nullable=False),
        sa.Column("fired_at", sa.String(40), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "case_id", "stage", "rung_id", "due_us",
                                name="rf_rung_marks_pk"),
        **_MYSQL,
    )
    op.create_table(
        "rf_ballot_tokens",
        sa.Column("campaign_id", sa.String(200), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("used", sa.Boolean(name="rf_ballot_tokens_used"), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "token_hash", name="rf_ballot_tokens_pk"),
        **_MYSQL,
    )
    op.create_index("rf_ballot_tokens_round", "rf_ballot_tokens",
                    ["campaign_id", "case_id", "round"])
    op.create_table(
        "rf_ballots",
        sa.Column("campaign_id", sa.String(200), nullable=False),
        sa.Column("ballot_id", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("choice", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("campaign_id", "ballot_id", name="rf_ballots_pk"),
        sqlite_with_rowid=False,
        **_MYSQL,
    )
    op.create_index("rf_ballots_round", "rf_ballots", ["campaign_id", "case_id", "round"])
    op.create_table(
        "rf_vote_rounds",
        sa.Column("campaign_id", sa.String(200), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("frozen", sa.Boolean(name="rf_vote_rounds_frozen"), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "case_id", "round", name="rf_vote_rounds_pk"),
        **_MYSQL,
    )


def downgrade() -> None:
    """Drop the ballot box and the deadline index (their rows are lost)."""
    op.drop_table("rf_vote_rounds")
    op.drop_index("rf_ballots_round", table_name="rf_ballots")
    op.drop_table("rf_ballots")
    op.drop_index("rf_ballot_tokens_round", table_name="rf_ballot_tokens")
    op.drop_table("rf_ballot_tokens")
    op.drop_table("rf_rung_marks")
    op.drop_index("rf_deadline_index_due", table_name="rf_deadline_index")
    op.drop_index("rf_deadline_index_fire", table_name="rf_deadline_index")
    op.drop_table("rf_deadline_index")
