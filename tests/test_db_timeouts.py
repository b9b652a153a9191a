"""Every wait for a database is bounded: connect, statement, lock, idle transaction, reply.

The limits reach each server (PostgreSQL settings, MariaDB/MySQL session variables,
SQLite's busy timeout); a statement or lock wait that runs out, and a server that
stops answering, end the command with :class:`StoreTimeout` (a reason code, the
server, the limit, what to do) instead of a hang.

The frozen-server tests start a PostgreSQL server of their own (``throwaway_postgres``
in ``tests/conftest.py``), freeze every server process with SIGSTOP in the middle of a
CLI import and of a stream of API commands, and wait (60 s at most: a hang detector,
not a speed figure) for the command to end with the error; then they thaw the server.
MariaDB likewise, on a throwaway ``mariadbd`` (``throwaway_mariadb``: another port and
data directory; never the machine's shared server); the client-side reply limit is also
tested on the shared server with a statement that sleeps longer than the limit.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pendulum
import pytest
import sqlalchemy as sa

import reviewflow as rf
from reviewflow.exceptions import InputError, StoreError, StoreTimeout
from reviewflow.policy_file import DEFAULT_POLICY_FILE
from reviewflow.store import Timeouts, open_store
from reviewflow.store._engine import upgrade
from reviewflow.store.sql import SqlStore
from reviewflow.testing import Cast

FORK = multiprocessing.get_context("fork")
SERVERS = pytest.mark.parametrize("kind", ["postgresql", "mysql"])
#: The longest a test waits for a command against a frozen server (a hang detector).
HANG = 60.0
SHORT = "statement_timeout=2&reply_timeout=3&connect_timeout=3&lock_timeout=2"


def _with(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


# ---------------------------------------------------------------------- the settings


def _server_settings(store: SqlStore) -> dict[str, str]:
    with store.reading() as conn:
        if store.dialect == "postgresql":
            names = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
            found = {n: str(conn.exec_driver_sql(f"SHOW {n}").scalar()) for n in names}
            client = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
            found.update({n: client.get(n, "") for n in ("keepalives", "keepalives_idle",
                                                          "tcp_user_timeout")})
            return found
        row = conn.exec_driver_sql(
            "SELECT @@max_statement_time, @@innodb_lock_wait_timeout, "
            "@@idle_transaction_timeout").one()
        return {"max_statement_time": str(row[0]), "innodb_lock_wait_timeout": str(row[1]),
                "idle_transaction_timeout": str(row[2])}


@SERVERS
def test_the_limits_reach_the_server_and_the_url_wins(kind: str, request: Any) -> None:
    url = request.getfixturevalue(f"{kind}_url")
    store = SqlStore(url)
    defaults = _server_settings(store)
    store.close()
    given = Timeouts(statement=7, lock=3, idle_in_transaction=11)
    store = SqlStore(_with(url, "lock_timeout=4"), timeouts=given)
    chosen = _server_settings(store)
    assert "lock_timeout" not in store.url  # reviewflow's parameters do not reach the driver
    store.close()
    if kind == "postgresql":
        assert defaults["statement_timeout"] == "1min"
        assert defaults["lock_timeout"] == "30s"
        assert defaults["idle_in_transaction_session_timeout"] == "5min"
        assert (defaults["keepalives"], defaults["keepalives_idle"]) == ("1", "30")
        assert defaults["tcp_user_timeout"] == "90000"  # the reply limit, in ms
        assert chosen["statement_timeout"] == "7s"
        assert chosen["lock_timeout"] == "4s"
        assert chosen["idle_in_transaction_session_timeout"] == "11s"
    else:
        assert float(defaults["max_statement_time"]) == 60
        assert defaults["innodb_lock_wait_timeout"] == "30"
        assert defaults["idle_transaction_timeout"] == "300"
        assert float(chosen["max_statement_time"]) == 7
        assert chosen["innodb_lock_wait_timeout"] == "4"
        assert chosen["idle_transaction_timeout"] == "11"


def test_sqlite_waits_lock_timeout_for_a_busy_file(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}", timeouts=Timeouts(lock=2.5))
    assert isinstance(store, SqlStore)
    with store.reading() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 2500
    store.close()
    store = SqlStore(f"sqlite:///{tmp_path / 'b.db'}?lock_timeout=1.5")
    with store.reading() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1500
    store.close()


@pytest.mark.parametrize("query", [
    "statement_timeout=soon", "reply_timeout=-1", "lock_timeout=inf", "connect_timeout=1e12",
])
def test_a_bad_limit_in_the_url_is_refused(query: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=query.split("=")[0]) as info:
        SqlStore(f"sqlite:///{tmp_path / 'a.db'}?{query}")
    assert "seconds" in str(info.value)
    assert not (tmp_path / "a.db").exists()


def test_timeouts_refuse_bad_values_and_read_the_environment_form() -> None:
    with pytest.raises(InputError, match="statement_timeout"):
        Timeouts(statement=-1)
    with pytest.raises(InputError, match="reply_timeout"):
        Timeouts(reply=float("nan"))
    with pytest.raises(InputError, match="unknown timeout busy"):
        Timeouts.from_text("busy=3")
    with pytest.raises(InputError, match="name=seconds"):
        Timeouts.from_text("30")
    t = Timeouts.from_text("statement_timeout=5, lock_timeout=0")
    assert (t.statement, t.lock, t.reply_seconds) == (5.0, 0.0, 35.0)
    assert Timeouts(statement=0).reply_seconds == 0.0


@pytest.mark.parametrize(("given", "name"), [
    ({"statement": "abc"}, "statement_timeout"), ({"statement": None}, "statement_timeout"),
    ({"lock": True}, "lock_timeout"), ({"connect": False}, "connect_timeout"),
    ({"idle_in_transaction": [1]}, "idle_in_transaction_timeout"),
    ({"reply": "x"}, "reply_timeout"), ({"reply": True}, "reply_timeout"),
    ({"lock": float("inf")}, "lock_timeout"),
])
def test_timeouts_refuse_a_value_that_is_not_seconds_with_a_reason(
    given: dict[str, Any], name: str,
) -> None:
    """Review 1, finding 7: ``float`` converted first (ValueError, TypeError, True as 1 s)."""
    with pytest.raises(InputError, match=name) as info:
        Timeouts(**given)
    assert info.value.reason == "bad_timeout"
    assert "number of seconds" in str(info.value)


def test_lock_timeout_0_lifts_the_lock_wait_limit_on_mariadb(mysql_url: str) -> None:
    """Review 1, finding 8: 0 ("no limit") left InnoDB at the server's 50 s."""
    store = SqlStore(mysql_url, timeouts=Timeouts(lock=0, statement=0))
    try:
        # the largest value InnoDB takes: 100000000 s on MariaDB, 1073741824 s on MySQL
        assert int(_server_settings(store)["innodb_lock_wait_timeout"]) >= 100_000_000
    finally:
        store.close()


