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
