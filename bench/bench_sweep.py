"""Benchmark: the deadline sweep finds and fires due rungs through an index, not a scan.

A campaign holds N cases in drafting, each due 10 working days after it entered the stage
(``after = "entered:drafting"``, China's calendar) with a ladder remind T-3 / remind T-1 /
escalate at T. Entry times are spread one second apart, so that a sweep at a chosen time
finds exactly k first reminders due among the N cases. One in-memory sweep is timed per
(N, k): it finds the due cases, builds one ``deadline_rung`` event per rung (hash-chained),
commits them with their marks and index rows, and calls the ``reviewflow_deadline_rung``
hook of a registered plugin for each.

Target (issue 3): N = 1,000,000 with k = 10,000 due in under 1 s, and a cost that grows
with k, not with N. For contrast the run also times what a scanning sweep would spend
computing every case's schedule (measured on a sample, scaled to N).

SQL sections (issue 5): the same sweep on SQLite and PostgreSQL holding N = 1,000,000 cases
with k = 10,000 first rungs due. Building a million cases through the engine would take
most of an hour, so the case rows, their opening events and their deadline index rows are
written in bulk straight through the driver (sqlite3 ``executemany`` in one transaction;
psycopg ``COPY``), in the shape the engine writes them: the same case state JSON, the
index row the deadline work computes (checked against it on a sample), and an opening event
per case whose hash is a stand-in (the sweep never reads old events; ``verify`` would
flag them). The timed sweep is the engine's own: it reads the due cases from the index,
loads them, builds one hash-chained ``deadline_rung`` event per rung, commits them with
their marks and index rows (1,000 per transaction) and calls the hook. Reported apart:
``find`` (the index query alone, timed just before the sweep), and inside the sweep the
time spent loading cases, committing, and the rest (building the steps, hooks).

Run alone with ``python -m bench.bench_sweep [--quick]``; ``bench/run.py`` calls :func:`run`.
"""

from __future__ import annotations

import gc
import hashlib
import random
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import Any

import attrs
import pendulum
import sqlalchemy as sa

import reviewflow as rf
from reviewflow._engine import deadline_work as ops
from reviewflow.deadlines import After, Entered, Rung
from reviewflow.model import GENESIS_HASH, Actor, Case, EventRecord, Stage
from reviewflow.policy import Policy, StageRule
from reviewflow.store.base import Commit
from reviewflow.store.sql import SqlStore

TZ = "Asia/Shanghai"
#: Cases enter drafting from this moment on, one second apart.
ENTER0 = pendulum.datetime(2016, 1, 4, 9, tz=TZ)  # a Monday
#: Cases that must not be due enter a month later.
LATER0 = pendulum.datetime(2016, 3, 1, 9, tz=TZ)


class _Counter:
    """A plugin that counts the rung hooks it hears."""

    def __init__(self) -> None:
        self.rungs = 0

    @rf.hookimpl
    def reviewflow_deadline_rung(self, campaign: Any, case: Any, stage: Any, rung: Any,
                                 due: Any) -> None:
        self.rungs += 1


def _policy() -> Policy:
    base = Policy.default(year=2016)
    rule = StageRule(
        due=After(anchor=Entered("drafting"), n=10, time="keep"), hard=True,
        ladder=(Rung(id="remind-3wd", offset=-3, to="secretary"),
                Rung(id="remind-1wd", offset=-1, to="secretary"),
                Rung(id="escalate-at-due", offset=0, action="escalate")),
    )
    return attrs.evolve(base, stages={**base.stages, Stage.DRAFTING: rule})


def _build(n: int, due_slots: int) -> tuple[rf.Campaign, _Counter]:
    """Open ``n`` cases already in drafting; the first ``due_slots`` enter one second apart
    from ENTER0, the others from LATER0 (their rungs are weeks away)."""
    campaign = rf.Campaign(_policy(), clock=rf.FrozenClock(ENTER0))
    counter = _Counter()
    campaign.register(counter)
    store = campaign.store
    secretary = Actor("sec", "书记", roles={"secretary"})
    batch: list[Commit] = []
    # Opening events need no hook here: keep them out of the outbox where the store allows.
    no_outbox: dict[str, Any] = {"outbox": False} if "outbox" in getattr(Commit, "_fields", ()) else {}
    for i in range(n):
        base = ENTER0 if i < due_slots else LATER0
        entered = base.add(seconds=i if i < due_slots else i - due_slots).isoformat()
        case_id = f"c{i:07d}"
        record = EventRecord.make(campaign.id, case_id, 1, "open", "bureau", "organizer",
                                  entered, None, "drafting", None, {}, GENESIS_HASH)
        case = Case(campaign.id, case_id, "党支部", secretary, Stage.DRAFTING, 1, record.hash,
                    {"entered": {"drafting": entered}})
        extras = _work(campaign).commit_extras(case, None)
        batch.append(Commit(case=case, expected_version=0, events=(record,), extras=extras,
                            **no_outbox))
        if len(batch) >= 10_000:
            store.insert_cases(batch)
            batch = []
    if batch:
        store.insert_cases(batch)
    return campaign, counter


