"""Several sweeper processes on one database, each sweep pipelined: every rung exactly once.

``tests/test_store_deadlines.py`` races four sweeper processes over 120 cases, below
the pipelined sweep's threshold. Here each process sweeps more than a thousand due
cases, so that every one commits its batches in a worker thread while it builds the
next (``reviewflow._deadlines.sweep._pipeline``), and the processes' batches claim the
same case rows at the same time. Checked on SQLite, PostgreSQL and MySQL:

* every (case, rung) due is stored exactly once, with its rung mark, and reported by
  exactly one sweeper (its hook called once, in that process);
* no sweeper fails for good; a sweep afterwards fires nothing; ``verify()`` is clean.

CI form: 3 processes on 2,100 cases. Long form (``REVIEWFLOW_LONG=1``): 6 processes on
5,100 cases.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa
from tests.test_store_deadlines import LADDER_TIMES, RUNGS, drafting, fired_counts, open_campaign

import reviewflow as rf
from reviewflow.store import _schema as schema
from reviewflow.store.sql import SqlStore

FORK = multiprocessing.get_context("fork")
LONG = os.environ.get("REVIEWFLOW_LONG") == "1" or os.environ.get("REVIEWFLOW_FULL") == "1"
CASES, PROCS = (5_100, 6) if LONG else (2_100, 3)


class _Told:
    """Count the rung hooks called in this process."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()

    @rf.hookimpl
    def reviewflow_deadline_rung(self, campaign: Any, case: Any, stage: Any, rung: Any,
                                 due: Any) -> None:
        self.calls[(case.case_id, rung.id)] += 1


def _sweeper(url: str, cid: str, start: Any, out: Any) -> None:
    try:
        campaign = open_campaign(url, cid)
        told = _Told()
        campaign.register(told)
        start.wait()
        fired: list[tuple[str, str]] = []
        failed = conflicts = 0
        for moment in (LADDER_TIMES[0], LADDER_TIMES[2]):  # one rung, then two at once
            result = campaign.sweep(moment)
            fired += [(f.case_id, f.rung.id) for f in result.fired]
            failed += len(result.failed)
            conflicts += result.conflicts
        campaign.store.close()
        out.put((fired, dict(told.calls), failed, conflicts, None))
    except BaseException:
        out.put(([], {}, 0, 0, traceback.format_exc()))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_pipelined_sweepers_fire_each_rung_exactly_once(kind: str, make_store: Any,
                                                        figure: Any) -> None:
    store = make_store(kind)
    assert isinstance(store, SqlStore)
    url = store.engine.url.render_as_string(hide_password=False)
    campaign = drafting(url, CASES)
    cid = campaign.id
    campaign.store.close()
    start = FORK.Event()
    out = FORK.Queue()
    workers = [FORK.Process(target=_sweeper, args=(url, cid, start, out)) for _ in range(PROCS)]
    for w in workers:
        w.start()
    start.set()
    reports = [out.get(timeout=600) for _ in workers]
    for w in workers:
        w.join(60)
    assert [r[4] for r in reports] == [None] * PROCS, [r[4] for r in reports if r[4]]
    expected = {(f"s{i:04d}", rung) for i in range(CASES) for rung in RUNGS}
    reported = Counter(pair for r in reports for pair in r[0])
    told: Counter[tuple[str, str]] = Counter()
    for r in reports:
        told.update(r[1])
    stored = fired_counts(store, cid)
    m = schema.rung_marks.c
    with store.engine.connect() as conn:
        marks = Counter((str(row.case_id), str(row.rung_id)) for row in conn.execute(
            sa.select(m.case_id, m.rung_id).where(m.campaign_id == cid)))
    again = open_campaign(url, cid)
    late = len(again.sweep(LADDER_TIMES[-1]))
    ok = again.verify().ok
    again.store.close()
    figure(backend=kind, processes=PROCS, cases=CASES, rungs_due=len(expected),
           stored=sum(stored.values()), stored_twice=sum(1 for n in stored.values() if n > 1),
           missing=len(expected - set(stored)), reported_twice=sum(1 for n in reported.values()
                                                                 if n > 1),
           hooks_twice=sum(1 for n in told.values() if n > 1),
           per_process=[len(r[0]) for r in reports], conflicts=sum(r[3] for r in reports),
           failed=sum(r[2] for r in reports), fired_afterwards=late, verify_ok=ok)
    assert set(stored) == expected
    assert set(stored.values()) == {1}
    assert marks == stored
    assert set(reported) == expected
    assert set(reported.values()) == {1}
    assert told == reported
    assert sum(r[2] for r in reports) == 0
    assert late == 0
    assert ok
