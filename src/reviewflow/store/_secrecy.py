"""Ballot secrecy in the SQL store: every cast writes all of its round's ballots again.

A database stamps every row a transaction writes with that transaction (PostgreSQL's
``xmin``, InnoDB's hidden transaction id) and places rows in the order they are written
(PostgreSQL's ``ctid``, InnoDB's heap order inside a page, SQLite's cell offsets inside a
b-tree page). The cast that redeems a token also writes the token's row, so a ballot row
written by that cast alone would be linked to the token (and to the voter the organiser
handed it to), and the rows' order would be the casting order.

So a cast writes the round's ballots again, the new one among them, each under a fresh
random ``slot`` (the row's key: InnoDB would put a row re-inserted under its old key
back in its old place) and in a fresh random order, then deletes the old rows. Where
the database has a cryptographic random source in SQL the copy runs inside it
(``INSERT ... SELECT ... ORDER BY`` a random key); elsewhere through Python, shuffled
with :mod:`secrets`. Afterwards every live ballot row of the round carries the latest
cast's transaction, and the rows' places are a random permutation that has nothing to
do with the order the ballots came in. The cost is one copy and one delete of the
round's ballots per cast (``bench/ballot_secrecy.py`` measures it); casts of one round
take turns (the round's row is locked for update).

What a rewrite cannot remove (old row versions until the database reclaims them, the
server's write-ahead or binary logs) is listed, with the remedies, in
``docs/reliability.md`` ("Ballot secrecy against a reader of the database").
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reviewflow.ballots import Ballot
from reviewflow.store import _schema as s

__all__ = ["rewrite_round"]

_B = s.ballots.c
_RANDOM = secrets.SystemRandom()


def _in_round(campaign_id: str, case_id: str, round_no: int) -> sa.ColumnElement[bool]:
    return sa.and_(_B.campaign_id == campaign_id, _B.case_id == case_id, _B.round == round_no)


def _in_database(conn: Connection) -> tuple[str, str] | None:
    """Return SQL for a slot (a prefix joined to 20 random hex digits) and a random sort
    key, each from the database's own cryptographic random source, or None where the
    server has none (then the rewrite goes through Python)."""
    dialect = conn.dialect
    version = tuple(dialect.server_version_info or ())
    if dialect.name == "sqlite":
        return "{prefix} || lower(hex(randomblob(10)))", "randomblob(16)"
    if dialect.name == "postgresql" and version >= (13,):
        return "{prefix} || left(md5(gen_random_uuid()::text), 20)", "gen_random_uuid()"
    if dialect.name in ("mysql", "mariadb"):
        mariadb = bool(getattr(dialect, "is_mariadb", False))
        if version >= ((10, 10) if mariadb else (5, 6, 17)):
            return "CONCAT({prefix}, LOWER(HEX(RANDOM_BYTES(10))))", "RANDOM_BYTES(16)"
    return None


def rewrite_round(conn: Connection, campaign_id: str, case_id: str, round_no: int,
                  build: Callable[[], Ballot]) -> Ballot:
    """Add ``build()``'s ballot to the round by writing all of the round's ballots again.

    Runs inside the cast's transaction, which holds the round's row locked. The new
    ballot's random id is drawn again in the (never seen) case that the round has it.
    Where the database has a cryptographic random source in SQL, the rows are copied
    inside the database (``INSERT ... SELECT ... ORDER BY`` a random key, then the old
    ones deleted); elsewhere they are read, shuffled with :mod:`secrets` and written back.
    """
    sql = _in_database(conn)
    if sql is None:
        return _rewrite_in_python(conn, campaign_id, case_id, round_no, build)
    where = _in_round(campaign_id, case_id, round_no)
    ballot = build()
    while conn.execute(sa.select(sa.func.count()).select_from(s.ballots).where(where)
                       .where(_B.ballot_id == ballot.ballot_id)).scalar_one():
        ballot = build()  # pragma: no cover - 64 random bits
    # The rows written now all get slots starting with a new random prefix; the new
    # ballot goes in first under an old-style slot, so that it is copied, at a random
    # place, with the others.
    prefix = secrets.token_hex(6)
    slot = secrets.token_hex(16)
    while slot.startswith(prefix):  # pragma: no cover - one in 2**48
        slot = secrets.token_hex(16)
    conn.execute(sa.insert(s.ballots), {
        "campaign_id": campaign_id, "case_id": case_id, "round": round_no, "slot": slot,
        "ballot_id": ballot.ballot_id, "category": ballot.category, "choice": ballot.choice})
    key, order = sql
    old = sa.not_(_B.slot.startswith(prefix, autoescape=True))
    conn.execute(
        sa.insert(s.ballots).from_select(
            ["campaign_id", "case_id", "round", "slot", "ballot_id", "category", "choice"],
            sa.select(_B.campaign_id, _B.case_id, _B.round,
                      sa.literal_column(key.format(prefix=f"'{prefix}'")),  # hex digits
                      _B.ballot_id, _B.category, _B.choice)
            .where(where).where(old).order_by(sa.text(order))),
    )
    conn.execute(sa.delete(s.ballots).where(where).where(old))
    return ballot


def _rewrite_in_python(conn: Connection, campaign_id: str, case_id: str, round_no: int,
                       build: Callable[[], Ballot]) -> Ballot:
    held = conn.execute(
        sa.select(_B.ballot_id, _B.category, _B.choice).where(
            _in_round(campaign_id, case_id, round_no))
    ).all()
    taken = {str(r.ballot_id) for r in held}
    ballot = build()
    while ballot.ballot_id in taken:  # pragma: no cover - 64 random bits
        ballot = build()
    rows = [{"ballot_id": str(r.ballot_id), "category": str(r.category), "choice": r.choice}
            for r in held]
    rows.append({"ballot_id": ballot.ballot_id, "category": ballot.category,
                 "choice": ballot.choice})
    _RANDOM.shuffle(rows)
    for r in rows:
        r.update(campaign_id=campaign_id, case_id=case_id, round=round_no,
                 slot=secrets.token_hex(16))
    if held:
        conn.execute(sa.delete(s.ballots).where(_in_round(campaign_id, case_id, round_no)))
    conn.execute(sa.insert(s.ballots), rows)
    return ballot