# ---------------------------------------------------------------------- limits that run out


@SERVERS
def test_a_statement_longer_than_the_limit_is_a_statement_timeout(kind: str, request: Any) -> None:
    url = request.getfixturevalue(f"{kind}_url")
    store = SqlStore(_with(url, "statement_timeout=1"))
    sleep = "SELECT pg_sleep(5)" if kind == "postgresql" else "SELECT SLEEP(5)"
    with pytest.raises(StoreTimeout) as info, store.reading() as conn:
        conn.exec_driver_sql(sleep).all()
    store.close()
    error = info.value
    assert error.reason == "statement_timeout"
    assert "[statement_timeout]" in str(error)
    assert "1 s" in str(error)
    assert "raise statement_timeout" in str(error)
    assert error.url == store.url
    assert isinstance(error, StoreError)


@SERVERS
def test_a_lock_held_longer_than_the_limit_is_a_lock_timeout(kind: str, request: Any,
                                                             kit: Any) -> None:
    url = request.getfixturevalue(f"{kind}_url")
    store = SqlStore(_with(url, "lock_timeout=1"))
    cid = kit.new_campaign_id()
    store.setup_campaign(cid, "{}")
    store.insert_cases([kit.opening(cid, "a")])
    case = store.get(cid, "a")
    assert case is not None
    holder = SqlStore(url)
    try:
        with holder.transaction() as conn:
            conn.execute(sa.text("UPDATE rf_cases SET stage = stage WHERE campaign_id = :c"),
                         {"c": cid})
            with pytest.raises(StoreTimeout) as info:
                store.commit([kit.step(case)])
    finally:
        holder.close()
    assert info.value.reason == "lock_timeout"
    assert "another transaction holds it" in str(info.value)
    assert store.commit([kit.step(case)]) == [None]  # nothing was half-written
    store.close()


def test_mariadb_that_does_not_reply_in_time_is_no_reply(mysql_url: str) -> None:
    """The client-side reply limit on MySQL/MariaDB (PyMySQL's read timeout)."""
    store = SqlStore(_with(mysql_url, "statement_timeout=0&reply_timeout=1"))
    started = time.monotonic()
    with pytest.raises(StoreTimeout) as info, store.reading() as conn:
        conn.exec_driver_sql("SELECT SLEEP(4)").all()
    waited = time.monotonic() - started
    store.close()
    assert info.value.reason == "no_reply"
    assert "within 1 s (reply_timeout)" in str(info.value)
    assert waited < HANG


