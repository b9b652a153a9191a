"""Run reviewflow's reliability suite in its long form and print the figures.

    python -m bench.reliability_long                 # everything, long form
    python -m bench.reliability_long -k model        # one part (a pytest -k expression)
    python -m bench.reliability_long --ci            # the CI form, with figures

The long form sets ``REVIEWFLOW_LONG=1``: 10,000 examples per backend for the
model-based test, 10 kills of the PostgreSQL server, 10,000 casts over 1,000 tokens on
SQLite and PostgreSQL, 10,000 fuzzed files per reader. The figures every test records
are written to ``bench/results/reliability.json`` (or ``--json PATH``) and printed;
docs/reliability.md quotes them. Needs the PostgreSQL and MySQL servers of
``tests/conftest.py`` (``REVIEWFLOW_TEST_POSTGRES`` / ``REVIEWFLOW_TEST_MYSQL``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    """Run the suite; return pytest's exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", dest="select", default=None, help="a pytest -k expression")
    parser.add_argument("--ci", action="store_true", help="the CI form instead of the long form")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "reliability.json"),
                        help="where to write the figures")
    args = parser.parse_args(argv)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    env = {**os.environ, "REVIEWFLOW_FIGURES": str(out)}
    if not args.ci:
        env["REVIEWFLOW_LONG"] = "1"
    command = [sys.executable, "-m", "pytest", "tests/reliability", "-q", "-rs", "--durations=0"]
    if args.select:
        command += ["-k", args.select]
    started = time.monotonic()
    code = subprocess.call(command, cwd=ROOT, env=env)
    elapsed = time.monotonic() - started
    figures = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    for test, values in sorted(figures.items()):
        print(f"\n{test}")
        for key, value in values.items():
            print(f"  {key}: {json.dumps(value, ensure_ascii=False, default=str)}")
    print(f"\n{'long' if not args.ci else 'CI'} form: {elapsed:.0f} s, exit code {code}, "
          f"figures in {out}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
