"""Benchmark: scores, grades and ranks for many cases, and tallying ballots, beside bare Python.

Two measurements, each in one process with its baseline measured in the same run:

* **results**: :func:`reviewflow.scoring.score_table` on 1,000,000 case tallies (seed
  scale, 2 places half-up, default bands, a 30% quota on 好): scores, grades and
  competition ranks. Target: at most 3 s. Also timed: turning every score into a
  ``Decimal`` (what a host gets when it asks for all of them).
* **tally**: :func:`reviewflow.ballots.tally` over 10,000,000 ballot choices beside a
  bare Python counting loop (a dict of counts, ``counts[c] += 1``). Target: at least
  half the loop's speed. Also: recounting stored ``Ballot`` objects of one round beside
  the same loop over the objects.

Run alone with ``python -m bench.bench_scoring [--quick]``; ``bench/run.py`` calls :func:`run`.
"""

from __future__ import annotations

import gc
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from reviewflow.ballots import Ballot, VoteRound, recount, tally
from reviewflow.scoring import Quota, ScoringPolicy, score_table

_KEYS = ("good", "fairly_good", "average", "poor")
# the same mix as research/perf-anchors.md section 6: .55/.28/.12/.03, plus 2% blank
_WEIGHTS = (55, 28, 12, 3, 2)


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Return the median wall time of ``repeat`` runs of ``fn`` and its last result."""
    times = []
    result = None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2], result


def _tallies(n: int, rnd: random.Random) -> list[tuple[int, int, int, int]]:
    """Make ``n`` tallies of 20–120 ballots each (from a pool of distinct ones)."""
    pool = []
    for _ in range(min(n, 100_000)):
        size = rnd.randint(20, 120)
        counts = [0, 0, 0, 0]
        for k in rnd.choices(range(4), weights=_WEIGHTS[:4], k=size):
            counts[k] += 1
        pool.append((counts[0], counts[1], counts[2], counts[3]))
    return [pool[i % len(pool)] for i in range(n)]


def bare_count(choices: list[str | None]) -> dict[str | None, int]:
    """The baseline: a plain Python loop counting into a dict."""
    counts: dict[str | None, int] = dict.fromkeys((*_KEYS, None), 0)
    for c in choices:
        counts[c] += 1
    return counts


def run(quick: bool = False) -> dict[str, Any]:
    """Run both measurements; return figures, ratios and the targets (met or not)."""
    rnd = random.Random(20160118)
    n_cases = 100_000 if quick else 1_000_000
    n_ballots = 1_000_000 if quick else 10_000_000
    n_objects = 20_000 if quick else 200_000
    repeat = 1 if quick else 3
    policy = ScoringPolicy(quotas=[Quota(grade="good", max_share="3/10")])

    tallies = _tallies(n_cases, rnd)
    t_table, table = _best(lambda: score_table(tallies, policy), repeat)
    t_decimals, _ = _best(table.scores, repeat)
    n_good = sum(1 for g in table.grades if g == 0)
    del table

    options: list[str | None] = [*_KEYS, None]
    choices = rnd.choices(options, weights=_WEIGHTS, k=n_ballots)
    t_bare, bare = _best(lambda: bare_count(choices), repeat)
    t_rf, counted = _best(lambda: tally(choices), repeat)
    if counted.counts != {k: bare[k] for k in _KEYS} or counted.blank != bare[None]:
        raise AssertionError("tally() and the bare loop disagree")
    choices.clear()  # free the memory before the next part

    rnd_ids = [f"{rnd.getrandbits(64):016x}" for _ in range(n_objects)]
    ballots = {
        bid: Ballot(ballot_id=bid, round=1, category="public", choice=c)
        for bid, c in zip(rnd_ids, rnd.choices(options, weights=_WEIGHTS, k=n_objects),
                          strict=True)
    }
    vr = VoteRound(number=1, issued={"public": n_objects}, ballots=ballots)

    def bare_objects() -> dict[str | None, int]:
        counts: dict[str | None, int] = dict.fromkeys(options, 0)
        for b in vr.ballots.values():
            counts[b.choice] += 1
        return counts

    t_obj_bare, _ = _best(bare_objects, repeat)
    t_obj_rf, _ = _best(lambda: recount(vr), repeat)

    ratio = t_bare / t_rf
    results = [
        ["score_table (scores, grades, ranks)", n_cases, f"{t_table:.3f}",
         f"{n_cases / t_table / 1e6:.2f} M cases/s", ""],
        ["  + every score as Decimal", n_cases, f"{t_decimals:.3f}",
         f"{n_cases / t_decimals / 1e6:.2f} M cases/s", ""],
        ["bare loop counting choices", n_ballots, f"{t_bare:.3f}",
         f"{n_ballots / t_bare / 1e6:.1f} M ballots/s", "1.00"],
        ["reviewflow tally()", n_ballots, f"{t_rf:.3f}",
         f"{n_ballots / t_rf / 1e6:.1f} M ballots/s", f"{ratio:.2f}"],
        ["bare loop over Ballot objects", n_objects, f"{t_obj_bare:.3f}",
         f"{n_objects / t_obj_bare / 1e6:.1f} M ballots/s", "1.00"],
        ["reviewflow recount() of a round", n_objects, f"{t_obj_rf:.3f}",
         f"{n_objects / t_obj_rf / 1e6:.1f} M ballots/s", f"{t_obj_bare / t_obj_rf:.2f}"],
    ]
    try:
        from bench.common import print_table
    except ImportError:  # run as a plain script
        print_table = None  # type: ignore[assignment]
    if print_table is not None:
        print_table(f"scoring and tallying (median of {repeat})",
                    ["what", "n", "s", "rate", "speed vs bare loop"], results)
    return {
        "status": "ok",
        "cases": n_cases,
        "ballots": n_ballots,
        "repeat": repeat,
        "score_table_s": t_table,
        "scores_as_decimal_s": t_decimals,
        "good_after_quota": n_good,
        "tally_s": t_rf,
        "bare_loop_s": t_bare,
        "tally_speed_vs_bare": ratio,
        "recount_objects": n_objects,
        "recount_s": t_obj_rf,
        "bare_objects_s": t_obj_bare,
        "rows": results,
        "targets": [
            {"what": f"results for {n_cases:,} cases", "target": "<= 3 s",
             "value": t_table, "met": t_table <= 3.0 if not quick else None},
            {"what": f"tally {n_ballots:,} ballots vs bare loop", "target": ">= 0.5x",
             "value": ratio, "met": ratio >= 0.5},
        ],
    }


if __name__ == "__main__":
    out = run(quick="--quick" in sys.argv)
    for t in out["targets"]:
        print(f"{t['what']}: {t['value']:.3g} (target {t['target']}): "
              f"{ {True: 'met', False: 'MISSED', None: 'not judged in --quick'}[t['met']] }")
