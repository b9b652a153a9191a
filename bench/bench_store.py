"""Benchmark: the durable store beside the bare database driver, same schema, same run.

For each database (SQLite file, PostgreSQL, MySQL/MariaDB when reachable):

* **single**: one command per transaction. reviewflow's ``SqlStore.commit([step])``
  (versioned UPDATE of the case row, INSERT of its event, INSERT into the outbox,
  COMMIT) beside the bare driver running the same three statements on the same
  tables with hand-written SQL and one COMMIT per transition. Target: >= 70%.
  Also shown (no target): ``Campaign.fire`` end to end on the same database,
  which adds the engine's rules and a read of the case per command.
* **batch**: ``SqlStore.commit(1000 steps)`` beside the bare driver's batched
  rate: ``executemany`` of the same three statements per 1000 transitions and one
  COMMIT, and on PostgreSQL also the fastest bare form (``UPDATE ... FROM
  unnest(arrays)`` plus ``COPY``). Target: >= 40% of the fastest bare batch.

Both sides get the same prepared steps (cases, sealed event records); each side
serializes its JSON inside the timed loop. Variants run round-robin and the
median of the repeats is kept, because the machine is shared and noisy.

Run alone with ``python -m bench.bench_store [--quick]``; ``bench/run.py`` calls :func:`run`.
URLs: ``REVIEWFLOW_BENCH_POSTGRES`` / ``REVIEWFLOW_BENCH_MYSQL`` (default: the test servers);
each run makes a scratch schema or database and drops it.
"""

from __future__ import annotations

import gc
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from reviewflow.model import GENESIS_HASH, Actor, Case, EventRecord, Stage
from reviewflow.store.base import Commit
from reviewflow.store.sql import SqlStore

