"""Several processes fire conflicting commands on ONE case: no update may be lost.

Each worker process loops: read the case, commit one step on that snapshot. Every
success must show up as exactly one version and one event; every failure must be
a ConflictError. A negative control does the same read-modify-write without the
version check and must lose updates, proving that the harness can see a loss.

CI form: 4 processes x 100 commands per database. Full form (the issue's figure):
8 processes x 500, run with ``REVIEWFLOW_FULL=1`` or ``pytest -m slow``.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from typing import Any

import pytest
import sqlalchemy as sa

from reviewflow.exceptions import ConflictError
from reviewflow.store import _schema as schema
from reviewflow.store.sql import SqlStore

KINDS = pytest.mark.parametrize("db_url", ["sqlite", "postgresql", "mysql"], indirect=True)
FORK = multiprocessing.get_context("fork")


def full_form(config: pytest.Config) -> bool:
    """True when the long runs were asked for (``REVIEWFLOW_FULL=1`` or ``-m slow``)."""
    return os.environ.get("REVIEWFLOW_FULL") == "1" or config.getoption("-m") == "slow"


def _worker(url: str, cid: str, attempts: int, kit: Any, start: Any, out: Any,
            blind: bool) -> None:
    try:
        store = SqlStore(url)
        ok = conflicts = 0
        others: list[str] = []
        start.wait()
        for _ in range(attempts):
            case = store.get(cid, "hot")
            if blind:  # the negative control: read-modify-write without the version check
                with store.transaction() as conn:
                    conn.execute(
                        sa.update(schema.cases)
                        .where(schema.cases.c.campaign_id == cid)
                        .where(schema.cases.c.case_id == "hot")
                        .values(version=case.version + 1)
                    )
                ok += 1
                continue
            [error] = store.commit([kit.step(case)])
            if error is None:
                ok += 1
            elif isinstance(error, ConflictError):
                conflicts += 1
            else:
                others.append(repr(error))
        store.close()
        out.put((ok, conflicts, others))
    except BaseException:
        out.put((0, 0, [traceback.format_exc()]))


def _race(url: str, kit: Any, procs: int, attempts: int, *, blind: bool = False
          ) -> dict[str, Any]:
    store = SqlStore(url)
    cid = kit.new_campaign_id()
    store.setup_campaign(cid, "{}")
    store.insert_cases([kit.opening(cid, "hot")])
    start = FORK.Event()
    out = FORK.Queue()
    workers = [
        FORK.Process(target=_worker, args=(url, cid, attempts, kit, start, out, blind))
        for _ in range(procs)
    ]
    for w in workers:
        w.start()
    start.set()
    results = [out.get(timeout=300) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    case = store.get(cid, "hot")
    assert case is not None
    events = len(store.history(cid, "hot"))
    store.close()
    successes = sum(r[0] for r in results)
    return {
        "successes": successes,
        "conflicts": sum(r[1] for r in results),
        "other_failures": [m for r in results for m in r[2]],
        "steps_in_store": case.version - 1,
        "events_in_store": events - 1,
        "lost": successes - (case.version - 1),
        "exit_codes": [w.exitcode for w in workers],
    }


def _check(figures: dict[str, Any], procs: int, attempts: int) -> None:
    assert figures["other_failures"] == []
    assert figures["exit_codes"] == [0] * procs
    assert figures["successes"] + figures["conflicts"] == procs * attempts
    assert figures["lost"] == 0
    assert figures["steps_in_store"] == figures["events_in_store"] == figures["successes"]
    assert figures["successes"] >= 1


@KINDS
def test_conflicting_commands_lose_no_update(db_url: str, kit: Any) -> None:
    figures = _race(db_url, kit, 4, 100)
    print(f"\n{db_url.split(':')[0]} 4x100: {figures}")
    _check(figures, 4, 100)


@KINDS
def test_negative_control_without_version_check_loses_updates(db_url: str, kit: Any) -> None:
    figures = _race(db_url, kit, 4, 100, blind=True)
    print(f"\n{db_url.split(':')[0]} control 4x100: {figures}")
    assert figures["other_failures"] == []
    assert figures["lost"] > 0
    with pytest.raises(AssertionError):
        _check(figures, 4, 100)


@pytest.mark.slow
@KINDS
def test_full_form_8_processes_500_commands(
    db_url: str, kit: Any, pytestconfig: pytest.Config,
) -> None:
    if not full_form(pytestconfig):
        pytest.skip("full form: set REVIEWFLOW_FULL=1 or run pytest -m slow")
    figures = _race(db_url, kit, 8, 500)
    print(f"\n{db_url.split(':')[0]} 8x500: {figures}")
    _check(figures, 8, 500)
    control = _race(db_url, kit, 8, 500, blind=True)
    print(f"{db_url.split(':')[0]} control 8x500: {control}")
    assert control["lost"] > 0
