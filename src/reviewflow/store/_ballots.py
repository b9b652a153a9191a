"""The SQL store's ballot box: one-time tokens, secret ballots and vote rounds in tables.

* Tokens are kept by hash (``rf_ballot_tokens``), written by the commit that issues them
  (a :class:`~reviewflow.store.rows.TokenRows` extra row), so any process on the database
  can redeem them later.
* A cast is one transaction: lock the round's row (so casts of one round take turns, and
  a close waits for them), check it is not frozen,
  ``UPDATE ... SET used = true WHERE token_hash = ? AND NOT used`` (exactly one row, or
  the token is unknown, of another case or used), then write the round's ballots again,
  the new one among them: all written again under fresh random slots (the key) in a
  fresh random order, the old rows deleted (:func:`reviewflow.store._secrecy.rewrite_round`). A ballot row
  has a random id, the round, the category and the choice: no voter, token or time; and
  since every live row of the round was written by the latest cast, no system column
  (PostgreSQL ``xmin``/``ctid``, InnoDB's transaction id and heap order), page or cell
  order tells which cast brought which ballot. Ballots are listed by id.
* Closing (or voiding) a round freezes it inside the closing commit (a
  :class:`~reviewflow.store.rows.RoundFrozen` extra row): the freeze waits for casts in
  flight, then checks that the box holds exactly the ballots the tally counted; if a
  ballot came in meanwhile, the commit is refused with a ConflictError and the close is
  computed again. So no ballot can land after the tally.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reviewflow.ballots import Ballot, IssuedToken, TokenGrant, _check_grant, token_hash
from reviewflow.exceptions import BallotError, ConflictError, ScrubIncomplete, StoreError, StoreTimeout
from reviewflow.store import _schema as s
from reviewflow.store._secrecy import rewrite_round
from reviewflow.store.rows import RoundFrozen, TokenRows

if TYPE_CHECKING:
    from reviewflow.store._conn import SqlConnections

__all__ = ["SqlBallotBox", "write_frozen", "write_token_rows"]

_T = s.ballot_tokens.c
_B = s.ballots.c
_R = s.vote_rounds.c


def _round_where(campaign_id: str, case_id: str, round_no: int) -> sa.ColumnElement[bool]:
    return sa.and_(_R.campaign_id == campaign_id, _R.case_id == case_id, _R.round == round_no)


def _insert_grants(conn: Connection, campaign_id: str, grants: Sequence[TokenGrant]) -> None:
    if not grants:
        return
    for case_id, round_no in sorted({(g.case_id, g.round) for g in grants}):
        exists = conn.execute(
            sa.select(_R.frozen).where(_round_where(campaign_id, case_id, round_no))
        ).first()
        if exists is None:
            conn.execute(sa.insert(s.vote_rounds), {
                "campaign_id": campaign_id, "case_id": case_id, "round": round_no,
                "frozen": False,
            })
    conn.execute(sa.insert(s.ballot_tokens), [
        {"campaign_id": campaign_id, "token_hash": g.token_hash, "case_id": g.case_id,
         "round": g.round, "category": g.category, "used": False}
        for g in grants
    ])


def _set_frozen(conn: Connection, campaign_id: str, case_id: str, round_no: int,
                frozen: bool) -> None:
    done = conn.execute(
        sa.update(s.vote_rounds).where(_round_where(campaign_id, case_id, round_no))
        .values(frozen=frozen)
    ).rowcount
    if done == 0:
        conn.execute(sa.insert(s.vote_rounds), {
            "campaign_id": campaign_id, "case_id": case_id, "round": round_no, "frozen": frozen,
        })


def _count(conn: Connection, campaign_id: str, case_id: str, round_no: int) -> int:
    return int(conn.execute(
        sa.select(sa.func.count()).select_from(s.ballots)
        .where(_B.campaign_id == campaign_id).where(_B.case_id == case_id)
        .where(_B.round == round_no)
    ).scalar_one())


def write_token_rows(store: SqlConnections, conn: Connection, rows: Sequence[TokenRows]) -> None:
    """Keep newly issued tokens (by hash) and open their round, inside the issuing commit."""
    for r in rows:
        _insert_grants(conn, r.campaign_id, r.grants)


def write_token_row(store: SqlConnections, conn: Connection, row: TokenRows) -> None:
    """Keep one batch of newly issued tokens (see :func:`write_token_rows`)."""
    write_token_rows(store, conn, [row])


def write_frozen(store: SqlConnections, conn: Connection, rows: Sequence[RoundFrozen]) -> None:
    """Freeze rounds inside the closing commit; refuse it if the box has other ballots."""
    for r in rows:
        # Waits for casts in flight (they hold a shared lock on the round row).
        _set_frozen(conn, r.campaign_id, r.case_id, r.round, True)
        stored = _count(conn, r.campaign_id, r.case_id, r.round)
        if stored != r.ballots:
            error = ConflictError(r.case_id, r.ballots, stored)
            error.args = (
                f"case {r.case_id!r}: round {r.round} holds {stored} ballots, the tally counted "
                f"{r.ballots}: a ballot was cast while the vote was closing; nothing was "
                "written, close it again (the tally is computed afresh)",
            )
            raise error


def write_frozen_one(store: SqlConnections, conn: Connection, row: RoundFrozen) -> None:
    """Freeze one round (see :func:`write_frozen`)."""
    write_frozen(store, conn, [row])


class SqlBallotBox:
    """A campaign's ballot box in the SQL store (``SqlStore.ballot_box(campaign_id)``)."""

    #: New tokens and freezes travel as extra rows of the step's own commit.
    in_commit = True

    def __init__(self, store: SqlConnections, campaign_id: str) -> None:
        self.lock = threading.RLock()
        self.campaign_id = campaign_id
        self._store = store

    def add_tokens(self, tokens: Sequence[IssuedToken]) -> None:
        """Keep tokens issued outside a commit (their hashes), in a transaction of their own."""
        grants = [TokenGrant(token_hash=token_hash(t.token), case_id=t.case_id, round=t.round,
                             category=t.category) for t in tokens]
        self._store._run_write(lambda conn: _insert_grants(conn, self.campaign_id, grants))

    def cast(self, case_id: str, round: int, token: str, choice: str | None,
             build: Callable[[int, str], Ballot]) -> Ballot:
        """Redeem ``token`` and store ``build(round, category)``'s ballot, in one transaction.

        Raises BallotError (``vote_closed``, ``unknown_token``, ``wrong_case``,
        ``wrong_round``, ``token_used``) and stores nothing then.
        """
        digest = token_hash(token)
        campaign_id = self.campaign_id

        def work(conn: Connection) -> Ballot:
            frozen = conn.execute(
                sa.select(_R.frozen).where(_round_where(campaign_id, case_id, round))
                .with_for_update()  # casts of a round take turns: each rewrites the round
            ).first()
            if frozen is not None and frozen[0]:
                raise BallotError("vote_closed", f"the vote of case {case_id!r} is closed")
            row = conn.execute(
                sa.select(_T.case_id, _T.round, _T.category, _T.used)
                .where(_T.campaign_id == campaign_id).where(_T.token_hash == digest)
            ).first()
            grant = None if row is None else TokenGrant(
                token_hash=digest, case_id=row.case_id, round=row.round, category=row.category)
            grant = _check_grant(grant, bool(row is not None and row.used), case_id, round)
            redeemed = conn.execute(
                sa.update(s.ballot_tokens)
                .where(_T.campaign_id == campaign_id).where(_T.token_hash == digest)
                .where(_T.used == sa.false())
                .values(used=True)
            ).rowcount
            if redeemed != 1:  # another cast redeemed it meanwhile
                raise BallotError("token_used", "this ballot token has already been used")
            return rewrite_round(conn, campaign_id, case_id, grant.round,
                                 lambda: build(grant.round, grant.category))

        result: Ballot = self._store._run_write(work)
        return result

    def ballots(self, case_id: str, round: int) -> dict[str, Ballot]:
        """Return the round's ballots by id, in id order (never in the order cast)."""
        query = (
            sa.select(_B.ballot_id, _B.round, _B.category, _B.choice)
            .where(_B.campaign_id == self.campaign_id).where(_B.case_id == case_id)
            .where(_B.round == round).order_by(_B.ballot_id)
        )
        with self._store.reading() as conn:
            rows = conn.execute(query).all()
        out = {str(r.ballot_id): Ballot(ballot_id=str(r.ballot_id), round=int(r.round),
                                        category=str(r.category), choice=r.choice)
               for r in rows}
        return dict(sorted(out.items()))  # the database's collation may order otherwise

    def unused(self, case_id: str, round: int) -> int:
        """Return how many tokens of the case's round are still unused."""
        query = (
            sa.select(sa.func.count()).select_from(s.ballot_tokens)
            .where(_T.campaign_id == self.campaign_id).where(_T.case_id == case_id)
            .where(_T.round == round).where(_T.used == sa.false())
        )
        with self._store.reading() as conn:
            return int(conn.execute(query).scalar_one())

    def freeze(self, case_id: str, round: int) -> None:
        """Refuse further casts in the round (closing a vote does this in its own commit)."""
        self._store._run_write(
            lambda conn: _set_frozen(conn, self.campaign_id, case_id, round, True))

    def thaw(self, case_id: str, round: int) -> None:
        """Undo :meth:`freeze`."""
        self._store._run_write(
            lambda conn: _set_frozen(conn, self.campaign_id, case_id, round, False))

    def scrub(self) -> bool:
        """Remove the old copies of ballot rows from the database's files, after a vote; True.

        Each cast writes its round's ballots again; the versions it replaced stay in the
        table's pages until the database reclaims their space, and a copy of the files
        (a physical backup) would hold them. This rebuilds the ballot table so that only
        the live rows remain: ``VACUUM FULL rf_ballots`` on PostgreSQL, ``OPTIMIZE TABLE
        rf_ballots`` on MySQL/MariaDB, ``PRAGMA wal_checkpoint(TRUNCATE)`` on SQLite
        (whose freed cells are zeroed as they are freed). The ballot table of the whole
        database is locked while it runs (a moment for a few thousand ballots). PostgreSQL
        keeps the versions that a transaction still open in the database may see: scrub
        when no long transaction is running, or again after it ends.
        ``reviewflow ballots close`` runs it after closing a vote, as does
        ``Campaign.close_vote(..., scrub=True)``; ``Campaign.scrub_ballots()`` and
        ``reviewflow ballots scrub`` run it alone.

        Raises :class:`~reviewflow.exceptions.ScrubIncomplete` when the database did not
        do it: on SQLite, another connection reading the file keeps the write-ahead log
        from being checkpointed and truncated; on MySQL/MariaDB ``OPTIMIZE`` reports an
        error row (a lock held on the table until the statement limit ran out); on
        PostgreSQL ``VACUUM FULL`` fails (a lock or statement limit). Run it again when
        no other connection is open.
        """
        dialect = self._store.dialect
        statement = {"postgresql": "VACUUM FULL rf_ballots",
                     "mysql": "OPTIMIZE TABLE rf_ballots"}.get(
            dialect, "PRAGMA wal_checkpoint(TRUNCATE)")
        try:
            with self._store.reading() as conn:  # autocommit on a server: VACUUM needs it
                result = conn.exec_driver_sql(statement)
                rows = [tuple(r) for r in result.all()] if result.returns_rows else []
        except ScrubIncomplete:
            raise
        except StoreTimeout as exc:  # its "not applied" text is said of commands, not this
            raise ScrubIncomplete(f"{statement} ran out of its {exc.reason}: another "
                                  "connection holds the ballot table") from exc
        except StoreError as exc:
            raise ScrubIncomplete(f"{statement} failed: {exc}") from exc
        why = _scrub_failure(dialect, rows)
        if why is not None:
            raise ScrubIncomplete(f"{statement}: {why}")
        return True

    def __repr__(self) -> str:
        return f"SqlBallotBox({self._store.url!r}, {self.campaign_id!r})"


def _scrub_failure(dialect: str, rows: list[tuple[Any, ...]]) -> str | None:
    """Say why the scrub's result rows show it was not done, or None if it was."""
    if dialect == "mysql":  # (Table, Op, Msg_type, Msg_text) rows; the last one the status
        errors = [str(r[3]) for r in rows if str(r[2]).lower() == "error"]
        last = str(rows[-1][3]) if rows else "no status row"
        if errors or last.upper() != "OK":
            return "; ".join([*errors, last] if last not in errors else errors)
        return None
    if dialect == "sqlite" and rows:  # (busy, log frames, frames checkpointed)
        busy, log, done = (int(v) for v in rows[0][:3])
        if busy != 0 or log != done:
            return (f"busy={busy}, {done} of {log} write-ahead log frames checkpointed: "
                    "another connection is reading the database file")
    return None