# ---------------------------------------------------------------------- a frozen server


@pytest.fixture(scope="module")
def frozen_pg(throwaway_postgres: Callable[..., Any]) -> Any:
    """A throwaway PostgreSQL of this module's own, to freeze."""
    return throwaway_postgres(durable=False)


def _in_transaction(url: str) -> Callable[[], bool]:
    """Return a probe: True when another client is inserting into reviewflow's tables."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")

    def probe() -> bool:
        with engine.connect() as conn:
            return bool(conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND xact_start IS NOT NULL AND query LIKE 'INSERT INTO rf_%%'").scalar())

    probe.engine = engine  # type: ignore[attr-defined]
    return probe


def _run_cli(*args: str, cwd: Path, **extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "REVIEWFLOW_LANG": "en", "COLUMNS": "300"}
    for name in ("REVIEWFLOW_NOW", "REVIEWFLOW_DB", "REVIEWFLOW_CONFIG", "REVIEWFLOW_CAMPAIGN"):
        env.pop(name, None)
    env.update(extra)
    return subprocess.Popen([sys.executable, "-m", "reviewflow.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_frozen_postgresql_ends_a_cli_import_with_no_reply(frozen_pg: Any,
                                                             tmp_path: Path) -> None:
    url = frozen_pg.url  # the limits from the environment, this time
    limits = {"REVIEWFLOW_DB_TIMEOUTS": SHORT.replace("&", ",")}
    shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.toml")
    rows = ["编号,党组织,书记"] + [f"b{i:05d},第{i}支部,书记{i}" for i in range(20_000)]
    (tmp_path / "big.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    init = _run_cli("--db", url, "init", "policy.toml", "--rehearsal", cwd=tmp_path, **limits)
    made = init.communicate(timeout=HANG)
    assert init.returncode == 0, made
    probe = _in_transaction(frozen_pg.url)
    proc = _run_cli("--db", url, "--now", "2016-01-05T09:00+08:00", "cases", "import",
                    "big.csv", cwd=tmp_path, **limits)
    frozen: list[int] = []
    try:
        deadline = time.monotonic() + HANG
        while not probe() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the import ended before it could be frozen"
        frozen = frozen_pg.pause()
        started = time.monotonic()
        try:
            out, err = proc.communicate(timeout=HANG)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"the CLI still waited {HANG:.0f} s after the server froze")
        waited = time.monotonic() - started
    finally:
        frozen_pg.resume(frozen)
        probe.engine.dispose()  # type: ignore[attr-defined]
    print(f"\nFIGURE cli import ended {waited:.1f} s after the server froze ({SHORT})")
    assert proc.returncode == 2, (out, err)
    assert "Traceback" not in err
    assert f"no reply from postgresql+psycopg://postgres@127.0.0.1:{frozen_pg.port}" in err
    assert "within 3 s (reply_timeout)" in err
    assert "[no_reply]" in err
    # All or nothing: the import's transaction did not commit half.
    engine = sa.create_engine(frozen_pg.url)
    with engine.connect() as conn:
        cases = conn.exec_driver_sql("SELECT count(*) FROM rf_cases").scalar()
    engine.dispose()
    assert cases in (0, 20_000)


def _stream(url: str, cid: str, out: Any, ready: Any) -> None:
    """Open cases one by one until the store fails; send what the failure was."""
    clock = rf.FrozenClock(pendulum.datetime(2016, 1, 5, 9, tz="Asia/Shanghai"))
    campaign = rf.Campaign(rf.Policy.default(year=2016), clock=clock, store=url,
                           campaign_id=cid)
    cast = Cast.default()
    n = 0
    try:
        while True:
            case_id = f"s{n}"
            campaign.open_case(case_id, organization=f"{case_id}支部",
                               secretary=cast.secretary(case_id))
            n += 1
            if n == 20:
                ready.set()
    except BaseException as exc:
        out.send((type(exc).__name__, getattr(exc, "reason", None), str(exc), n))


def test_a_frozen_postgresql_ends_a_stream_of_api_commands_with_store_timeout(
    frozen_pg: Any, kit: Any,
) -> None:
    url = _with(frozen_pg.url, SHORT)
    theirs, ours = FORK.Pipe(duplex=False)
    ready = FORK.Event()
    writer = FORK.Process(target=_stream, args=(url, kit.new_campaign_id(), ours, ready),
                          daemon=True)
    writer.start()
    frozen: list[int] = []
    try:
        assert ready.wait(HANG), "the writer did not get going"
        frozen = frozen_pg.pause()
        assert theirs.poll(HANG), f"the writer still waited {HANG:.0f} s after the server froze"
        name, reason, message, opened = theirs.recv()
    finally:
        frozen_pg.resume(frozen)
        writer.join(HANG)
        if writer.is_alive():
            writer.kill()
    assert (name, reason) == ("StoreTimeout", "no_reply"), message
    assert opened >= 20
    assert f"127.0.0.1:{frozen_pg.port}" in message
    assert "reply_timeout" in message


def test_a_frozen_postgresql_refuses_a_new_connection_within_connect_timeout(
    frozen_pg: Any,
) -> None:
    SqlStore(frozen_pg.url).close()  # the schema exists
    frozen = frozen_pg.pause()
    result: list[BaseException] = []

    def open_it() -> None:
        try:
            SqlStore(_with(frozen_pg.url, SHORT)).close()
        except BaseException as exc:
            result.append(exc)

    opener = threading.Thread(target=open_it, daemon=True)
    try:
        opener.start()
        opener.join(HANG)
    finally:
        frozen_pg.resume(frozen)
    assert not opener.is_alive(), f"still connecting {HANG:.0f} s after the server froze"
    [error] = result
    assert isinstance(error, StoreTimeout), error
    assert error.reason == "connect_timeout"
    assert "could not connect to" in str(error)
    assert "within 3 s (connect_timeout)" in str(error)


def test_a_bad_limit_in_the_environment_is_a_usage_error(tmp_path: Path) -> None:
    proc = _run_cli("--db", f"sqlite:///{tmp_path / 'a.db'}", "status", cwd=tmp_path,
                    REVIEWFLOW_DB_TIMEOUTS="statement_timeout=soon")
    out, err = proc.communicate(timeout=HANG)
    assert proc.returncode == 2, (out, err)
    assert "statement_timeout=soon in REVIEWFLOW_DB_TIMEOUTS" in err
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def frozen_mariadb(throwaway_mariadb: Callable[[], Any]) -> Any:
    """A throwaway MariaDB of this module's own (another port and data directory), to freeze."""
    return throwaway_mariadb()


