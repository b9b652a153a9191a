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

Run alone with ``python -m bench.bench_sweep [--quick]``; ``bench/run.py`` calls :func:`run`.
"""

from __future__ import annotations

import gc
import sys
import time
from typing import Any

import attrs
import pendulum

import reviewflow as rf
from reviewflow import _deadline_ops as ops
from reviewflow.deadlines import After, Entered, Rung
from reviewflow.model import GENESIS_HASH, Actor, Case, EventRecord, Stage
from reviewflow.policy import Policy, StageRule
from reviewflow.store.base import Commit

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
    ops.attach(campaign)
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
        extras = ops.commit_extras(campaign, case, None)
        batch.append(Commit(case=case, expected_version=0, events=(record,), extras=extras,
                            **no_outbox))
        if len(batch) >= 10_000:
            store.insert_cases(batch)
            batch = []
    if batch:
        store.insert_cases(batch)
    return campaign, counter


def _timed_sweep(campaign: rf.Campaign, now: pendulum.DateTime) -> tuple[float, int]:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        result = ops.sweep(campaign, now)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    if result.failed:
        raise RuntimeError(f"sweep failed for {len(result.failed)} cases: {result.failed[0]}")
    return elapsed, len(result.fired)


def _scan_cost(campaign: rf.Campaign, sample: int) -> float:
    """Seconds per case to compute a case's schedule, as a sweep without an index must."""
    st = ops._state(campaign)
    cases = campaign.store.cases(campaign.id)[:sample]
    start = time.perf_counter()
    for case in cases:
        due = st.due(case, case.stage)
        if due is not None:
            ops._pending(st, case, case.stage, due)
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
    return {
        "status": "ok",
        "rows": rows,
        "ratios": {
            f"same due, {big // small}x the cases": growth_cases,
            f"same cases, {k_hi // k_lo}x the due rungs": growth_due,
        },
        "targets": [{
            "what": f"sweep of {target_n:,} in-memory cases with {target_k:,} rungs due",
            "target": "< 1 s" if not quick else "< 1 s (full run only)",
            "value": target, "met": target < 1.0,
        }],
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
