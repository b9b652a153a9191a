"""Profile the reviewflow lifecycle variant with cProfile: where does a step's time go?

    python -m bench.profile_rf --cases 10000 --top 40
    python -m bench.profile_rf --cases 10000 --phase submit_report --out rf.pstats

Prints the functions with the most own time, and the most cumulative time, over the
drive phases (``open_case`` included unless ``--phase`` picks one event).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import parse_size
from bench.rf_lifecycle import _open, _phases, _world


def main(argv: list[str] | None = None) -> int:
    """Run the lifecycle once under cProfile and print the hottest functions."""
    p = argparse.ArgumentParser(prog="python -m bench.profile_rf", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default="10k", help="number of cases (default 10k)")
    p.add_argument("--top", type=int, default=35, help="rows per listing (default 35)")
    p.add_argument("--phase", help="profile only this event's phase (e.g. submit_report)")
    p.add_argument("--out", help="also write the raw stats to this file (pstats format)")
    args = p.parse_args(argv)
    n = parse_size(args.cases)
    w = _world(n)
    phases = _phases(w)
    prof = cProfile.Profile()
    gc.collect()
    if args.phase in (None, "open_case"):
        prof.enable()
    _open(w)
    prof.disable()
    for event, run in phases:
        w.clock.set(w.times[event])
        if args.phase in (None, event):
            prof.enable()
        run()
        prof.disable()
    if args.out:
        prof.dump_stats(args.out)
    for key in ("tottime", "cumulative"):
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf)
        stats.strip_dirs().sort_stats(key).print_stats(args.top)
        print(f"\n######## sorted by {key}\n{buf.getvalue()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
