"""Shared fixtures: real databases for the store tests, and a kit to build commits.

PostgreSQL and MySQL/MariaDB URLs come from ``REVIEWFLOW_TEST_POSTGRES`` and
``REVIEWFLOW_TEST_MYSQL``. Each test run makes its own schema (PostgreSQL) or
database (MySQL) with a random name and drops it at the end. An unreachable
server skips its tests with the reason shown, unless ``REVIEWFLOW_REQUIRE_DB=1``,
where it fails them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reviewflow.model import GENESIS_HASH, Actor, Case, EventRecord, Stage
from reviewflow.store.base import Commit

POSTGRES_URL = os.environ.get(
    "REVIEWFLOW_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("REVIEWFLOW_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test")
REQUIRE_DB = os.environ.get("REVIEWFLOW_REQUIRE_DB") == "1"

#: Backends of the contract suite; "memory" needs no server.
BACKENDS = ("memory", "sqlite", "postgresql", "mysql")


def _unreachable(kind: str, url: str, error: BaseException) -> None:
    shown = sa.make_url(url).render_as_string(hide_password=True)
    message = (
        f"{kind} is not reachable at {shown} ({type(error).__name__}: "
        f"{str(error).splitlines()[0] if str(error) else ''}); "
        f"set REVIEWFLOW_TEST_{'POSTGRES' if kind == 'PostgreSQL' else 'MYSQL'} to a server"
    )
    if REQUIRE_DB:
        pytest.fail(f"{message} (REVIEWFLOW_REQUIRE_DB=1)")
    pytest.skip(message)


class DatabaseFactory:
    """Make fresh, empty databases on one server; drop them all at the end of the run."""

    def __init__(self, kind: str, admin_url: str) -> None:
        self.kind = kind
        self.admin_url = sa.make_url(admin_url)
        self.made: list[str] = []
        self._error: BaseException | None = None
        self._admin: sa.Engine | None = None

    def _engine(self) -> sa.Engine:
        if self._error is not None:
            _unreachable(self.kind, str(self.admin_url), self._error)
        if self._admin is None:
            args = {"connect_timeout": 3}
            engine = sa.create_engine(self.admin_url, connect_args=args,
                                      isolation_level="AUTOCOMMIT")
            try:
                with engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
            except Exception as exc:
                engine.dispose()
                self._error = exc
                _unreachable(self.kind, self.admin_url.render_as_string(False), exc)
            self._admin = engine
        return self._admin

    def new(self) -> str:
        """Return the URL of a new, empty schema (PostgreSQL) or database (MySQL)."""
        engine = self._engine()
        name = f"rf_test_{secrets.token_hex(4)}"
        with engine.connect() as conn:
            if self.kind == "PostgreSQL":
                conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
            else:
                conn.execute(sa.text(
                    f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                ))
        self.made.append(name)
        if self.kind == "PostgreSQL":
            url = self.admin_url.update_query_dict({"options": f"-csearch_path={name}"})
            return url.render_as_string(False)
        return self.admin_url.set(database=name).render_as_string(False)

    def drop_all(self) -> None:
        """Drop every schema or database this factory made."""
        if self._admin is None:
            return
        with self._admin.connect() as conn:
            for name in self.made:
                if self.kind == "PostgreSQL":
                    conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
                else:
                    conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        self._admin.dispose()


@pytest.fixture(scope="session")
def postgresql_factory() -> Iterator[DatabaseFactory]:
    """Make fresh PostgreSQL schemas (skips or fails when the server is unreachable)."""
    factory = DatabaseFactory("PostgreSQL", POSTGRES_URL)
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def mysql_factory() -> Iterator[DatabaseFactory]:
    """Make fresh MySQL/MariaDB databases (skips or fails when the server is unreachable)."""
    factory = DatabaseFactory("MySQL", MYSQL_URL)
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def postgresql_url(postgresql_factory: DatabaseFactory) -> str:
    """A PostgreSQL schema shared by this run's tests (they use their own campaign ids)."""
    return postgresql_factory.new()


@pytest.fixture(scope="session")
def mysql_url(mysql_factory: DatabaseFactory) -> str:
    """A MySQL/MariaDB database shared by this run's tests (own campaign ids per test)."""
    return mysql_factory.new()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file of this test's own."""
    return f"sqlite:///{tmp_path / 'reviewflow.db'}"


