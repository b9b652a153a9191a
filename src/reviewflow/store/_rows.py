"""Rows of the SQL store: JSON documents, commit rows, and PostgreSQL's batch statements."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy.engine import Connection

from reviewflow.exceptions import InputError
from reviewflow.store import _schema as s

__all__ = ["CommitRows", "check_id", "dumps", "event_data", "pg_insert_rest", "pg_update"]



# Built once: json.dumps with options builds a new encoder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def dumps(value: Any, what: str) -> str:
    """Serialize plain JSON data compactly and deterministically; InputError otherwise."""
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{what} is not plain JSON data ({exc}); keep numbers as int or str "
            "(a Decimal as str) and times as ISO 8601 strings"
        ) from None


def event_data(text: str) -> dict[str, Any]:
    """Read an event's stored data; an unreadable row loads marked, for verify()."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        # An unreadable row still loads, so that verify() reports it instead of crashing.
        return {"__unreadable__": text}
    return value


def check_id(value: str, what: str) -> None:
    """Refuse an id that is empty or longer than the columns hold."""
    if not isinstance(value, str) or not value or len(value) > s.ID_LENGTH:
        raise InputError(
            f"{what} {value!r} must be a non-empty string of at most {s.ID_LENGTH} characters"
        )



class CommitRows(NamedTuple):
    """The rows one commit writes, ready for the driver."""

    update: dict[str, Any]
    case: dict[str, Any]
    events: list[dict[str, Any]]
    outbox: list[dict[str, Any]]
    idem: dict[str, Any] | None


_PG_UPDATE = (
    "UPDATE rf_cases AS c SET stage = v.stage, version = v.version, last_hash = v.last_hash, "
    "previous_case_id = v.previous, state = v.state "
    "FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[], %s::int[], %s::text[], "
    "%s::text[], %s::text[]) "
    "AS v(campaign_id, case_id, expected, stage, version, last_hash, previous, state) "
    "WHERE c.campaign_id = v.campaign_id AND c.case_id = v.case_id AND c.version = v.expected"
)
_PG_EVENTS = (
    "INSERT INTO rf_events (campaign_id, case_id, seq, event, actor_id, role, at, from_stage, "
    "to_stage, reason, data, prev_hash, hash) SELECT * FROM unnest(%s::text[], %s::text[], "
    "%s::int[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::text[], %s::text[], %s::text[], %s::text[])"
)
_PG_EVENTS_AND_OUTBOX = (
    "WITH e AS (" + _PG_EVENTS + " RETURNING campaign_id, case_id, seq) "  # noqa: S608 (constants)
    "INSERT INTO rf_outbox (campaign_id, case_id, seq) SELECT campaign_id, case_id, seq FROM e"
)
_PG_OUTBOX = (
    "INSERT INTO rf_outbox (campaign_id, case_id, seq) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::int[])"
)
PG_UPDATE_ONE = (
    "UPDATE rf_cases SET stage = %s, version = %s, last_hash = %s, previous_case_id = %s, "
    "state = %s WHERE campaign_id = %s AND case_id = %s AND version = %s"
)
_UPDATE_KEYS = ("k_campaign", "k_case", "k_expected", "n_stage", "n_version", "n_last_hash",
                "n_previous", "n_state")
_EVENT_KEYS = ("campaign_id", "case_id", "seq", "event", "actor_id", "role", "at", "from_stage",
               "to_stage", "reason", "data", "prev_hash", "hash")


def pg_update(conn: Connection, rows: Sequence[CommitRows]) -> int:
    """Update many case rows with one statement per wave; return how many matched."""
    # unnest() joins each case row once per statement: a case moved twice goes in two waves.
    waves: list[list[dict[str, Any]]] = []
    seen: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r.update["k_campaign"], r.update["k_case"])
        n = seen.get(key, 0)
        seen[key] = n + 1
        if n == len(waves):
            waves.append([])
        waves[n].append(r.update)
    updated = 0
    for wave in waves:
        params = tuple([u[k] for u in wave] for k in _UPDATE_KEYS)
        updated += conn.exec_driver_sql(_PG_UPDATE, params).rowcount
    return updated


def pg_insert_rest(conn: Connection, rows: Sequence[CommitRows]) -> None:
    """Insert the events and their outbox rows (one round trip when every event has one)."""
    events = [e for r in rows for e in r.events]
    outbox = [o for r in rows for o in r.outbox]
    if events:
        sql = _PG_EVENTS_AND_OUTBOX if len(outbox) == len(events) else _PG_EVENTS
        conn.exec_driver_sql(sql, tuple([e[k] for e in events] for k in _EVENT_KEYS))
        if len(outbox) == len(events):
            return
    if outbox:
        conn.exec_driver_sql(_PG_OUTBOX, tuple(
            [o[k] for o in outbox] for k in ("campaign_id", "case_id", "seq")
        ))


