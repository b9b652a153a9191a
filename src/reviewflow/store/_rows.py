"""Rows of the SQL store: JSON documents, commit rows, and PostgreSQL's batch statements."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy.engine import Connection

from reviewflow.exceptions import InputError
from reviewflow.model import _C_ENCODE  # the same options as _ENCODER below
from reviewflow.store import _schema as s

__all__ = [
    "EVENT_COLUMNS",
    "CommitRows",
    "check_id",
    "driver_sql",
    "dumps",
    "event_data",
    "pg_insert_rest",
    "pg_update",
]


# Built once: json.dumps with options builds a new encoder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def dumps(value: Any, what: str) -> str:
    """Serialize plain JSON data compactly and deterministically; InputError otherwise."""
    if _C_ENCODE is not None and isinstance(value, dict):
        # The C encoder built once (encode() builds one per call): the same text, without
        # the check for circular references (those end in RecursionError).
        try:
            return "".join(_C_ENCODE(value, 0))
        except (TypeError, ValueError, RecursionError):
            pass  # the checking encoder below says what is wrong
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
    """The rows one commit writes, as the driver takes them (see :func:`driver_sql`)."""

    #: (stage, version, last_hash, previous_case_id, state, campaign_id, case_id, expected)
    update: tuple[Any, ...]
    #: Each in the order of :data:`EVENT_COLUMNS`.
    events: list[tuple[Any, ...]]
    #: (campaign_id, case_id, seq) per event.
    outbox: list[tuple[Any, ...]]
    idem: dict[str, Any] | None

    @property
    def case(self) -> dict[str, Any]:
        """The case row, for an INSERT of a new case."""
        u = self.update
        return {"campaign_id": u[5], "case_id": u[6], "stage": u[0], "version": u[1],
                "last_hash": u[2], "previous_case_id": u[3], "state": u[4]}


EVENT_COLUMNS = ("campaign_id", "case_id", "seq", "event", "actor_id", "role", "at",
                 "from_stage", "to_stage", "reason", "data", "prev_hash", "hash")


def driver_sql(mark: str) -> tuple[str, str, str]:
    """Return the case UPDATE, event INSERT and outbox INSERT in the driver's placeholder."""
    if mark not in ("?", "%s"):  # the only text interpolated into these statements
        raise ValueError(f"unknown placeholder {mark!r}")
    update = (
        f"UPDATE rf_cases SET stage = {mark}, version = {mark}, last_hash = {mark}, "  # noqa: S608
        f"previous_case_id = {mark}, state = {mark} "
        f"WHERE campaign_id = {mark} AND case_id = {mark} AND version = {mark}"
    )
    events = (
        f"INSERT INTO rf_events ({', '.join(EVENT_COLUMNS)}) "  # noqa: S608 (constants)
        f"VALUES ({', '.join([mark] * len(EVENT_COLUMNS))})"
    )
    outbox = f"INSERT INTO rf_outbox (campaign_id, case_id, seq) VALUES ({mark}, {mark}, {mark})"  # noqa: S608
    return update, events, outbox


_PG_UPDATE = (
    "UPDATE rf_cases AS c SET stage = v.stage, version = v.version, last_hash = v.last_hash, "
    "previous_case_id = v.previous, state = v.state "
    "FROM unnest(%s::text[], %s::int[], %s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::text[], %s::int[]) "
    "AS v(stage, version, last_hash, previous, state, campaign_id, case_id, expected) "
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

def pg_update(conn: Connection, rows: Sequence[CommitRows]) -> int:
    """Update many case rows with one statement per wave; return how many matched."""
    # unnest() joins each case row once per statement: a case moved twice goes in two waves.
    waves: list[list[tuple[Any, ...]]] = []
    seen: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r.update[5], r.update[6])
        n = seen.get(key, 0)
        seen[key] = n + 1
        if n == len(waves):
            waves.append([])
        waves[n].append(r.update)
    updated = 0
    for wave in waves:
        params = tuple(list(column) for column in zip(*wave, strict=True))
        updated += conn.exec_driver_sql(_PG_UPDATE, params).rowcount
    return updated


def pg_insert_rest(conn: Connection, rows: Sequence[CommitRows]) -> None:
    """Insert the events and their outbox rows (one round trip when every event has one)."""
    events = [e for r in rows for e in r.events]
    outbox = [o for r in rows for o in r.outbox]
    if events:
        sql = _PG_EVENTS_AND_OUTBOX if len(outbox) == len(events) else _PG_EVENTS
        conn.exec_driver_sql(sql, tuple(list(column) for column in zip(*events, strict=True)))
        if len(outbox) == len(events):
            return
    if outbox:
        conn.exec_driver_sql(_PG_OUTBOX, tuple(
            list(column) for column in zip(*outbox, strict=True)
        ))