def _work(campaign: rf.Campaign) -> ops.DeadlineWork:
    """The campaign's deadline work (its engine's)."""
    return campaign._engine.deadline_work


def _timed_sweep(campaign: rf.Campaign, now: pendulum.DateTime) -> tuple[float, int]:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        result = campaign.sweep(now)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    if result.failed:
        raise RuntimeError(f"sweep failed for {len(result.failed)} cases: {result.failed[0]}")
    return elapsed, len(result.fired)


def _scan_cost(campaign: rf.Campaign, sample: int) -> float:
    """Seconds per case to compute a case's schedule, as a sweep without an index must."""
    st = _work(campaign)
    cases = campaign.store.cases(campaign.id)[:sample]
    start = time.perf_counter()
    for case in cases:
        due = st.due(case, case.stage)
        if due is not None:
            st.pending(case, case.stage, due)
    return (time.perf_counter() - start) / max(1, len(cases))


def _series(n: int, ks: tuple[int, ...]) -> list[dict[str, Any]]:
    """One campaign of ``n`` cases; successive sweeps that each find ``k`` new due rungs."""
    slots = sum(ks)
    t0 = time.perf_counter()
    campaign, counter = _build(n, slots)
    setup = time.perf_counter() - t0
    scan_us = _scan_cost(campaign, min(n, 20_000)) * 1e6
    rows = []
    done = 0
    for k in ks:
        done += k
        # Cases 0 .. done-1 have their first rung due; their second rung is days away.
        now = ENTER0.add(days=9, seconds=done - 1)
        before = counter.rungs
        elapsed, fired = _timed_sweep(campaign, now)
        if fired != k or counter.rungs - before != k:
            raise RuntimeError(f"expected {k} rungs at N={n}, fired {fired}, hooks "
                               f"{counter.rungs - before}")
        again, refired = _timed_sweep(campaign, now)
        if refired:
            raise RuntimeError(f"a second sweep fired {refired} rungs again")
        rows.append({
            "cases": n, "due": k, "seconds": elapsed, "us_per_rung": elapsed / k * 1e6,
            "second_sweep_s": again, "setup_s": setup,
            "scan_estimate_s": scan_us * n / 1e6, "scan_us_per_case": scan_us,
        })
        print(f"  N={n:>9,} due={k:>6,}: sweep {elapsed:.3f} s ({elapsed / k * 1e6:.1f} us/rung),"
              f" repeat {again * 1e3:.1f} ms; a scan would take ~{scan_us * n / 1e6:.1f} s "
              f"(setup {setup:.0f} s)", flush=True)
    del campaign
    gc.collect()
    return rows


# ---------------------------------------------------------------------- SQL stores


#: Cases that must not be due enter on one day, this far apart (all on 2016-03-01).
LATER_STEP_US = 50_000


def _entered(i: int, due_slots: int) -> pendulum.DateTime:
    if i < due_slots:
        return ENTER0.add(seconds=i)
    return LATER0.add(microseconds=(i - due_slots) * LATER_STEP_US)


def _sql_rows(campaign: rf.Campaign, n: int, due_slots: int
              ) -> tuple[Callable[[int], tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]],
                         int]:
    """Return ``row(i) -> (case row, event row, index row)`` in column order, and how many
    index rows were checked against the deadline work."""
    st = _work(campaign)
    store = campaign.store
    assert isinstance(store, SqlStore)
    secretary = Actor("sec", "书记", roles={"secretary"})

    def case_of(i: int) -> Case:
        entered = _entered(i, due_slots).isoformat()
        return Case(campaign.id, f"c{i:07d}", "党支部", secretary, Stage.DRAFTING, 1,
                    hashlib.sha256(f"c{i:07d}".encode()).hexdigest(),
                    {"entered": {"drafting": entered}})

    sample = case_of(0)
    sample_iso = _entered(0, due_slots).isoformat()
    template = store._case_row(sample)["state"]
    if template.count(sample_iso) != 1:
        raise RuntimeError("the case state template does not hold the entry time once")
    # Each group enters on one day: its due and fire times are its entry time + a constant.
    deltas: dict[bool, tuple[int, int]] = {}
    for later in (False, True):
        i = due_slots if later else 0
        row = st.schedule_row(case_of(i))
        if row is None or row.due_us is None or row.next_fire_us is None:
            raise RuntimeError("a benchmark case has no deadline")
        base = ops.to_us(_entered(i, due_slots))
        deltas[later] = (row.due_us - base, row.next_fire_us - base)

    def row(i: int) -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]:
        when = _entered(i, due_slots)
        iso = when.isoformat()
        case_id = f"c{i:07d}"
        last_hash = hashlib.sha256(case_id.encode()).hexdigest()
        due_d, fire_d = deltas[i >= due_slots]
        us = ops.to_us(when)
        return ((campaign.id, case_id, "drafting", 1, last_hash, None,
                 template.replace(sample_iso, iso)),
                (campaign.id, case_id, 1, "open", "bureau", "organizer", iso, None, "drafting",
                 None, "{}", GENESIS_HASH, last_hash),
                (campaign.id, case_id, "drafting", us + due_d, us + fire_d))

    checked = 0
    for i in [*random.Random(5).sample(range(n), min(n, 2000)), 0, due_slots - 1, n - 1]:
        expected = st.schedule_row(case_of(i))
        got = row(i)[2]
        assert expected is not None
        if (expected.due_us, expected.next_fire_us) != got[3:]:
            raise RuntimeError(f"the bulk index row of case {i} differs from the deadline work's")
        checked += 1
    return row, checked


