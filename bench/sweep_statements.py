"""Time the SQL statements of one durable sweep, by statement.

    python -m bench.sweep_statements postgresql 100000 10000 [--no-pipeline]

Builds N cases with k first rungs due (the same bulk setup as ``bench.bench_sweep``) on a
scratch database of the kind given (``sqlite`` or ``postgresql``), runs the timed sweep, and
prints the wall time spent in each statement the sweep sent through SQLAlchemy's
``exec_driver_sql``, summed by statement. On a server the sweep overlaps commits with
building (a worker thread): the statement times then include waits for the interpreter lock;
``--no-pipeline`` runs the batches one after the other.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from sqlalchemy.engine import Connection

from bench import bench_sweep
from reviewflow.store.sql import SqlStore


def main(argv: list[str] | None = None) -> int:
    """Run from the command line; return the exit status."""
    args = sys.argv[1:] if argv is None else argv
    flags = {a for a in args if a.startswith("--")}
    rest = [a for a in args if not a.startswith("--")]
    kind = rest[0] if rest else "postgresql"
    n = int(rest[1]) if len(rest) > 1 else 100_000
    k = int(rest[2]) if len(rest) > 2 else 10_000
    spent: dict[str, float] = {}
    original = Connection.exec_driver_sql

    def timed(self: Connection, statement: Any, *a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(self, statement, *a, **kw)
        finally:
            key = " ".join(str(statement).split())[:70]
            spent[key] = spent.get(key, 0.0) + time.perf_counter() - t0

    server = SqlStore.server
    Connection.exec_driver_sql = timed  # type: ignore[method-assign]
    if "--no-pipeline" in flags:
        SqlStore.server = property(lambda self: False)  # type: ignore[assignment,method-assign]
    try:
        out = bench_sweep._sql_series(kind, n, k)
    finally:
        Connection.exec_driver_sql = original  # type: ignore[method-assign]
        SqlStore.server = server  # type: ignore[method-assign]
    if out is None:
        print(f"{kind}: server not reachable")
        return 1
    for statement, seconds in sorted(spent.items(), key=lambda item: -item[1])[:12]:
        print(f"{seconds:7.3f} s  {statement}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
