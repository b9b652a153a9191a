"""Identifiers compare exactly on MySQL and MariaDB: a NO PAD binary collation.

``utf8mb4_bin`` compares bytes but pads with spaces: ``'s1' = 's1 '`` is true there,
so a case id, an idempotency key or an actor id with a trailing space would find (and
change) another one's rows. Every reviewflow table on MySQL/MariaDB uses a NO PAD
binary collation instead: ``utf8mb4_nopad_bin`` on MariaDB (10.2 and later),
``utf8mb4_0900_bin`` on MySQL 8. A fresh database gets it from
:func:`~reviewflow.store._engine.create_schema`; a database made before revision 0005
gets it from ``reviewflow db upgrade``. A revision that adds a table calls
:func:`use_nopad` at its end, so that the new table compares exactly too.
SQLite and PostgreSQL compare text exactly already.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from reviewflow.exceptions import StoreError

__all__ = ["NOPAD_COLLATIONS", "nopad_collation", "use_nopad"]

#: The NO PAD binary collations, in the order they are preferred.
NOPAD_COLLATIONS = ("utf8mb4_nopad_bin", "utf8mb4_0900_bin")


def nopad_collation(conn: Connection) -> str:
    """Return the NO PAD binary collation this MySQL/MariaDB server has."""
    found = {
        str(name) for name in conn.exec_driver_sql(
            "SELECT COLLATION_NAME FROM information_schema.COLLATIONS "
            "WHERE COLLATION_NAME IN ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin')"
        ).scalars()
    }
    for name in NOPAD_COLLATIONS:
        if name in found:
            return name
    version = conn.exec_driver_sql("SELECT VERSION()").scalar()
    raise StoreError(
        f"this MySQL/MariaDB server ({version}) has no NO PAD binary collation "
        "(utf8mb4_nopad_bin or utf8mb4_0900_bin), so it would take 's1 ' for 's1'; "
        "use MariaDB 10.2 or later, or MySQL 8.0 or later"
    )


def use_nopad(conn: Connection) -> str | None:
    """Convert every ``rf_`` table of the current database to the NO PAD collation.

    Tables already converted are left alone. Returns the collation (None on databases
    other than MySQL/MariaDB, where nothing is needed).
    """
    if conn.dialect.name not in ("mysql", "mariadb"):
        return None
    collation = nopad_collation(conn)
    tables = [
        str(name) for name in conn.exec_driver_sql(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME LIKE 'rf\\_%%' AND TABLE_NAME <> 'rf_alembic_version' "
            "AND (TABLE_COLLATION <> %s OR EXISTS (SELECT 1 FROM information_schema.COLUMNS c "
            "WHERE c.TABLE_SCHEMA = DATABASE() AND c.TABLE_NAME = TABLES.TABLE_NAME "
            "AND c.COLLATION_NAME IS NOT NULL AND c.COLLATION_NAME <> %s)) ORDER BY TABLE_NAME",
            (collation, collation),
        ).scalars()
    ]
    for table in tables:
        conn.exec_driver_sql(
            f"ALTER TABLE `{table}` CONVERT TO CHARACTER SET utf8mb4 COLLATE {collation}"
        )
    return collation
