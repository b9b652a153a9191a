"""The SQL store's commit path: the rows of a commit, new cases, and batches of commits in
one transaction (one statement per table, or a savepoint per commit when one fails),
with their extra rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from reviewflow._macs import with_macs
from reviewflow.exceptions import (
    ReviewflowError,
    StoreError,
)
from reviewflow.model import Case, EventRecord, canonical_data
from reviewflow.store import _schema as s
from reviewflow.store._conflicts import SqlConflicts, _CommitFailed, _fires_rungs, _held_by_another, _Todo
from reviewflow.store._extras import _EXTRA_BATCHES, _EXTRA_WRITERS, ExtraWriter
from reviewflow.store._rows import (
    CommitRows,
    check_id,
    dumps,
    pg_insert_rest,
    pg_update,
)
from reviewflow.store.base import Commit

#: Keys of Case.to_json() kept in their own columns rather than in the state document.
_COLUMN_KEYS = frozenset(
    {"campaign_id", "case_id", "stage", "version", "last_hash", "previous_case_id"}
)


class SqlCommits(SqlConflicts):
    """Writes of cases, events, outbox rows, idempotency keys and extra rows."""

    #: Per-store writers by extra type, consulted before :func:`register_extra`'s.
    extra_handlers: dict[type, ExtraWriter]
    #: Rung firings refused once because another writer held their case.
    _held: set[tuple[str, str, int]]

    @staticmethod
    def _state(case: Case) -> str:
        """Return the case's state document: what its own columns do not hold."""
        doc = {k: v for k, v in case.to_json().items() if k not in _COLUMN_KEYS}
        doc["format"] = s.FORMAT
        return dumps(doc, f"case {case.case_id!r}")

    def _case_row(self, case: Case) -> dict[str, Any]:
        """Return the case's row (its columns and state document) as a dict."""
        return {
            "campaign_id": case.campaign_id, "case_id": case.case_id, "stage": case.stage.value,
            "version": case.version, "last_hash": case.last_hash,
            "previous_case_id": case.previous_case_id, "state": self._state(case),
        }

    @staticmethod
    def _event_row(r: EventRecord) -> tuple[Any, ...]:
        return (
            r.campaign_id, r.case_id, r.seq, r.event, r.actor_id, r.role, r.at, r.from_stage,
            r.to_stage, r.reason, _data_text(r), r.prev_hash, r.hash,
        )

    def _rows(self, c: Commit) -> CommitRows:
        case = c.case
        update = (
            case.stage.value, case.version, case.last_hash, case.previous_case_id,
            self._state(case), case.campaign_id, case.case_id, c.expected_version,
        )
        event_row = self._event_row
        events = [event_row(r) for r in c.events]
        outbox = [] if not getattr(c, "outbox", True) else [
            (r.campaign_id, r.case_id, r.seq) for r in c.events
        ]
        idem = None
        if c.idempotency_key is not None:
            idem = {
                "campaign_id": case.campaign_id, "key": c.idempotency_key,
                "fingerprint": c.fingerprint or "", "case_id": case.case_id,
                "version": case.version,
            }
        return CommitRows(update, events, outbox, idem)

    def _write_extras(self, conn: Connection, commits: Sequence[Commit]) -> None:
        """Write the commits' extra rows, grouped by type (in one call per type if batched)."""
        groups: dict[type, list[Any]] = {}
        for c in commits:
            for extra in c.extras:
                groups.setdefault(type(extra), []).append(extra)
        for kind, rows in groups.items():
            own = self.extra_handlers.get(kind)
            batch = None if own is not None else _EXTRA_BATCHES.get(kind)
            if batch is not None:
                batch(self, conn, rows)
                continue
            writer = own or _EXTRA_WRITERS.get(kind)
            if writer is None:
                raise StoreError(
                    f"no SQL writer is registered for {kind.__qualname__} rows; "
                    "the feature that makes them must call "
                    "reviewflow.store.sql.register_extra() (nothing was written)"
                )
            for extra in rows:
                writer(self, conn, extra)

    def insert_cases(self, commits: Sequence[Commit]) -> None:
        """Write new cases with their opening events, all or none, in batched statements."""
        if not commits:
            return
        if self.audit_key is not None:
            commits = with_macs(commits, self.audit_key)
        seen: set[tuple[str, str]] = set()
        for c in commits:
            check_id(c.case.campaign_id, "campaign id")
            check_id(c.case.case_id, "case id")
            key = (c.case.campaign_id, c.case.case_id)
            if key in seen:
                raise self._duplicate(*key)
            seen.add(key)
        rows = [self._rows(c) for c in commits]

        def work(conn: Connection) -> None:
            self._require_campaigns(conn, {c.case.campaign_id for c in commits})
            sp = conn.begin_nested()
            try:
                conn.execute(self._insert_case, [r.case for r in rows])
            except sa_exc.IntegrityError:
                sp.rollback()
                raise self._find_duplicate(conn, commits) from None
            sp.commit()
            self._insert_rest(conn, rows)
            self._write_extras(conn, commits)

        self._run_write(work)

    def _insert_rest(self, conn: Connection, rows: Sequence[CommitRows]) -> None:
        events = [e for r in rows for e in r.events]
        if events:
            conn.exec_driver_sql(self._sql_events, events)
        outbox = [o for r in rows for o in r.outbox]
        if outbox:
            conn.exec_driver_sql(self._sql_outbox, outbox)
        idem = [r.idem for r in rows if r.idem is not None]
        if idem:
            conn.execute(self._insert_idem, idem)

    def commit(self, commits: Sequence[Commit]) -> list[Exception | None]:
        """Apply each commit atomically; return, per commit, None or the error that stopped it.

        The whole batch is one transaction. It is first written with one statement per
        table; if any commit in it fails, that is undone and each commit is written in
        its own savepoint, so that the failing ones change nothing and the others apply.
        """
        if not commits:
            return []
        if self.audit_key is not None:
            commits = with_macs(commits, self.audit_key)
        results: list[Exception | None] = [None] * len(commits)
        todo: list[tuple[int, Commit, CommitRows]] = []
        for i, c in enumerate(commits):
            try:
                todo.append((i, c, self._rows(c)))
            except ReviewflowError as exc:
                results[i] = exc
        if not todo:
            return results
        if not any(_fires_rungs(c) for _, c, _ in todo):
            self._commit_todo(todo, results, claim=None)
            return results
        # Rung firings claim their cases. Those another writer holds are skipped and
        # refused with a ConflictError the first time (the sweep goes on with the other
        # cases and retries them later); a retry of the same step waits for the holder.
        later = self._commit_todo(todo, results, claim="skip" if self.skip_locked else "wait")
        if not later:
            return results
        wait: list[_Todo] = []
        with self._lock:
            if len(self._held) > 100_000:
                self._held.clear()
            for item in later:
                i, c, _ = item
                key = (c.case.campaign_id, c.case.case_id, c.expected_version)
                if key in self._held:
                    self._held.discard(key)
                    wait.append(item)
                else:
                    self._held.add(key)
                    results[i] = _held_by_another(c)
        if wait:
            self._commit_todo(wait, results, claim="wait")
        return results

    def _commit_todo(self, todo: Sequence[_Todo], results: list[Exception | None],
                     claim: str | None) -> list[_Todo]:
        """Write ``todo`` in one transaction, setting ``results``; return the commits deferred.

        ``claim`` (for rung firings): "skip" locks their case rows with SKIP LOCKED and
        defers those another writer holds; "wait" locks them, waiting (in case-id order,
        so two sweepers cannot deadlock). Either way a stale version is refused before
        anything is written.
        """
        outcome: dict[int, Exception | None] = {}
        deferred: list[_Todo] = []

        def work(conn: Connection) -> None:
            outcome.clear()
            deferred.clear()
            ready: Sequence[_Todo] = todo
            if claim is not None:
                ready, refused, later = self._claim(conn, todo, skip=claim == "skip")
                outcome.update(refused)
                deferred.extend(later)
            if not ready:
                return
            if len(ready) == 1:
                i, c, rows = ready[0]
                try:
                    self._apply_one(conn, c, rows)
                except (sa_exc.IntegrityError, sa_exc.DataError) as exc:
                    raise _CommitFailed(None, exc, i) from None
                except ReviewflowError as exc:
                    raise _CommitFailed(exc, None, i) from None
                outcome[i] = None
                return
            if self._apply_bulk(conn, ready):
                outcome.update((i, None) for i, _, _ in ready)
                return
            for i, c, rows in ready:
                sp = conn.begin_nested()
                try:
                    self._apply_one(conn, c, rows)
                except sa_exc.OperationalError:
                    raise
                except Exception as exc:
                    sp.rollback()
                    outcome[i] = self._explain(conn, c, exc)
                else:
                    sp.commit()
                    outcome[i] = None

        try:
            self._run_write(work)
        except _CommitFailed as failed:  # one commit failed: the transaction rolled back
            commit = next(c for i, c, _ in todo if i == failed.index)
            error: Exception | None = failed.error
            if failed.db_error is not None:  # the transaction is gone: explain afresh
                with self._translated(), self._engine.connect() as conn:
                    error = self._explain(conn, commit, failed.db_error)
            outcome[failed.index] = error
        for i, error in outcome.items():
            results[i] = error
        return list(deferred)

    def _apply_bulk(self, conn: Connection, todo: Sequence[tuple[int, Commit, CommitRows]]) -> bool:
        """Write a whole batch with one statement per table; False (nothing written) on a failure."""
        if not self._engine.dialect.supports_sane_multi_rowcount:
            return False
        sp = conn.begin_nested()
        try:
            all_rows = [rows for _, _, rows in todo]
            if self._pg:
                updated = pg_update(conn, all_rows)
            else:
                updated = conn.exec_driver_sql(
                    self._sql_update, [r.update for r in all_rows]
                ).rowcount
            if updated != len(todo):
                sp.rollback()
                return False
            if self._pg:
                pg_insert_rest(conn, all_rows)
                idem = [r.idem for r in all_rows if r.idem is not None]
                if idem:
                    conn.execute(self._insert_idem, idem)
            else:
                self._insert_rest(conn, all_rows)
            self._write_extras(conn, [c for _, c, _ in todo])
        except sa_exc.OperationalError:
            raise
        except Exception:
            sp.rollback()
            return False
        sp.commit()
        return True

    def _apply_one(self, conn: Connection, c: Commit, rows: CommitRows) -> None:
        if self._sqlite:
            if self._driver(conn, self._sql_update, rows.update) != 1:
                raise self._stale(conn, c)
            if rows.events:
                self._driver(conn, self._sql_events, rows.events, many=True)
            if rows.outbox:
                self._driver(conn, self._sql_outbox, rows.outbox, many=True)
            if rows.idem is not None:
                idem = rows.idem
                self._driver(conn, self._sql_idem, tuple(idem[k] for k in self._idem_keys))
            if c.extras:
                self._write_extras(conn, [c])
            return
        result = conn.exec_driver_sql(self._sql_update, rows.update)
        if result.rowcount != 1:
            raise self._stale(conn, c)
        if self._pg:
            pg_insert_rest(conn, [rows])
        else:
            if rows.events:
                conn.exec_driver_sql(self._sql_events, rows.events)
            if rows.outbox:
                conn.exec_driver_sql(self._sql_outbox, rows.outbox)
        if rows.idem is not None:
            conn.execute(self._insert_idem, rows.idem)
        if c.extras:
            self._write_extras(conn, [c])


def _data_text(r: EventRecord) -> str:
    """Return the stored text of a record's data: its canonical JSON, the text its hash
    covers (the same as :func:`dumps` writes; remembered from sealing where it can be)."""
    try:
        return canonical_data(r.data)
    except (TypeError, ValueError, RecursionError):
        return dumps(dict(r.data), f"event {r.event_id!r} data")  # raises the InputError
