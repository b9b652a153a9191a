"""The scrub after a vote says when it was not done, and the API can run it.

Review 1, findings 1 and 2: ``scrub()`` threw away the rows in which SQLite's checkpoint
and MySQL's ``OPTIMIZE`` report failure, so a scrub that removed nothing returned
normally; ``reviewflow ballots close`` said "not applied" for a vote it had closed when
the scrub failed; and a host closing votes through the API had no way to scrub.

Each test holds a real second connection on the database (a plain ``sqlite3`` reader, a
``pymysql``/``psycopg`` transaction that read the ballot table), as a report, a backup
tool or a web view would, and checks what the scrub says and that the vote is closed.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import reviewflow as rf
from reviewflow.store import Timeouts
from reviewflow.store.sql import SqlStore

from .test_ballot_secrecy import CAST, cast_in_known_order, vote_campaign


def _wal(store: SqlStore) -> Path:
    database = store.engine.url.database
    assert database is not None
    return Path(f"{database}-wal")


@contextmanager
def _sqlite_reader(store: SqlStore) -> Iterator[None]:
    """Another connection in a read transaction on the file (as a report would hold)."""
    database = store.engine.url.database
    assert database is not None
    other = sqlite3.connect(database, isolation_level=None)
    try:
        other.execute("BEGIN")
        other.execute("SELECT count(*) FROM rf_ballots").fetchone()
        yield
    finally:
        other.close()


def test_a_scrub_blocked_by_a_reader_on_sqlite_says_so_and_the_vote_is_closed(
    make_store: Any, new_id: Any,
) -> None:
    store = SqlStore(f"{make_store('sqlite').engine.url}?lock_timeout=0.5")
    try:
        campaign = vote_campaign(store, new_id("scrub"))
        cast_in_known_order(campaign)
        with _sqlite_reader(store):
            with pytest.raises(rf.ScrubIncomplete) as info:
                campaign.close_vote("s1", actor=CAST.organizer, scrub=True)
            assert _wal(store).stat().st_size > 0  # the casting order is still in the WAL
        exc = info.value
        assert exc.reason == "scrub_incomplete"
        assert exc.case_id == "s1"
        assert exc.result is not None
        assert exc.result.status == "closed"
        assert "the vote of case 's1' is closed" in str(exc)
        assert "reviewflow ballots scrub" in str(exc)
        assert "busy=1" in str(exc)
        assert isinstance(exc, rf.StoreError)
        assert campaign.case("s1").data.get("vote")  # the close committed
        with pytest.raises(rf.TransitionRefused):  # and is not done twice
            campaign.close_vote("s1", actor=CAST.organizer)
        assert campaign.scrub_ballots() is True  # the reader is gone: now it works
        assert _wal(store).stat().st_size == 0
        assert campaign.verify_votes() == []
    finally:
        store.close()


def test_closing_through_the_api_can_scrub_and_scrub_ballots_runs_it_alone(
    make_store: Any, new_id: Any,
) -> None:
    store = make_store("sqlite")
    assert isinstance(store, SqlStore)
    campaign = vote_campaign(store, new_id("scrub"))
    cast_in_known_order(campaign)
    assert _wal(store).stat().st_size > 0
    result = campaign.close_vote("s1", actor=CAST.organizer, scrub=True)
    assert result.status == "closed"
    assert _wal(store).stat().st_size == 0
    assert campaign.scrub_ballots() is True
    memory = vote_campaign(rf.MemoryStore(), new_id("scrub"))
    assert memory.scrub_ballots() is False  # nothing on disk to scrub


def test_a_scrub_blocked_on_mariadb_reports_the_optimize_error(
    mysql_url: str, new_id: Any,
) -> None:
    pymysql = pytest.importorskip("pymysql")
    store = SqlStore(mysql_url, timeouts=Timeouts(statement=2, lock=2))
    other = None
    try:
        campaign = vote_campaign(store, new_id("scrub"))
        cast_in_known_order(campaign)
        u = sa.make_url(mysql_url)
        other = pymysql.connect(host=u.host, port=u.port or 3306, user=u.username,
                                password=u.password or "", database=u.database)
        cur = other.cursor()
        cur.execute("BEGIN")
        cur.execute("SELECT count(*) FROM rf_ballots")  # a metadata lock until commit
        cur.fetchall()
        with pytest.raises(rf.ScrubIncomplete) as info:
            campaign.close_vote("s1", actor=CAST.organizer, scrub=True)
        assert info.value.result.status == "closed"
        assert "OPTIMIZE TABLE rf_ballots" in str(info.value)
        other.rollback()
        assert campaign.scrub_ballots() is True
    finally:
        if other is not None:
            other.close()
        store.close()


def test_a_scrub_blocked_on_postgresql_is_scrub_incomplete_not_not_applied(
    postgresql_url: str, new_id: Any,
) -> None:
    store = SqlStore(postgresql_url, timeouts=Timeouts(lock=1))
    other = sa.create_engine(store.engine.url.render_as_string(hide_password=False))
    try:
        campaign = vote_campaign(store, new_id("scrub"))
        cast_in_known_order(campaign)
        with other.connect() as conn:
            conn.exec_driver_sql("SELECT count(*) FROM rf_ballots").all()  # holds a lock
            with pytest.raises(rf.ScrubIncomplete) as info:
                campaign.close_vote("s1", actor=CAST.organizer, scrub=True)
            conn.rollback()
        assert "VACUUM FULL rf_ballots" in str(info.value)
        assert "not applied" not in str(info.value)
        assert isinstance(info.value.__cause__.__cause__, rf.StoreTimeout)
        assert info.value.result.status == "closed"
    finally:
        other.dispose()
        store.close()


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REVIEWFLOW_LANG": "en", "COLUMNS": "300"}
    for name in ("REVIEWFLOW_NOW", "REVIEWFLOW_DB", "REVIEWFLOW_CONFIG", "REVIEWFLOW_CAMPAIGN"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "reviewflow.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_ballots_close_says_the_vote_is_closed_when_the_scrub_fails_and_scrub_reruns_it(
    make_store: Any, new_id: Any, tmp_path: Path,
) -> None:
    store = make_store("sqlite")
    assert isinstance(store, SqlStore)
    campaign = vote_campaign(store, new_id("scrub"))
    cast_in_known_order(campaign)
    (tmp_path / "reviewflow.toml").write_text(
        f'campaign = "{campaign.id}"\nrehearsal = true\n\n[actors.{CAST.organizer.id}]\n'
        'name = "局党组"\nroles = ["organizer"]\n', encoding="utf-8")
    url = f"{store.engine.url}?lock_timeout=0.5"
    now = campaign.clock.now().isoformat()
    with _sqlite_reader(store):
        done = _cli(["--db", url, "--now", now, "ballots", "close", "s1",
                     "--actor", CAST.organizer.id], tmp_path)
        assert done.returncode == 1, done.stderr
        assert "vote of s1 closed" in done.stdout
        assert "IS closed" in done.stderr
        assert "scrub" in done.stderr
        assert "not applied" not in done.stdout + done.stderr
        again = _cli(["--db", url, "--now", now, "ballots", "scrub"], tmp_path)
        assert again.returncode == 1
        assert "scrub_incomplete" in again.stderr
    assert _wal(store).stat().st_size > 0
    assert campaign.case("s1").data.get("vote")
    done = _cli(["--db", url, "--now", now, "ballots", "scrub"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "removed" in done.stdout
    assert _wal(store).stat().st_size == 0
