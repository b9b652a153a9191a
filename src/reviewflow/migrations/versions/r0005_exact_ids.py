"""Identifiers compare exactly on MySQL/MariaDB: every table to a NO PAD binary collation.

Revision ID: 0005
Revises: 0004

``utf8mb4_bin`` pads with spaces (``'s1' = 's1 '``); the tables move to
``utf8mb4_nopad_bin`` (MariaDB) or ``utf8mb4_0900_bin`` (MySQL 8). Nothing changes on
SQLite and PostgreSQL. The tables are rebuilt: back up first, and expect the upgrade
to take about as long as copying the database.
"""

from __future__ import annotations

from alembic import op

from reviewflow.store._collation import use_nopad

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Convert every rf_ table to the server's NO PAD binary collation."""
    use_nopad(op.get_bind())


def downgrade() -> None:
    """Back to utf8mb4_bin (fails if two ids now differ only by trailing spaces)."""
    bind = op.get_bind()
    if bind.dialect.name not in ("mysql", "mariadb"):
        return
    for table in [str(t) for t in bind.exec_driver_sql(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME LIKE 'rf\\_%%' AND TABLE_NAME <> 'rf_alembic_version'").scalars()]:
        bind.exec_driver_sql(
            f"ALTER TABLE `{table}` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