_CASE_COLS = "campaign_id, case_id, stage, version, last_hash, previous_case_id, state"
_EVENT_COLS = ("campaign_id, case_id, seq, event, actor_id, role, at, from_stage, to_stage, "
               "reason, data, prev_hash, hash")
_INDEX_COLS = "campaign_id, case_id, stage, due_us, next_fire_us"


def _bulk_sqlite(url: str, n: int, row: Callable[[int], Any]) -> None:
    path = url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")
        step = 100_000
        for start in range(0, n, step):
            rows = [row(i) for i in range(start, min(n, start + step))]
            conn.executemany(f"INSERT INTO rf_cases ({_CASE_COLS}) VALUES (?,?,?,?,?,?,?)",
                             [r[0] for r in rows])
            conn.executemany(f"INSERT INTO rf_events ({_EVENT_COLS}) "
                             "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", [r[1] for r in rows])
            conn.executemany(f"INSERT INTO rf_deadline_index ({_INDEX_COLS}) VALUES (?,?,?,?,?)",
                             [r[2] for r in rows])
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()


def _bulk_postgresql(url: str, n: int, row: Callable[[int], Any]) -> None:
    import psycopg

    u = sa.make_url(url)
    options = u.query.get("options")
    conn = psycopg.connect(host=u.host, port=u.port or 5432, user=u.username,
                           password=u.password, dbname=u.database,
                           **({"options": options} if isinstance(options, str) else {}))
    try:
        with conn.cursor() as cur:
            step = 100_000
            for start in range(0, n, step):
                rows = [row(i) for i in range(start, min(n, start + step))]
                for table, cols, k in (("rf_cases", _CASE_COLS, 0), ("rf_events", _EVENT_COLS, 1),
                                       ("rf_deadline_index", _INDEX_COLS, 2)):
                    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                        for r in rows:
                            copy.write_row(r[k])
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE rf_cases")
        conn.execute("VACUUM ANALYZE rf_events")
        conn.execute("VACUUM ANALYZE rf_deadline_index")
    finally:
        conn.close()


