"""Ballot rows keyed by a random slot, rewritten in a fresh random order by every cast.

Revision ID: 0004
Revises: 0003

``rf_ballots`` gets the key (campaign, case, round, slot): each cast writes all of its
round's ballots again under fresh random slots, in a fresh random order, so that no
system column (PostgreSQL ``xmin``/``ctid``, InnoDB's transaction id and heap order),
page or cell order links a ballot to the cast that brought it. The upgrade copies the
ballots already stored the same way (each round shuffled), so their order is lost too.
"""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None

_MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
_FIELDS = ("campaign_id", "case_id", "round", "ballot_id", "category", "choice")


def _rows(table: str) -> list[dict[str, Any]]:
    query = sa.text(f"SELECT {', '.join(_FIELDS)} FROM {table}")  # noqa: S608
    return [dict(r._mapping) for r in op.get_bind().execute(query)]


def upgrade() -> None:
    """Rebuild ``rf_ballots`` keyed by slot; copy every round's ballots shuffled."""
    op.rename_table("rf_ballots", "rf_ballots_0003")
    table = op.create_table(
        "rf_ballots",
        sa.Column("campaign_id", sa.String(200), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("slot", sa.String(32), nullable=False),
        sa.Column("ballot_id", sa.String(64), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("choice", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("campaign_id", "case_id", "round", "slot",
                                name="rf_ballots_slot_pk"),
        sqlite_with_rowid=False,
        **_MYSQL,
    )
    rows = _rows("rf_ballots_0003")
    secrets.SystemRandom().shuffle(rows)
    if rows and table is not None:
        op.bulk_insert(table, [{**r, "slot": secrets.token_hex(16)} for r in rows])
    op.drop_table("rf_ballots_0003")


def downgrade() -> None:
    """Back to ``rf_ballots`` keyed by ballot id (the ballots are kept)."""
    op.rename_table("rf_ballots", "rf_ballots_0004")
    table = op.create_table(
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
    rows = sorted(_rows("rf_ballots_0004"), key=lambda r: (r["campaign_id"], r["ballot_id"]))
    if rows and table is not None:
        op.bulk_insert(table, rows)
    op.drop_table("rf_ballots_0004")