@pytest.fixture
def fresh_url(
    request: pytest.FixtureRequest, tmp_path: Path,
) -> Callable[[str], str]:
    """Return a function giving the URL of a new, empty database of a kind."""
    counter = iter(range(1000))

    def make(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / f'fresh{next(counter)}.db'}"
        name = "postgresql_factory" if kind == "postgresql" else "mysql_factory"
        factory: DatabaseFactory = request.getfixturevalue(name)
        return factory.new()

    return make


@pytest.fixture
def db_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """The URL for a parametrized ``kind`` (indirect): sqlite, postgresql or mysql."""
    kind = request.param
    if kind == "sqlite":
        return sqlite_url
    return str(request.getfixturevalue(f"{kind}_url"))


# ---------------------------------------------------------------------- commits


class Kit:
    """Build cases and commits by hand, without the engine (for store tests)."""

    secretary = Actor("zhang", "张三", roles={"secretary"})

    @staticmethod
    def new_campaign_id() -> str:
        """Return a campaign id no other test uses."""
        return f"cmp-{secrets.token_hex(6)}"

    @staticmethod
    def opening(campaign_id: str, case_id: str, **data: Any) -> Commit:
        """Return the commit that opens a case with one sealed ``open`` event."""
        record = EventRecord(
            campaign_id=campaign_id, case_id=case_id, seq=1, event="open", actor_id="bureau",
            role="organizer", at="2016-01-04T09:00:00+08:00", from_stage=None,
            to_stage=Stage.RESEARCH.value, data={"organization": "第一中学党支部"},
            prev_hash=GENESIS_HASH,
        ).sealed()
        case = Case(campaign_id, case_id, "第一中学党支部", Kit.secretary, Stage.RESEARCH, 1,
                    record.hash, dict(data))
        return Commit(case=case, expected_version=0, events=(record,))

    @staticmethod
    def step(
        case: Case, n: int = 1, *, key: str | None = None, fingerprint: str | None = None,
        extras: tuple[Any, ...] = (), **data: Any,
    ) -> Commit:
        """Return a commit adding ``n`` chained events to ``case`` (a snapshot it copies)."""
        new = case.copy()
        expected = case.version
        records = []
        prev = case.last_hash
        for i in range(n):
            record = EventRecord(
                campaign_id=case.campaign_id, case_id=case.case_id, seq=expected + i + 1,
                event="note", actor_id="li", role="guidance_group",
                at="2016-01-05T10:00:00+08:00", from_stage=case.stage.value,
                to_stage=case.stage.value, reason=None,
                data={"n": expected + i + 1, "文本": "同意"}, prev_hash=prev,
            ).sealed()
            records.append(record)
            prev = record.hash
        new.version = expected + n
        new.last_hash = prev
        new.data.update(data)
        new.data["count"] = int(new.data.get("count", 0)) + n
        return Commit(case=new, expected_version=expected, events=tuple(records),
                      idempotency_key=key, fingerprint=fingerprint, extras=extras)


@pytest.fixture
def kit() -> type[Kit]:
    """The commit-building kit."""
    return Kit


# ---------------------------------------------------------------------- throwaway servers
#
# Tests that freeze, kill or restart a database server get one of their own, never the
# machine's: ``throwaway_postgres`` runs initdb and pg_ctl from /usr/lib/postgresql/*/bin
# (or $PGBIN) in a temporary directory, on a free loopback port. Run as root, the server
# runs as the ``postgres`` user (PostgreSQL refuses root). ``throwaway_mariadb`` does the
# same with mariadb-install-db and mariadbd (as the ``mysql`` user). Without the binaries
# the tests skip with the reason shown, or fail under REVIEWFLOW_REQUIRE_DB=1.