class _Phases:
    """Time spent in the store's get_many and commit during a sweep (instance wrappers)."""

    def __init__(self, store: Any) -> None:
        self.load = self.commit = 0.0
        self._store = store
        get_many, commit = store.get_many, store.commit

        def timed_get_many(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return get_many(*args, **kwargs)
            finally:
                self.load += time.perf_counter() - t0

        def timed_commit(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return commit(*args, **kwargs)
            finally:
                self.commit += time.perf_counter() - t0

        store.get_many, store.commit = timed_get_many, timed_commit

    def remove(self) -> None:
        del self._store.get_many
        del self._store.commit


def _sql_series(kind: str, n: int, k: int) -> dict[str, Any] | None:
    """Build ``n`` cases with ``k`` due in a scratch database of ``kind``; time the sweep."""
    from bench.bench_store import _database

    with _database(kind) as url:
        if url is None:
            return None
        t0 = time.perf_counter()
        campaign = rf.Campaign(_policy(), clock=rf.FrozenClock(ENTER0), store=SqlStore(url),
                               campaign_id="bench-sweep")
        row, checked = _sql_rows(campaign, n, k)
        campaign.store.close()
        (_bulk_sqlite if kind == "sqlite" else _bulk_postgresql)(url, n, row)
        setup = time.perf_counter() - t0
        store = SqlStore(url)
        campaign = rf.Campaign(_policy(), clock=rf.FrozenClock(ENTER0), store=store,
                               campaign_id="bench-sweep")
        counter = _Counter()
        campaign.register(counter)
        now = ENTER0.add(days=9, seconds=k - 1)  # cases 0 .. k-1 have their first rung due
        gc.collect()
        t1 = time.perf_counter()
        found = store.deadline_due(campaign.id, ops.to_us(now))
        find = time.perf_counter() - t1
        if len(found) != k:
            raise RuntimeError(f"{kind}: the index found {len(found)} due cases, not {k}")
        phases = _Phases(store)
        try:
            elapsed, fired = _timed_sweep(campaign, now)
        finally:
            phases.remove()
        if fired != k or counter.rungs != k:
            raise RuntimeError(f"{kind}: expected {k} rungs, fired {fired}, hooks {counter.rungs}")
        again, refired = _timed_sweep(campaign, now)
        if refired:
            raise RuntimeError(f"{kind}: a second sweep fired {refired} rungs again")
        with store.engine.connect() as conn:
            events = conn.execute(sa.text(
                "SELECT COUNT(*) FROM rf_events WHERE event = 'deadline_rung'")).scalar_one()
            marks = conn.execute(sa.text("SELECT COUNT(*) FROM rf_rung_marks")).scalar_one()
        if events != k or marks != k:
            raise RuntimeError(f"{kind}: {events} rung events and {marks} marks stored, not {k}")
        store.close()
    rest = elapsed - find - phases.load - phases.commit
    out = {"backend": kind, "cases": n, "due": k, "seconds": elapsed, "find_s": find,
           "fire_s": elapsed - find, "load_s": phases.load, "commit_s": phases.commit,
           "build_and_hooks_s": rest, "us_per_rung": elapsed / k * 1e6,
           "second_sweep_s": again, "setup_s": setup, "index_rows_checked": checked}
    print(f"  {kind:>10} N={n:>9,} due={k:>6,}: sweep {elapsed:.3f} s = find {find * 1e3:.0f} ms "
          f"+ fire {elapsed - find:.3f} s (load {phases.load:.3f}, commit {phases.commit:.3f}, "
          f"build+hooks {rest:.3f}); repeat {again * 1e3:.0f} ms (bulk setup {setup:.0f} s)",
          flush=True)
    return out


def run(quick: bool) -> dict[str, Any]:
    """Time one in-memory sweep at each size; return figures, ratios and the target check."""
    if quick:
        sizes, ks, target_n, target_k = (2_000, 20_000), (100, 1_000), 20_000, 1_000
    else:
        sizes, ks, target_n, target_k = (100_000, 1_000_000), (1_000, 10_000), 1_000_000, 10_000
    rows: list[dict[str, Any]] = []
    for n in sizes:
        rows.extend(_series(n, ks))
    by = {(r["cases"], r["due"]): r for r in rows}
    big, small = max(sizes), min(sizes)
    k_hi, k_lo = max(ks), min(ks)
    growth_cases = by[(big, k_hi)]["seconds"] / by[(small, k_hi)]["seconds"]
    growth_due = by[(big, k_hi)]["seconds"] / by[(big, k_lo)]["seconds"]
    target = by[(target_n, target_k)]["seconds"]
    targets: list[dict[str, Any]] = [{
        "what": f"sweep of {target_n:,} in-memory cases with {target_k:,} rungs due",
        "target": "< 1 s" if not quick else "< 1 s (full run only)",
        "value": target, "met": target < 1.0,
    }]
    sql_n, sql_k = (5_000, 500) if quick else (1_000_000, 10_000)
    sql_rows = []
    for kind in ("sqlite", "postgresql"):
        got = _sql_series(kind, sql_n, sql_k)
        if got is None:
            targets.append({"what": f"sweep on {kind}", "target": "< 1 s",
                            "value": "server not reachable", "met": None})
            continue
        sql_rows.append(got)
        # Issue 5's target is the finding ("an index, not a scan"); firing them too, each
        # rung a durable hash-chained step, within the same second is our own aim.
        for what, value in ((f"{kind}: find {sql_k:,} due among {sql_n:,} (the index)",
                             got["find_s"]),
                            (f"  {kind}: find and fire them (durable steps; own aim)",
                             got["seconds"])):
            targets.append({"what": what, "value": value, "met": value < 1.0,
                            "target": "< 1 s" if not quick else "< 1 s (full run only)"})
    return {
        "status": "ok",
        "rows": rows,
        "sql_rows": sql_rows,
        "ratios": {
            f"same due, {big // small}x the cases": growth_cases,
            f"same cases, {k_hi // k_lo}x the due rungs": growth_due,
        },
        "targets": targets,
    }


def main(argv: list[str] | None = None) -> int:
    """Run from the command line: ``python -m bench.bench_sweep [--quick]``."""
    args = sys.argv[1:] if argv is None else argv
    result = run(quick="--quick" in args)
    for name, value in result["ratios"].items():
        print(f"{name}: x{value:.2f}")
    for t in result["targets"]:
        print(f"{t['what']}: {t['value']:.3f} s (target {t['target']}) "
              f"{'met' if t['met'] else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
