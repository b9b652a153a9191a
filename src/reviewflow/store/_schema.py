"""The SQL schema of the durable store, as SQLAlchemy Core tables.

Every table carries the ``rf_`` prefix so that reviewflow can share a database
with the host application. The Alembic revisions in :mod:`reviewflow.migrations`
build exactly this schema (a test compares them); a fresh database gets it from
:func:`create_schema`, which stamps the head revision.

Room for the features that write extra rows in the same transaction as a step
(ballots, ballot tokens, deadline rung marks and their due index): add the table
here, on :data:`metadata`, add an Alembic revision under
``reviewflow/migrations/versions/`` (next number, ``down_revision`` the current
head, and bump :data:`HEAD_REVISION`), and register how the extra row is written
with :func:`reviewflow.store.sql.register_extra`. ``docs/how-to/persist.md`` has
the steps.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.types import DateTime, TypeEngine

__all__ = [
    "FORMAT",
    "HEAD_REVISION",
    "ID_LENGTH",
    "VERSION_TABLE",
    "campaigns",
    "cases",
    "events",
    "idempotency",
    "metadata",
    "outbox",
    "refusals",
]

#: The Alembic revision this reviewflow writes and reads.
HEAD_REVISION = "0002"
#: The table Alembic keeps the revision in (prefixed, to share a database).
VERSION_TABLE = "rf_alembic_version"
#: The version of the JSON documents (case state) this reviewflow writes.
FORMAT = 1
#: The longest campaign, case or actor id the store keeps.
ID_LENGTH = 200

#: MySQL compares text case-insensitively by default; ids must not ("A" is not "a").
TABLE_ARGS: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def _json_text() -> TypeEngine[str]:
    # TEXT on MySQL stops at 64 KiB; a case with a long report can exceed it.
    return Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def _serial() -> TypeEngine[int]:
    # SQLite only auto-increments an INTEGER PRIMARY KEY.
    return BigInteger().with_variant(Integer(), "sqlite")


metadata = MetaData()

campaigns = Table(
    "rf_campaigns", metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("policy", _json_text(), nullable=False),
    Column("created", DateTime(), nullable=False, server_default=func.current_timestamp()),
    **TABLE_ARGS,
)

cases = Table(
    "rf_cases", metadata,
    Column("campaign_id", String(ID_LENGTH), nullable=False),
    Column("case_id", String(ID_LENGTH), nullable=False),
    Column("stage", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
    Column("previous_case_id", String(2 * ID_LENGTH + 1), nullable=True),
    #: {"format": 1, "organization": ..., "secretary": {...}, "data": {...}}
    Column("state", _json_text(), nullable=False),
    PrimaryKeyConstraint("campaign_id", "case_id", name="rf_cases_pk"),
    Index("rf_cases_stage", "campaign_id", "stage"),
    **TABLE_ARGS,
)

events = Table(
    "rf_events", metadata,
    Column("campaign_id", String(ID_LENGTH), nullable=False),
    Column("case_id", String(ID_LENGTH), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("event", String(64), nullable=False),
    Column("actor_id", String(ID_LENGTH), nullable=False),
    Column("role", String(64), nullable=False),
    Column("at", String(40), nullable=False),
    Column("from_stage", String(32), nullable=True),
    Column("to_stage", String(32), nullable=False),
    Column("reason", Text, nullable=True),
    Column("data", _json_text(), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    PrimaryKeyConstraint("campaign_id", "case_id", "seq", name="rf_events_pk"),
    **TABLE_ARGS,
)

refusals = Table(
    "rf_refusals", metadata,
    Column("id", _serial(), primary_key=True, autoincrement=True),
    Column("campaign_id", String(ID_LENGTH), nullable=False),
    Column("case_id", String(ID_LENGTH), nullable=False),
    Column("event", String(64), nullable=False),
    Column("actor_id", String(ID_LENGTH), nullable=False),
    Column("roles", Text, nullable=False),
    Column("at", String(40), nullable=False),
    Column("stage", String(32), nullable=True),
    Column("reason", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Index("rf_refusals_case", "campaign_id", "case_id"),
    **TABLE_ARGS,
)

outbox = Table(
    "rf_outbox", metadata,
    Column("id", _serial(), primary_key=True, autoincrement=True),
    Column("campaign_id", String(ID_LENGTH), nullable=False),
    Column("case_id", String(ID_LENGTH), nullable=False),
    Column("seq", Integer, nullable=False),
    UniqueConstraint("campaign_id", "case_id", "seq", name="rf_outbox_event"),
    **TABLE_ARGS,
)

idempotency = Table(
    "rf_idempotency", metadata,
    Column("campaign_id", String(ID_LENGTH), nullable=False),
    Column("key", String(ID_LENGTH), nullable=False),
    Column("fingerprint", String(128), nullable=False),
    Column("case_id", String(ID_LENGTH), nullable=False),
    Column("version", Integer, nullable=False),
    PrimaryKeyConstraint("campaign_id", "key", name="rf_idempotency_pk"),
    **TABLE_ARGS,
)