def _no_server(message: str) -> None:
    if REQUIRE_DB:
        pytest.fail(f"{message} (REVIEWFLOW_REQUIRE_DB=1)")
    pytest.skip(message)


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    """True when ``pid`` runs and is not a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def _children(pid: int) -> list[int]:
    """Return the pids whose parent is ``pid`` (a postmaster's backends and workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def pg_binaries() -> Path | None:
    """Return the directory holding initdb, pg_ctl and postgres, or None."""
    candidates = [Path(os.environ["PGBIN"])] if os.environ.get("PGBIN") else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for candidate in candidates:
        if all((candidate / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return candidate
    return None


class ThrowawayPostgres:
    """A PostgreSQL server of one test module's own, in a temporary directory.

    ``url`` is a SQLAlchemy URL to its ``postgres`` database. ``pause()`` and
    ``resume()`` freeze and thaw every server process (SIGSTOP/SIGCONT), ``kill9()``
    kills the postmaster, ``restart()`` starts it again, ``stop()`` ends it and removes
    the directory.
    """

    def __init__(self, *, durable: bool = True) -> None:
        import pwd
        import shutil
        import subprocess
        import tempfile
        import time

        self._subprocess, self._time = subprocess, time
        pgbin = pg_binaries()
        if pgbin is None:
            _no_server("no PostgreSQL binaries (initdb, pg_ctl, postgres) in "
                       "/usr/lib/postgresql/*/bin or $PGBIN: install the postgresql package")
        assert pgbin is not None
        self.pgbin = pgbin
        self.user: str | None = None
        if os.geteuid() == 0:  # PostgreSQL will not run as root: as its own user
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                _no_server("running as root and there is no `postgres` user to run a "
                           "throwaway PostgreSQL as")
            if shutil.which("runuser") is None:
                _no_server("running as root and `runuser` is missing")
            self.user = "postgres"
        self.tmp = Path(tempfile.mkdtemp(prefix="rfpg.", dir="/tmp"))  # short: socket path
        if self.user is not None:
            shutil.chown(self.tmp, self.user)
        self.data = self.tmp / "data"
        self.port = _free_port()
        assert self.port != 5432, "never the machine's own server"
        self.settings = "-c fsync=on" if durable else (
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off")
        init = self._run([str(pgbin / "initdb"), "-D", str(self.data), "-U", "postgres",
                          "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"], 120)
        if init.returncode != 0:
            self._remove()
            _no_server(f"initdb failed (exit {init.returncode}): {init.stdout[-500:]}"
                       f"{init.stderr[-500:]}")
        started = self._start()
        if started:
            self._remove()
            _no_server(f"a throwaway PostgreSQL did not start: {started}")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, argv: list[str], timeout: float) -> Any:
        if self.user is not None:
            argv = ["runuser", "-u", self.user, "--", *argv]
        return self._subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                    check=False)

    def _start(self) -> str:
        """Start the server; return "" or what went wrong."""
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.tmp} "
                f"-c max_connections=100 {self.settings}")
        proc = self._run([str(self.pgbin / "pg_ctl"), "-D", str(self.data), "-l",
                          str(self.tmp / "server.log"), "-o", opts, "-w", "-t", "60", "start"], 90)
        if proc.returncode == 0:
            return ""
        log = self.tmp / "server.log"
        return f"{proc.stdout}{proc.stderr}{log.read_text()[-800:] if log.exists() else ''}"

    def pid(self) -> int:
        """Return the postmaster's pid, checking that it serves this data directory."""
        lines = (self.data / "postmaster.pid").read_text().splitlines()
        assert lines[1] == str(self.data), lines[:2]
        assert lines[3].strip() == str(self.port), lines[:4]
        return int(lines[0])

    def pids(self) -> list[int]:
        """Return the postmaster's pid and those of its backends and workers."""
        postmaster = self.pid()
        return [postmaster, *_children(postmaster)]

    def pause(self) -> list[int]:
        """Freeze every server process (SIGSTOP), as a hung server; return their pids."""
        import signal

        frozen = []
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:  # a backend that ended since it was listed
                continue
            frozen.append(pid)
        return frozen

    def resume(self, pids: list[int] | None = None) -> None:
        """Thaw the server processes (SIGCONT): those given, and any of the server's now."""
        import signal

        for pid in {*(pids or ()), *(self.pids() if (self.data / "postmaster.pid").exists()
                                     else ())}:
            if _alive(pid):
                os.kill(pid, signal.SIGCONT)

    def kill9(self) -> None:
        """SIGKILL the postmaster (its backends are orphaned, as after a crash)."""
        import signal

        os.kill(self.pid(), signal.SIGKILL)

    def restart(self) -> float:
        """Start the server again after a kill; return the seconds it took to accept."""
        started = self._time.monotonic()
        while True:
            problem = self._start()
            if not problem:
                return self._time.monotonic() - started
            if self._time.monotonic() - started > 60:  # orphaned backends are gone by now
                raise RuntimeError(f"PostgreSQL did not restart: {problem}")
            self._time.sleep(0.3)

    def stop(self) -> None:
        """Stop the server (fast, then immediate shutdown) and remove its directory."""
        import signal

        try:
            pid = self.pid()
        except (OSError, AssertionError, IndexError, ValueError):
            pid = 0
        if pid and _alive(pid):
            self.resume()
            for sig, waits in ((signal.SIGINT, 300), (signal.SIGQUIT, 100), (signal.SIGKILL, 100)):
                os.kill(pid, sig)
                for _ in range(waits):
                    if not _alive(pid):
                        break
                    self._time.sleep(0.05)
                if not _alive(pid):
                    break
        self._remove()

    def _remove(self) -> None:
        import shutil

        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def throwaway_postgres() -> Iterator[Callable[..., ThrowawayPostgres]]:
    """Return ``start(durable=True)``: a new throwaway PostgreSQL, stopped after the module."""
    servers: list[ThrowawayPostgres] = []

    def start(*, durable: bool = True) -> ThrowawayPostgres:
        server = ThrowawayPostgres(durable=durable)
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


