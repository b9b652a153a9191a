"""Why the SQL store refuses a commit: a stale version, an unknown or duplicate case, an
idempotency key reused for another command, a value the database refused; and the claims
of case rows by commits that fire deadline rungs (``FOR UPDATE [SKIP LOCKED]``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from reviewflow.exceptions import (
    ConflictError,
    DuplicateCaseError,
    IdempotencyKeyReused,
    InputError,
    ReviewflowError,
    StoreError,
    UnknownCaseError,
)
from reviewflow.store import _schema as s
from reviewflow.store._campaigns import SqlCampaigns
from reviewflow.store._rows import CommitRows
from reviewflow.store.base import Commit
from reviewflow.store.rows import RungMark


def _fires_rungs(c: Commit) -> bool:
    return any(type(x) is RungMark for x in c.extras)


def _held_by_another(c: Commit) -> ConflictError:
    error = ConflictError(c.case.case_id, c.expected_version, None)
    error.args = (
        f"case {c.case.case_id!r} is being written by another writer (another sweeper has "
        "claimed it); nothing was written: reload the case and try again (a retry of the "
        "same step waits for the other writer)",
    )
    return error


#: One commit of a batch: its position in the batch, the commit and its rows.
_Todo = tuple[int, Commit, CommitRows]


class SqlConflicts(SqlCampaigns):
    """What stops a commit of a SQL store, and the rung firings' claims."""

    def _duplicate(self, campaign_id: str, case_id: str) -> DuplicateCaseError:
        return DuplicateCaseError(
            f"case {case_id!r} is already open in campaign {campaign_id!r}; "
            "use another id or fire events on the open case"
        )

    def _find_duplicate(self, conn: Connection, commits: Sequence[Commit]) -> ReviewflowError:
        wanted: dict[str, list[str]] = {}
        for c in commits:
            wanted.setdefault(c.case.campaign_id, []).append(c.case.case_id)
        existing: set[tuple[str, str]] = set()
        for campaign_id, ids in wanted.items():
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                existing |= {
                    (campaign_id, str(r[0])) for r in conn.execute(
                        sa.select(s.cases.c.case_id)
                        .where(s.cases.c.campaign_id == campaign_id)
                        .where(s.cases.c.case_id.in_(chunk))
                    )
                }
        for c in commits:
            if (c.case.campaign_id, c.case.case_id) in existing:
                return self._duplicate(c.case.campaign_id, c.case.case_id)
        return StoreError("a case could not be inserted: the database refused it (a duplicate?)")

    def _claim(self, conn: Connection, todo: Sequence[_Todo], *, skip: bool
               ) -> tuple[list[_Todo], dict[int, Exception], list[_Todo]]:
        """Lock the case rows of the rung firings in ``todo``; sort them into ready, refused
        (stale or unknown) and deferred (held by another writer, with ``skip``)."""
        wanted: dict[str, set[str]] = {}
        for _, c, _ in todo:
            if _fires_rungs(c):
                wanted.setdefault(c.case.campaign_id, set()).add(c.case.case_id)
        versions: dict[tuple[str, str], int] = {}
        locking = self.dialect != "sqlite"  # SQLite: this transaction holds the write lock
        lock = (" FOR UPDATE SKIP LOCKED" if skip else " FOR UPDATE") if locking else ""
        mark = self._mark
        for campaign_id, ids in wanted.items():
            ordered = sorted(ids)
            for start in range(0, len(ordered), 500):
                chunk = ordered[start:start + 500]
                params: tuple[Any, ...]
                if self._pg:
                    where, params = "= ANY(%s)", (campaign_id, chunk)
                else:
                    where = f"IN ({', '.join([mark] * len(chunk))})"
                    params = (campaign_id, *chunk)
                rows = conn.exec_driver_sql(
                    f"SELECT case_id, version FROM rf_cases WHERE campaign_id = {mark} "  # noqa: S608
                    f"AND case_id {where} ORDER BY case_id{lock}", params,
                )
                for case_id, version in rows:
                    versions[(campaign_id, str(case_id))] = int(version)
        ready: list[_Todo] = []
        refused: dict[int, Exception] = {}
        later: list[_Todo] = []
        for item in todo:
            i, c, _ = item
            if not _fires_rungs(c):
                ready.append(item)
                continue
            key = (c.case.campaign_id, c.case.case_id)
            version = versions.get(key)
            if version is None:
                if skip and locking:
                    later.append(item)
                else:
                    refused[i] = UnknownCaseError(
                        f"no case {c.case.case_id!r} in campaign {c.case.campaign_id!r}")
            elif version != c.expected_version:
                refused[i] = ConflictError(c.case.case_id, c.expected_version, version)
            else:
                versions[key] = c.case.version
                ready.append(item)
        return ready, refused, later

    def _stale(self, conn: Connection, c: Commit) -> ReviewflowError:
        row = conn.execute(
            sa.select(s.cases.c.version)
            .where(s.cases.c.campaign_id == c.case.campaign_id)
            .where(s.cases.c.case_id == c.case.case_id)
        ).first()
        if row is None:
            return UnknownCaseError(
                f"no case {c.case.case_id!r} in campaign {c.case.campaign_id!r}"
            )
        return ConflictError(c.case.case_id, c.expected_version, int(row[0]))

    def _idem_error(self, conn: Connection, c: Commit) -> ReviewflowError | None:
        i = s.idempotency.c
        row = conn.execute(
            sa.select(i.fingerprint, i.case_id, i.version)
            .where(i.campaign_id == c.case.campaign_id)
            .where(i.key == c.idempotency_key)
        ).first()
        if row is None:
            return None
        if row.fingerprint == (c.fingerprint or "") and row.case_id == c.case.case_id:
            # The same command won a race: the caller reloads and finds its replay.
            return ConflictError(c.case.case_id, c.expected_version, int(row.version))
        return IdempotencyKeyReused(
            f"idempotency key {c.idempotency_key!r} was first used for another command "
            f"(case {row.case_id!r}); use a new key for a new command"
        )

    def _explain(self, conn: Connection, c: Commit, exc: Exception) -> Exception:
        """Turn what stopped one commit into the error the caller gets (on a usable connection)."""
        if isinstance(exc, ReviewflowError):
            return exc
        if isinstance(exc, sa_exc.DataError):
            return InputError(f"case {c.case.case_id!r}: the database refused a value: {exc.orig}")
        if isinstance(exc, sa_exc.IntegrityError):
            if c.idempotency_key is not None:
                idem = self._idem_error(conn, c)
                if idem is not None:
                    return idem
            stale = self._stale(conn, c)
            if not isinstance(stale, ConflictError) or stale.actual != c.expected_version:
                return stale
            return StoreError(
                f"case {c.case.case_id!r}: the database refused the write: {exc.orig}"
            )
        return exc


class _CommitFailed(Exception):
    """Internal: carries a per-commit failure out of a transaction that must roll back."""

    def __init__(self, error: ReviewflowError | None, db_error: sa_exc.DBAPIError | None,
                 index: int) -> None:
        super().__init__(str(error or db_error))
        self.error = error
        self.db_error = db_error
        self.index = index
