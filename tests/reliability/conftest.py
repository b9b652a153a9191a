"""Fixtures of the reliability suite: a store per backend, the long-form switch, figures.

The database servers come from the top-level ``tests/conftest.py`` (its
``postgresql_url`` / ``mysql_url`` fixtures, which skip, or fail under
``REVIEWFLOW_REQUIRE_DB=1``, when a server is unreachable). Each test makes its
campaigns with fresh ids, so tests share one schema per server safely.

Long forms run with ``REVIEWFLOW_LONG=1`` (``REVIEWFLOW_FULL=1`` is accepted too,
as the store's own crash and concurrency tests use it). With
``REVIEWFLOW_FIGURES=PATH`` every figure a test records is written to PATH as JSON
at the end of the run (``bench/reliability_long.py`` uses it for docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reviewflow.store.base import Store
from reviewflow.store.memory import MemoryStore

#: True when the long forms were asked for.
LONG = os.environ.get("REVIEWFLOW_LONG") == "1" or os.environ.get("REVIEWFLOW_FULL") == "1"

#: Every figure recorded in this run: test id -> {name: value}.
FIGURES: dict[str, dict[str, Any]] = {}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the recorded figures to ``$REVIEWFLOW_FIGURES`` when it is set."""
    target = os.environ.get("REVIEWFLOW_FIGURES")
    if target and FIGURES:
        path = Path(target)
        old: dict[str, Any] = {}
        if path.exists():
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                old = {}
        old.update(FIGURES)
        path.write_text(json.dumps(old, indent=2, ensure_ascii=False, sort_keys=True, default=str),
                        encoding="utf-8")


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Return ``figure(**values)``: print the test's figures and keep them for the report."""

    def record(**values: Any) -> None:
        FIGURES.setdefault(request.node.nodeid, {}).update(values)
        print(f"\nFIGURE {request.node.nodeid}: {json.dumps(values, ensure_ascii=False, default=str)}")

    return record


@pytest.fixture
def long_form() -> bool:
    """True when ``REVIEWFLOW_LONG=1`` asks for the long forms."""
    return LONG


@pytest.fixture
def require_long() -> None:
    """Skip the test unless the long forms were asked for (``REVIEWFLOW_LONG=1``)."""
    if not LONG:
        pytest.skip("long form: run with REVIEWFLOW_LONG=1 (see docs/reliability.md)")


@pytest.fixture
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], Store]]:
    """Return ``make(kind, same_as=None)``: a store of ``kind`` (memory, sqlite, postgresql,
    mysql), closed after the test. ``same_as`` gives a second store (its own connection
    pool, as another process would have) on the same database as an earlier one; for
    memory, the same store."""
    opened: list[Store] = []

    def make(kind: str, same_as: Store | None = None) -> Store:
        if kind == "memory":
            store: Store = same_as if same_as is not None else MemoryStore()
        else:
            from reviewflow.store.sql import SqlStore

            if same_as is not None:
                assert isinstance(same_as, SqlStore)
                url = same_as.engine.url.render_as_string(hide_password=False)
            elif kind in ("sqlite", "sqlite-normal"):
                # sqlite-normal: synchronous=NORMAL, for tests about logic, not durability
                query = "?synchronous=normal" if kind == "sqlite-normal" else ""
                url = f"sqlite:///{tmp_path / f'rel-{secrets.token_hex(3)}.db'}{query}"
            else:
                url = str(request.getfixturevalue(f"{kind}_url"))
            store = SqlStore(url)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def _new_campaign_id(prefix: str = "rel") -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


@pytest.fixture
def new_id() -> Callable[..., str]:
    """Return ``new_id(prefix="rel")``: a campaign id no other test or example uses."""
    return _new_campaign_id
