"""The SQL schema of the durable store, as SQLAlchemy Core tables.

Every table carries the ``rf_`` prefix so that reviewflow can share a database
with the host application. The Alembic revisions in :mod:`reviewflow.migrations`
build exactly this schema (a test compares them); a fresh database gets it from
:func:`create_schema`, which stamps the head revision.

Features that write extra rows in the same transaction as a step keep their
tables here too: the deadline index and rung marks, and the ballot box (tokens,
ballots, vote rounds), from revisions 0003 and 0004. A new one: add the table here, on
:data:`metadata`, add an Alembic revision under ``reviewflow/migrations/versions/``
(next number, ``down_revision`` the current head, and bump :data:`HEAD_REVISION`),
and register how the extra row is written with
:func:`reviewflow.store.sql.register_extra`. ``docs/how-to/persist.md`` has the steps.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
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
    "anchors",
    "ballot_tokens",
    "ballots",
    "campaign_events",
    "campaigns",
    "cases",
    "deadline_index",
    "delivery_log",
    "event_macs",
    "events",
    "idempotency",
    "metadata",
    "outbox",
    "refusals",
    "rung_marks",
    "vote_rounds",
]

#: The Alembic revision this reviewflow writes and reads.
HEAD_REVISION = "0008"
#: The table Alembic keeps the revision in (prefixed, to share a database).
VERSION_TABLE = "rf_alembic_version"
#: The version of the JSON documents (case state) this reviewflow writes.
FORMAT = 1
#: The longest campaign, case or actor id the store keeps.
ID_LENGTH = 200

#: MySQL compares text case-insensitively by default; ids must not ("A" is not "a"). Nor
#: may they pad ("s1 " is not "s1"): create_schema and revision 0005 convert the tables to
#: the server's NO PAD binary collation (reviewflow.store._collation).
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

#: The campaign's own chain: the policy sealed when the campaign was set up (``seal_policy``)
#: and each amendment (``amend_policy``), hash-chained like a case's events.
campaign_events = Table(
    "rf_campaign_events", metadata,
    Column("campaign_id", String(ID_LENGTH), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("event", String(64), nullable=False),
    Column("actor_id", String(ID_LENGTH), nullable=False),
    Column("role", String(64), nullable=False),
    Column("at", String(40), nullable=False),
    Column("reason", Text, nullable=True),
    Column("data", _json_text(), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    PrimaryKeyConstraint("campaign_id", "seq", name="rf_campaign_events_pk"),
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

# ---------------------------------------------------------------------- deadlines (revision 0003)

#: One row per case with a deadline: the current stage, its due time and the fire time of
#: its next unfired rung, as microseconds since 1970-01-01 UTC (see reviewflow._engine.deadline_work).
deadline_index = Table(
    "rf_deadline_index", metadata,
    Column("campaign_id", String(ID_LENGTH), nullable=False),
    Column("case_id", String(ID_LENGTH), nullable=False),
    Column("stage", String(32), nullable=False),
    Column("due_us", BigInteger, nullable=True),
    Column("next_fire_us", BigInteger, nullable=True),
    PrimaryKeyConstraint("campaign_id", "case_id", name="rf_deadline_index_pk"),
    Index("rf_deadline_index_fire", "campaign_id", "next_fire_us"),
    Index("rf_deadline_index_due", "campaign_id", "due_us"),
    **TABLE_ARGS,
)

#: Fired rungs, insert-only: the key refuses a second firing of one rung for one due time.
rung_marks = Table(
    "rf_rung_marks", metadata,
    Column("campaign_id", String(ID_LENGTH), nullable=False),
    Column("case_id", String(ID_LENGTH), nullable=False),
    Column("stage", String(32), nullable=False),
    Column("rung_id", String(64), nullable=False),
    Column("due_us", BigInteger, nullable=False),
    Column("fired_at", String(40), nullable=False),
    Column("seq", Integer, nullable=False),
    PrimaryKeyConstraint("campaign_id", "case_id", "stage", "rung_id", "due_us",
                         name="rf_rung_marks_pk"),
    **TABLE_ARGS,
)

# ---------------------------------------------------------------------- the ballot box (0003)

#: One-time ballot tokens, by hash (the token itself is never stored).
ballot_tokens = Table(
    "rf_ballot_tokens", metadata,
    Column("campaign_id", String(ID_LENGTH), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("case_id", String(ID_LENGTH), nullable=False),
    Column("round", Integer, nullable=False),
    Column("category", String(64), nullable=False),
    Column("used", Boolean(name="rf_ballot_tokens_used"), nullable=False),
    PrimaryKeyConstraint("campaign_id", "token_hash", name="rf_ballot_tokens_pk"),
    Index("rf_ballot_tokens_round", "campaign_id", "case_id", "round"),
    **TABLE_ARGS,
)

#: Secret ballots: a random id, the round, the voter's category and the choice. No voter,
#: no token, no time. Every cast rewrites all of its round's rows in a fresh random order,
#: each under a fresh random ``slot`` (the row's key), so that no system column, page or
#: cell order links a row to the cast that brought it (revision 0004; see
#: :mod:`reviewflow.store._ballots`).
ballots = Table(
    "rf_ballots", metadata,
    Column("campaign_id", String(ID_LENGTH), nullable=False),
    Column("case_id", String(ID_LENGTH), nullable=False),
    Column("round", Integer, nullable=False),
    Column("slot", String(32), nullable=False),
    Column("ballot_id", String(64), nullable=False),
    Column("category", String(64), nullable=False),
    Column("choice", String(64), nullable=True),
    PrimaryKeyConstraint("campaign_id", "case_id", "round", "slot", name="rf_ballots_slot_pk"),
    sqlite_with_rowid=False,
    **TABLE_ARGS,
)

#: Vote rounds that take ballots; ``frozen`` is set by the commit that closes (or voids) it.
vote_rounds = Table(
    "rf_vote_rounds", metadata,
    Column("campaign_id", String(ID_LENGTH), nullable=False),
    Column("case_id", String(ID_LENGTH), nullable=False),
    Column("round", Integer, nullable=False),
    Column("frozen", Boolean(name="rf_vote_rounds_frozen"), nullable=False),
    PrimaryKeyConstraint("campaign_id", "case_id", "round", name="rf_vote_rounds_pk"),
    **TABLE_ARGS,
)


# ---------------------------------------------------------------------- delivery log (0006)

#: Failed deliveries to the hooks, one row per (event, plugin, hook), until delivered; times
#: as fixed-width UTC text (see reviewflow._engine.dispatch.utc_key).
delivery_log = Table(
    "rf_delivery_log", metadata,
    Column("campaign_id", String(ID_LENGTH), nullable=False),
    Column("case_id", String(ID_LENGTH), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("plugin", String(ID_LENGTH), nullable=False),
    Column("hook", String(64), nullable=False),
    Column("event", String(64), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=False),
    Column("first_failed_at", String(40), nullable=False),
    Column("next_try_at", String(40), nullable=False),
    PrimaryKeyConstraint("campaign_id", "case_id", "seq", "plugin", "hook",
                         name="rf_delivery_log_pk"),
    Index("rf_delivery_log_due", "campaign_id", "next_try_at"),
    **TABLE_ARGS,
)

# ---------------------------------------------------------------------- anchors and MACs (0007)

#: Checkpoints of a campaign's record (``reviewflow anchor``): the anchor's digest, its time
#: and its whole text (see :mod:`reviewflow.anchoring`). Whoever can write the database can
#: delete these rows: the anchor's file and the printed notice are what really anchor.
anchors = Table(
    "rf_anchors", metadata,
    Column("campaign_id", String(ID_LENGTH), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("at", String(40), nullable=False),
    Column("body", _json_text(), nullable=False),
    PrimaryKeyConstraint("campaign_id", "digest", name="rf_anchors_pk"),
    **TABLE_ARGS,
)

#: The keyed MAC (HMAC-SHA256 over the event's hash) of each event sealed while an audit
#: key was configured; the key itself is never stored.
event_macs = Table(
    "rf_event_macs", metadata,
    Column("campaign_id", String(ID_LENGTH), nullable=False),
    Column("case_id", String(ID_LENGTH), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("mac", String(64), nullable=False),
    PrimaryKeyConstraint("campaign_id", "case_id", "seq", name="rf_event_macs_pk"),
    **TABLE_ARGS,
)
