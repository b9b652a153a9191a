"""Time a ballot cast while every cast writes its whole round again (ballot secrecy).

    python -m bench.ballot_secrecy [sqlite] [postgresql] [mysql] [--sizes 40,400,2000]
                                   [--in-python]

For each database and each round size N: a scratch database, a case in evaluation, N
ballots already in the round (written as a cast writes them), then 20 casts timed one by
one through ``Campaign.cast_ballot``; prints the median and the slowest cast, and the
time to cast a whole meeting of N one after the other (estimated as N times the mean
of the medians at the smallest size and at N: the cost of a cast grows linearly with
the round). PostgreSQL and
MySQL come from ``REVIEWFLOW_TEST_POSTGRES`` / ``REVIEWFLOW_TEST_MYSQL`` (the test
suite's defaults otherwise); each run makes and drops its own schema or database.
``--in-python`` times the rewrite through Python (read, shuffle, write back), the way
taken where the server has no random source in SQL, instead of inside the database.
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pendulum
import sqlalchemy as sa

import reviewflow as rf
from reviewflow.store import _schema as s
from reviewflow.store import _secrecy
from reviewflow.store.sql import SqlStore
from reviewflow.testing import Cast, drive_to

SERVERS = {
    "postgresql": os.environ.get("REVIEWFLOW_TEST_POSTGRES",
                                 "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("REVIEWFLOW_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
TIMED = 20


@contextmanager
def scratch(kind: str) -> Iterator[str]:
    """Yield the URL of a new, empty database of ``kind``; drop it afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'bench.db'}"
        return
    name = f"rf_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(SERVERS[kind], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"' if kind == "postgresql" else
                             f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 "
                             "COLLATE utf8mb4_bin"))
    url = sa.make_url(SERVERS[kind])
    url = (url.update_query_dict({"options": f"-csearch_path={name}"})
           if kind == "postgresql" else url.set(database=name))
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE' if kind == "postgresql"
                                 else f"DROP DATABASE `{name}`"))
        admin.dispose()


def measure(kind: str, size: int) -> dict[str, float]:
    """Return the median and slowest cast (ms) into a round already holding ``size``."""
    cast = Cast.default()
    with scratch(kind) as url:
        store = SqlStore(url)
        clock = rf.FrozenClock(pendulum.datetime(2016, 1, 4, 9, tz="Asia/Shanghai"))
        campaign = rf.Campaign(rf.Policy.default(year=2016), clock=clock, store=store,
                               campaign_id="bench")
        campaign.open_case("s1", organization="第一中学党支部", secretary=cast.secretary("s1"))
        drive_to(campaign, "s1", rf.Stage.EVALUATION, cast=cast, clock=clock)
        issued = campaign.issue_ballot_tokens("s1", {"party_member": size + TIMED},
                                              actor=cast.organizer)
        earlier, timed = issued[:size], issued[size:]
        with store.transaction() as conn:  # the round as `size` casts would have left it
            if earlier:
                conn.execute(sa.insert(s.ballots), [
                    {"campaign_id": "bench", "case_id": "s1", "round": 1,
                     "slot": secrets.token_hex(16), "ballot_id": secrets.token_hex(8),
                     "category": "party_member", "choice": "good"} for _ in earlier])
            conn.execute(sa.update(s.ballot_tokens).where(
                s.ballot_tokens.c.token_hash.in_([rf.ballots.token_hash(t.token)
                                                  for t in earlier])).values(used=True))
        times = []
        for token in timed:
            start = time.perf_counter()
            campaign.cast_ballot("s1", token.token, "good")
            times.append((time.perf_counter() - start) * 1000)
        store.close()
    return {"median_ms": statistics.median(times), "max_ms": max(times)}


def main(argv: list[str] | None = None) -> int:
    """Run from the command line; return the exit status."""
    args = sys.argv[1:] if argv is None else argv
    sizes = [40, 400, 2000]
    if "--sizes" in args:
        at = args.index("--sizes")
        sizes = [int(x) for x in args[at + 1].split(",")]
        args = args[:at] + args[at + 2:]
    if "--in-python" in args:
        args = [a for a in args if a != "--in-python"]
        _secrecy._in_database = lambda conn: None  # type: ignore[assignment]
    kinds = args or ["sqlite", "postgresql", "mysql"]
    print(f"{'database':<12}{'ballots':>8}{'median ms':>11}{'max ms':>9}{'meeting s':>11}")
    for kind in kinds:
        rows = [(n, measure(kind, n)) for n in sizes]
        first = rows[0][1]["median_ms"]
        for n, r in rows:
            # a meeting of n casts one after the other: the cost grows linearly with the round
            meeting = n * (first + r["median_ms"]) / 2 / 1000
            print(f"{kind:<12}{n:>8}{r['median_ms']:>11.2f}{r['max_ms']:>9.2f}{meeting:>11.1f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