def mariadb_binaries() -> tuple[str, str] | None:
    """Return the paths of mariadb-install-db and mariadbd, or None."""
    import shutil

    install = shutil.which("mariadb-install-db")
    server = shutil.which("mariadbd") or ("/usr/sbin/mariadbd" if Path("/usr/sbin/mariadbd").exists()
                                          else None)
    return (install, server) if install and server else None


class ThrowawayMariaDB:
    """A MariaDB server of one test module's own, in a temporary directory.

    ``url`` is a SQLAlchemy URL to its ``test`` database (user root, no password, on a
    free loopback port). ``pause()``/``resume()`` freeze and thaw the server (SIGSTOP /
    SIGCONT); ``stop()`` ends it and removes the directory. Run as root, the server
    runs as the ``mysql`` user.
    """

    def __init__(self) -> None:
        import pwd
        import shutil
        import subprocess
        import tempfile
        import time

        self._time = time
        found = mariadb_binaries()
        if found is None:
            _no_server("no MariaDB binaries (mariadb-install-db, mariadbd): install the "
                       "mariadb-server package")
        assert found is not None
        install, server = found
        user: list[str] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="rfmy.", dir="/tmp"))
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("mysql")
            except KeyError:
                self._remove()
                _no_server("running as root and there is no `mysql` user to run a "
                           "throwaway MariaDB as")
            shutil.chown(self.tmp, "mysql")
            user = ["--user=mysql"]
        self.data = self.tmp / "data"
        made = subprocess.run(
            [install, "--no-defaults", f"--datadir={self.data}", *user,
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            capture_output=True, text=True, timeout=120, check=False)
        if made.returncode != 0:
            self._remove()
            _no_server(f"mariadb-install-db failed (exit {made.returncode}): "
                       f"{made.stdout[-400:]}{made.stderr[-400:]}")
        self.port = _free_port()
        assert self.port != 3306, "never the machine's own server"
        self.process = subprocess.Popen(
            [server, "--no-defaults", f"--datadir={self.data}", *user, f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--socket={self.tmp / 'sock'}",
             f"--pid-file={self.tmp / 'pid'}", f"--log-error={self.tmp / 'error.log'}",
             "--innodb-buffer-pool-size=16M", "--skip-name-resolve"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.url = f"mysql+pymysql://root@127.0.0.1:{self.port}/test"
        deadline = time.monotonic() + 60
        while True:
            try:
                engine = sa.create_engine(self.url.rsplit("/", 1)[0] + "/",
                                          connect_args={"connect_timeout": 2})
                with engine.connect() as conn:
                    conn.exec_driver_sql("CREATE DATABASE IF NOT EXISTS test")
                engine.dispose()
                break
            except sa.exc.OperationalError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.tmp / "error.log"
                    text = log.read_text()[-800:] if log.exists() else ""
                    self.stop()
                    _no_server(f"a throwaway MariaDB did not start: {exc}; {text}")
                time.sleep(0.3)

    def pause(self) -> list[int]:
        """Freeze the server (SIGSTOP); return its pid."""
        import signal

        os.kill(self.process.pid, signal.SIGSTOP)
        return [self.process.pid]

    def resume(self, pids: list[int] | None = None) -> None:
        """Thaw the server (SIGCONT)."""
        import signal

        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        import subprocess

        if self.process.poll() is None:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        self._remove()

    def _remove(self) -> None:
        import shutil

        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def throwaway_mariadb() -> Iterator[Callable[[], ThrowawayMariaDB]]:
    """Return ``start()``: a new throwaway MariaDB, stopped after the module."""
    servers: list[ThrowawayMariaDB] = []

    def start() -> ThrowawayMariaDB:
        server = ThrowawayMariaDB()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