def test_a_frozen_mariadb_ends_a_stream_of_api_commands_with_store_timeout(
    frozen_mariadb: Any, kit: Any,
) -> None:
    url = _with(frozen_mariadb.url, SHORT)
    theirs, ours = FORK.Pipe(duplex=False)
    ready = FORK.Event()
    writer = FORK.Process(target=_stream, args=(url, kit.new_campaign_id(), ours, ready),
                          daemon=True)
    writer.start()
    frozen: list[int] = []
    try:
        assert ready.wait(HANG), "the writer did not get going"
        frozen = frozen_mariadb.pause()
        assert theirs.poll(HANG), f"the writer still waited {HANG:.0f} s after the server froze"
        name, reason, message, opened = theirs.recv()
    finally:
        frozen_mariadb.resume(frozen)
        writer.join(HANG)
        if writer.is_alive():
            writer.kill()
    assert (name, reason) == ("StoreTimeout", "no_reply"), message
    assert opened >= 20
    assert f"127.0.0.1:{frozen_mariadb.port}" in message
    assert "reply_timeout" in message


@SERVERS
def test_an_upgrade_runs_without_statement_and_reply_limits(
    kind: str, fresh_url: Callable[[str], str],
) -> None:
    """A revision may rebuild large tables: ``upgrade`` lifts the statement limit."""
    seen: dict[str, list[str]] = {"upgrade": [], "store": []}
    phase = ["upgrade"]
    query = ("SHOW statement_timeout" if kind == "postgresql"
             else "SELECT @@max_statement_time")

    def note(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(query)
        seen[phase[0]].append(str(cur.fetchone()[0]))
        cur.close()

    url = fresh_url(kind)
    sa.event.listen(sa.pool.Pool, "checkout", note)
    try:
        upgrade(url)
        phase[0] = "store"
        store = SqlStore(url)
        with store.reading() as conn:
            conn.exec_driver_sql("SELECT 1")
        store.close()
    finally:
        sa.event.remove(sa.pool.Pool, "checkout", note)
    assert seen["upgrade"]
    assert seen["store"]
    assert all(float(v.rstrip("s")) == 0 for v in seen["upgrade"]), seen  # no limit
    assert all(v == "1min" or (v[0].isdigit() and float(v) == 60) for v in seen["store"]), seen
