"""Benchmark: ``Campaign.verify()`` at 10k and 100k cases, streamed, on SQLite and PostgreSQL.

Each case is driven through the engine (``fire_many``, batches of 1,000 per transaction)
from opening to the end of the evaluation: open, research, report, two sign-offs, the
meeting, two comments and the evaluation with its vote, 9 sealed events per case. Then a
fresh process opens the store and runs ``verify()`` (chains, the replay compared with
every stored case field by field, the ballot recount, the policy), timed, with its peak
resident memory (``ru_maxrss``). Linear time and bounded memory: the 100k run should take
about 10 times the 10k run's time and about the same peak memory.

    python -m bench.bench_verify                       # sqlite and postgresql, 10k and 100k
    python -m bench.bench_verify --sizes 10k --stores sqlite

PostgreSQL: ``$REVIEWFLOW_TEST_POSTGRES`` (default the local test server); each run makes
its own schema and drops it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pendulum
import sqlalchemy as sa

import reviewflow as rf
from reviewflow.testing import Cast, passing_report

TZ = "Asia/Shanghai"
PG_ADMIN = os.environ.get("REVIEWFLOW_TEST_POSTGRES",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CAMPAIGN = "bench-verify"
VOTE = {"good": 10, "fairly_good": 5, "average": 3, "poor": 2}


def _sizes(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        out.append(int(float(part[:-1]) * 1000) if part.endswith("k") else int(part))
    return out


def build(url: str, n: int) -> dict[str, Any]:
    """Drive ``n`` cases to the end of the evaluation in the store at ``url``."""
    cast = Cast.default()
    # one secretary for every case (allowed), so that the reports go in batches too
    secretary = rf.Actor("sec-bench", "书记", roles={"secretary"})
    clock = rf.FrozenClock(pendulum.datetime(2016, 1, 4, 9, tz=TZ))
    campaign = rf.Campaign(rf.Policy.default(year=2016), clock=clock, store=url,
                           campaign_id=CAMPAIGN)
    start = time.perf_counter()
    report = passing_report()
    for lo in range(0, n, 1000):
        ids = [f"case-{i:07d}" for i in range(lo, min(n, lo + 1000))]
        campaign.open_cases([{"case_id": cid, "organization": f"{cid}党支部",
                              "secretary": secretary} for cid in ids])

        def fire(event: str, actor: Any, ids: list[str] = ids, **data: Any) -> None:
            for r in campaign.fire_many(ids, event, actor=actor, **data):
                if not r.ok:
                    raise RuntimeError(f"{event} {r.case_id}: {r.error}")

        fire("finish_research", cast.organizer, problems=["组织生活不规范"])
        fire("submit_report", secretary, report=report)
        first = cast.signer(campaign, campaign.case(ids[0]))
        fire("sign_off", first, comment="同意")
        second = cast.signer(campaign, campaign.case(ids[0]))
        fire("sign_off", second, comment="同意")
        opens = campaign.policy.stage(rf.Stage.MEETING).opens
        if opens is not None and clock.now() < opens:
            clock.set(opens.add(hours=9))
        fire("hold_meeting", cast.organizer, attendance={"party_members": 20})
        fire("comment", cast.superior, text="工作扎实")
        fire("comment", cast.delegate, text="成效明显")
        fire("finish_evaluation", cast.organizer, vote=VOTE)
    built = time.perf_counter() - start
    campaign.store.close()
    return {"build_s": round(built, 1)}


def measure(url: str) -> dict[str, Any]:
    """Run ``verify()`` in this process; return its time and this process's peak RSS."""
    campaign = rf.Campaign(rf.Policy.default(year=2016), store=url, campaign_id=CAMPAIGN)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    before, cpu0 = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    report = campaign.verify()
    took = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu0
    campaign.store.close()
    return {"cases": report.cases, "events": report.events, "ok": report.ok,
            "verify_s": round(took, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": round(peak / 1024, 1),
            "rss_before_mb": round(before / 1024, 1)}


def _pg_schema() -> tuple[str, str]:
    name = f"rf_bench_{secrets.token_hex(4)}"
    engine = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    engine.dispose()
    url = sa.make_url(PG_ADMIN).update_query_dict(
        {"options": f"-csearch_path={name} -csynchronous_commit=off"})
    return name, url.render_as_string(hide_password=False)


def _drop_pg(name: str) -> None:
    engine = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
    engine.dispose()


def _in_child(mode: str, url: str, n: int = 0) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.bench_verify", "--child", mode,
                          "--url", url, "--n", str(n)], capture_output=True, text=True,
                         check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(sizes: list[int], stores: list[str]) -> list[dict[str, Any]]:
    rows = []
    for kind in stores:
        for n in sizes:
            tmp = tempfile.TemporaryDirectory()
            schema = None
            if kind == "sqlite":
                url = f"sqlite:///{Path(tmp.name) / 'verify.db'}?synchronous=normal"
            else:
                schema, url = _pg_schema()
            try:
                built = _in_child("build", url, n)
                if kind == "postgresql":
                    engine = sa.create_engine(url)
                    with engine.begin() as conn:
                        conn.execute(sa.text("ANALYZE"))
                    engine.dispose()
                measured = _in_child("measure", url)
            finally:
                if schema is not None:
                    _drop_pg(schema)
                tmp.cleanup()
            row = {"store": kind, "n": n, **built, **measured}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10k,100k")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--child", choices=["build", "measure"])
    parser.add_argument("--url")
    parser.add_argument("--n", type=int, default=0)
    args = parser.parse_args(argv)
    if args.child == "build":
        print(json.dumps(build(args.url, args.n)))
        return 0
    if args.child == "measure":
        print(json.dumps(measure(args.url)))
        return 0
    rows = run(_sizes(args.sizes), [s.strip() for s in args.stores.split(",")])
    print("| store | cases | events | verify, wall (s) | verify, CPU of the process (s) | "
          "CPU µs per event | peak RSS (MB) | problems |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        per = r["cpu_s"] / max(1, r["events"]) * 1e6
        print(f"| {r['store']} | {r['cases']:,} | {r['events']:,} | {r['verify_s']} | "
              f"{r['cpu_s']} | {per:.0f} | {r['peak_rss_mb']} | {0 if r['ok'] else 'some'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