POSTGRES = os.environ.get(
    "REVIEWFLOW_BENCH_POSTGRES",
    os.environ.get("REVIEWFLOW_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
)
MYSQL = os.environ.get(
    "REVIEWFLOW_BENCH_MYSQL",
    os.environ.get("REVIEWFLOW_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test"),
)
BATCH = 1000
SECRETARY = Actor("zhang", "张三", roles={"secretary"})
_ENC = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


# ---------------------------------------------------------------------- workload


def _opening(cid: str, case_id: str) -> Commit:
    record = EventRecord.make(
        cid, case_id, 1, "open", "bureau", "organizer", "2016-01-04T09:00:00+08:00", None,
        "research", None, {"organization": "第一中学党支部"}, GENESIS_HASH,
    )
    case = Case(cid, case_id, "第一中学党支部", SECRETARY, Stage.RESEARCH, 1, record.hash,
                {"entered": {"research": "2016-01-04T09:00:00+08:00"}})
    return Commit(case=case, expected_version=0, events=(record,))


def _step(case: Case, n: int) -> Commit:
    new = case.copy()
    stage = list(Stage)[min(n, len(Stage) - 1)]
    record = EventRecord.make(
        case.campaign_id, case.case_id, case.version + 1, "sign_off", "li", "guidance_group",
        "2016-01-10T10:00:00+08:00", case.stage.value, stage.value, None,
        {"comment": "同意", "level": n}, case.last_hash,
    )
    new.stage = stage
    new.version = case.version + 1
    new.last_hash = record.hash
    new.data["signatures"] = [*new.data.get("signatures", []), {"by": "li", "level": n}]
    return Commit(case=new, expected_version=case.version, events=(record,))


def _workload(store: SqlStore, cid: str, cases: int, steps: int) -> list[list[Commit]]:
    """Open ``cases`` cases (not timed); return ``steps`` rounds of one step per case."""
    store.setup_campaign(cid, "{}")
    openings = [_opening(cid, f"org-{i:06d}") for i in range(cases)]
    for i in range(0, len(openings), 5000):
        store.insert_cases(openings[i:i + 5000])
    current = [c.case for c in openings]
    rounds = []
    for n in range(steps):
        commits = [_step(case, n + 1) for case in current]
        current = [c.case for c in commits]
        rounds.append(commits)
    return rounds


# ---------------------------------------------------------------------- the bare driver


class Bare:
    """The same statements on the same tables, with the driver's own connection and SQL."""

    def __init__(self, store: SqlStore) -> None:
        self.dialect = store.dialect
        self.raw = store.engine.raw_connection()
        p = "?" if self.dialect == "sqlite" else "%s"
        self.update = (
            f"UPDATE rf_cases SET stage={p}, version={p}, last_hash={p}, previous_case_id={p}, "
            f"state={p} WHERE campaign_id={p} AND case_id={p} AND version={p}"
        )
        self.event = (
            "INSERT INTO rf_events (campaign_id, case_id, seq, event, actor_id, role, at, "
            "from_stage, to_stage, reason, data, prev_hash, hash) VALUES "
            f"({', '.join([p] * 13)})"
        )
        self.outbox = f"INSERT INTO rf_outbox (campaign_id, case_id, seq) VALUES ({p}, {p}, {p})"

    def close(self) -> None:
        self.raw.close()

    def _begin(self, cur: Any) -> None:
        if self.dialect == "sqlite":
            cur.execute("BEGIN IMMEDIATE")

    @staticmethod
    def _rows(c: Commit) -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]:
        case = c.case
        r = c.events[0]
        state = _ENC.encode({"format": 1, "organization": case.organization,
                             "secretary": case.secretary.to_json(), "data": case.data})
        update = (case.stage.value, case.version, case.last_hash, case.previous_case_id, state,
                  case.campaign_id, case.case_id, c.expected_version)
        event = (r.campaign_id, r.case_id, r.seq, r.event, r.actor_id, r.role, r.at,
                 r.from_stage, r.to_stage, r.reason, _ENC.encode(dict(r.data)), r.prev_hash,
                 r.hash)
        return update, event, (r.campaign_id, r.case_id, r.seq)

    def single(self, commits: Sequence[Commit]) -> None:
        """One transaction per transition."""
        cur = self.raw.cursor()
        for c in commits:
            update, event, outbox = self._rows(c)
            self._begin(cur)
            cur.execute(self.update, update)
            if cur.rowcount != 1:
                raise RuntimeError("bare driver: stale version")
            cur.execute(self.event, event)
            cur.execute(self.outbox, outbox)
            self.raw.commit()
        cur.close()

    def batch_best(self, commits: Sequence[Commit]) -> None:
        """PostgreSQL's fastest bare batch: UPDATE ... FROM unnest(arrays), COPY for inserts."""
        if self.dialect != "postgresql":
            self.batch(commits)
            return
        update = (
            "UPDATE rf_cases AS c SET stage = v.stage, version = v.version, "
            "last_hash = v.last_hash, previous_case_id = v.previous, state = v.state "
            "FROM unnest(%s::text[], %s::int[], %s::text[], %s::text[], %s::text[], "
            "%s::text[], %s::text[], %s::int[]) "
            "AS v(stage, version, last_hash, previous, state, campaign_id, case_id, expected) "
            "WHERE c.campaign_id = v.campaign_id AND c.case_id = v.case_id "
            "AND c.version = v.expected"
        )
        cur = self.raw.cursor()
        for i in range(0, len(commits), BATCH):
            rows = [self._rows(c) for c in commits[i:i + BATCH]]
            cur.execute(update, tuple(list(col) for col in zip(*[r[0] for r in rows],
                                                                strict=True)))
            if cur.rowcount != len(rows):
                raise RuntimeError("bare driver: stale version")
            with cur.copy(
                "COPY rf_events (campaign_id, case_id, seq, event, actor_id, role, at, "
                "from_stage, to_stage, reason, data, prev_hash, hash) FROM STDIN"
            ) as copy:
                for r in rows:
                    copy.write_row(r[1])
            with cur.copy("COPY rf_outbox (campaign_id, case_id, seq) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(r[2])
            self.raw.commit()
        cur.close()

    def batch(self, commits: Sequence[Commit]) -> None:
        """One transaction per BATCH transitions, executemany per statement."""
        cur = self.raw.cursor()
        for i in range(0, len(commits), BATCH):
            rows = [self._rows(c) for c in commits[i:i + BATCH]]
            self._begin(cur)
            cur.executemany(self.update, [r[0] for r in rows])
            if cur.rowcount != len(rows):
                raise RuntimeError("bare driver: stale version")
            cur.executemany(self.event, [r[1] for r in rows])
            cur.executemany(self.outbox, [r[2] for r in rows])
            self.raw.commit()
        cur.close()


# ---------------------------------------------------------------------- databases


@contextmanager
def _database(kind: str) -> Iterator[str | None]:
    """Yield the URL of a scratch database of ``kind`` (None when the server is unreachable)."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="rf-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    url = sa.make_url(POSTGRES if kind == "postgresql" else MYSQL)
    name = f"rf_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT",
                             connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            if kind == "postgresql":
                conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
            else:
                conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    except Exception as exc:  # unreachable server: the section says so
        admin.dispose()
        print(f"  {kind}: not reachable ({type(exc).__name__}); skipped", flush=True)
        yield None
        return
    try:
        if kind == "postgresql":
            yield url.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(
                hide_password=False)
        else:
            yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            if kind == "postgresql":
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


def _timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _flat(rounds: list[list[Commit]]) -> list[Commit]:
    return [c for r in rounds for c in r]


def _measure(kind: str, url: str, sizes: dict[str, int], repeats: int) -> dict[str, Any]:
    store = SqlStore(url)
    bare = Bare(store)
    single_rf: list[float] = []
    single_bare: list[float] = []
    batch_rf: list[float] = []
    batch_bare: list[float] = []
    batch_best: list[float] = []
    n_single = sizes["single_cases"] * sizes["steps"]
    n_batch = sizes["batch_cases"] * sizes["steps"]
    try:
        for rep in range(repeats):
            # single commands, round-robin: bare then reviewflow, fresh cases each
            work = _flat(_workload(store, f"s-bare-{rep}", sizes["single_cases"], sizes["steps"]))
            single_bare.append(_timed(lambda w=work: bare.single(w)))  # type: ignore[misc]
            work = _flat(_workload(store, f"s-rf-{rep}", sizes["single_cases"], sizes["steps"]))

            def rf_single(w: list[Commit] = work) -> None:
                for c in w:
                    [error] = store.commit([c])
                    if error is not None:
                        raise error

            single_rf.append(_timed(rf_single))
            # batches of BATCH steps in one transaction
            work = _flat(_workload(store, f"b-bare-{rep}", sizes["batch_cases"], sizes["steps"]))
            batch_bare.append(_timed(lambda w=work: bare.batch(w)))  # type: ignore[misc]
            if kind == "postgresql":
                work = _flat(_workload(store, f"b-best-{rep}", sizes["batch_cases"],
                                       sizes["steps"]))
                batch_best.append(_timed(lambda w=work: bare.batch_best(w)))  # type: ignore[misc]
            work = _flat(_workload(store, f"b-rf-{rep}", sizes["batch_cases"], sizes["steps"]))

            def rf_batch(w: list[Commit] = work) -> None:
                for i in range(0, len(w), BATCH):
                    errors = store.commit(w[i:i + BATCH])
                    if any(e is not None for e in errors):
                        raise RuntimeError(f"batch failed: {errors}")

            batch_rf.append(_timed(rf_batch))
        fire = _campaign_fire(url, sizes["fire_cases"])
    finally:
        bare.close()
        store.close()
    med = statistics.median
    s_bare, s_rf = n_single / med(single_bare), n_single / med(single_rf)
    b_bare, b_rf = n_batch / med(batch_bare), n_batch / med(batch_rf)
    # The target is judged against the fastest bare batch measured on this database.
    b_copy = n_batch / med(batch_best) if batch_best else None
    b_best = max(b_bare, b_copy) if b_copy is not None else b_bare
    return {
        "transitions_single": n_single,
        "transitions_batch": n_batch,
        "single_bare_per_s": s_bare,
        "single_reviewflow_per_s": s_rf,
        "single_ratio": s_rf / s_bare,
        "batch_bare_per_s": b_bare,
        "batch_reviewflow_per_s": b_rf,
        "batch_copy_unnest_per_s": b_copy,
        "batch_best_bare_per_s": b_best,
        "batch_ratio": b_rf / b_best,
        "batch_ratio_vs_executemany": b_rf / b_bare,
        "campaign_fire_per_s": fire,
        "campaign_fire_ratio": fire / s_bare,
        "runs": {"single_bare_s": single_bare, "single_rf_s": single_rf,
                 "batch_bare_s": batch_bare, "batch_best_s": batch_best,
                 "batch_rf_s": batch_rf},
    }


def _campaign_fire(url: str, cases: int) -> float:
    """Return Campaign.fire commands per second on this database (sign_off, two levels)."""
    from reviewflow.testing import Cast, drive_to, seed_campaign

    campaign, clock = seed_campaign(store=url)
    cast = Cast.default()
    ids = [f"f-{i:05d}" for i in range(cases)]
    campaign.open_cases([{"case_id": c, "organization": f"支部{c}", "secretary":
                          cast.secretary(c)} for c in ids])
    for c in ids:
        drive_to(campaign, c, Stage.APPROVAL, cast=cast, clock=clock)
    signer = cast.reviewers[0]
    levels = len(campaign.policy.approval_levels)

    def fire_all() -> None:
        for c in ids:
            for _ in range(max(1, levels - 1)):
                campaign.fire(c, "sign_off", actor=signer, comment="同意")

    elapsed = _timed(fire_all)
    campaign.store.close()
    return cases * max(1, levels - 1) / elapsed


# ---------------------------------------------------------------------- entry point


def run(quick: bool = False) -> dict[str, Any]:
    """Measure every reachable database; return figures, ratios and the targets (met or not)."""
    repeats = 1 if quick else 3
    plan = {
        "sqlite": {"single_cases": 300 if quick else 1000, "batch_cases": 2000 if quick else 10000,
                   "steps": 2 if quick else 3, "fire_cases": 50 if quick else 300},
        "postgresql": {"single_cases": 150 if quick else 500,
                       "batch_cases": 1000 if quick else 5000,
                       "steps": 2 if quick else 3, "fire_cases": 30 if quick else 200},
        "mysql": {"single_cases": 100 if quick else 300, "batch_cases": 1000 if quick else 3000,
                  "steps": 2 if quick else 3, "fire_cases": 30 if quick else 150},
    }
    results: dict[str, Any] = {}
    targets = []
    rows = []
    for kind, sizes in plan.items():
        with _database(kind) as url:
            if url is None:
                results[kind] = {"status": "skipped: server not reachable"}
                continue
            print(f"  {kind}: measuring ({repeats} repeat(s))", flush=True)
            fig = _measure(kind, url, sizes, repeats)
        results[kind] = fig
        rows += [
            [kind, "single: bare driver, 1 commit/transition", fig["transitions_single"],
             f"{fig['single_bare_per_s']:,.0f}", "1.00"],
            [kind, "single: SqlStore.commit([step])", fig["transitions_single"],
             f"{fig['single_reviewflow_per_s']:,.0f}", f"{fig['single_ratio']:.2f}"],
            [kind, "single: Campaign.fire (engine + read)", "",
             f"{fig['campaign_fire_per_s']:,.0f}", f"{fig['campaign_fire_ratio']:.2f}"],
            [kind, f"batch: bare executemany, {BATCH}/commit", fig["transitions_batch"],
             f"{fig['batch_bare_per_s']:,.0f}", "1.00"],
            *([[kind, "batch: bare COPY + UPDATE FROM unnest", fig["transitions_batch"],
                f"{fig['batch_copy_unnest_per_s']:,.0f}",
                f"{fig['batch_copy_unnest_per_s'] / fig['batch_bare_per_s']:.2f}"]]
              if kind == "postgresql" else []),
            [kind, f"batch: SqlStore.commit({BATCH} steps)", fig["transitions_batch"],
             f"{fig['batch_reviewflow_per_s']:,.0f}",
             f"{fig['batch_ratio_vs_executemany']:.2f}"],
        ]
        targets += [
            {"what": f"{kind}: single commands vs bare one-commit-per-transition",
             "target": ">= 0.70", "value": fig["single_ratio"],
             "met": fig["single_ratio"] >= 0.70},
            {"what": f"{kind}: batch path vs the fastest bare batch measured",
             "target": ">= 0.40", "value": fig["batch_ratio"], "met": fig["batch_ratio"] >= 0.40},
        ]
    try:
        from bench.common import print_table
    except ImportError:  # run as a plain script
        print_table = None  # type: ignore[assignment]
    if print_table is not None and rows:
        print_table(f"durable store beside the bare driver (median of {repeats})",
                    ["db", "what", "transitions", "per s", "vs bare"], rows)
    return {"status": "ok", "repeats": repeats, "databases": results, "rows": rows,
            "targets": targets}


if __name__ == "__main__":
    if __package__ in (None, ""):
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    out = run(quick="--quick" in sys.argv)
    for t in out["targets"]:
        print(f"{t['what']}: {t['value']:.2f} (target {t['target']}): "
              f"{'met' if t['met'] else 'MISSED'}")
