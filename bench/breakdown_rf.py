"""Attribute the reviewflow lifecycle's time to the engine's parts, with little distortion.

    python -m bench.breakdown_rf --cases 10k --repeats 3

cProfile instruments every call and inflates small functions; this wraps only a dozen
of the engine's functions with a timer (about 0.1-0.2 µs per wrapped call) and reports
µs per step (a step is one fired event; 10 per case). Parts nest: "of which" lines are
contained in the line above them. Functions that do not exist (the engine moved on) are
skipped, so the tool keeps working as the engine changes; it reaches into private names
on purpose and is not part of the public benchmark.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import parse_size, print_table
from bench.rf_lifecycle import _events_per_case, _open, _phases, _world, warm_up

_ACC: dict[str, float] = {}

#: (module, owner attribute or "", function name, label); owner "" wraps a module function.
_PARTS = (
    ("reviewflow.campaign", "Campaign", "fire", "Campaign.fire (whole step)"),
    ("reviewflow.campaign", "Campaign", "fire_many", "Campaign.fire_many (whole batch step)"),
    ("reviewflow.store.memory", "MemoryStore", "get", "  MemoryStore.get (a fresh Case)"),
    ("reviewflow._engine.pipeline", "Engine", "now", "  Engine.now()"),
    ("reviewflow.permissions", "", "guard", "  permissions.guard(): stage, role, time rules"),
    ("reviewflow._engine.pipeline", "Engine", "_late", "  Engine._late(): soft deadline"),
    ("reviewflow._engine.machine", "Lifecycle", "step", "  Lifecycle.step (transitions machine)"),
    ("reviewflow._engine.pipeline", "Engine", "commit", "  Engine.commit() (batches)"),
    ("reviewflow._engine.pipeline", "Engine", "_commit_one", "  Engine._commit_one() (single commands)"),
    ("reviewflow._engine.deadline_work", "DeadlineWork", "commit_extras",
     "  commit_extras (deadline index row; steps that move the stage)"),
    ("reviewflow.store.memory", "MemoryStore", "commit",
     "    of which MemoryStore.commit (both paths)"),
    ("reviewflow.store.memory", "MemoryStore", "_apply",
     "      of which _apply (snapshot, history, extras)"),
    ("reviewflow.store._memory_index", "MemoryIndex", "apply",
     "        of which deadline index apply (heap)"),
    ("reviewflow._engine.pipeline", "Engine", "after_commit", "    of which Engine.after_commit"),
)


def _timed(fn: Callable[..., Any], label: str) -> Callable[..., Any]:
    clock = time.perf_counter

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            _ACC[label] = _ACC.get(label, 0.0) + clock() - t0

    return wrapper


def _install() -> list[str]:
    """Wrap the parts that exist; return the labels of those that do not."""
    missing = []
    for module_name, owner_name, fn_name, label in _PARTS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            missing.append(label)
            continue
        owner: Any = getattr(module, owner_name, None) if owner_name else module
        fn = getattr(owner, fn_name, None) if owner is not None else None
        if fn is None:
            missing.append(label)
            continue
        setattr(owner, fn_name, _timed(fn, label))
    try:
        steps = importlib.import_module("reviewflow._steps")
        handlers: dict[str, Any] = steps.HANDLERS
    except (ImportError, AttributeError):
        missing.append("event handlers")
        return missing
    for event, handler in list(handlers.items()):
        handlers[event] = _timed(handler, f"  handler {event} (data checks)")
    # EventRecord.make is a classmethod: wrap the function under it.
    model = importlib.import_module("reviewflow.model")
    make = getattr(model.EventRecord, "make", None)
    if make is not None:
        model.EventRecord.make = classmethod(
            _timed(make.__func__, "  EventRecord.make (canonical JSON + sha256)")
        )
    return missing


def _one_run(n: int) -> tuple[float, dict[str, float]]:
    w = _world(n)
    _open(w)
    phases = _phases(w)
    _ACC.clear()
    gc.collect()
    t0 = time.perf_counter()
    for event, run in phases:
        w.clock.set(w.times[event])
        run()
    return time.perf_counter() - t0, dict(_ACC)


def main(argv: list[str] | None = None) -> int:
    """Run the lifecycle with the parts timed; print µs per step for each part."""
    p = argparse.ArgumentParser(prog="python -m bench.breakdown_rf", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default="10k", help="number of cases (default 10k)")
    p.add_argument("--repeats", type=int, default=3, help="runs; medians are shown (default 3)")
    args = p.parse_args(argv)
    n = parse_size(args.cases)
    warm_up()
    plain = [_one_run(n)[0] for _ in range(args.repeats)]
    missing = _install()
    runs = [_one_run(n) for _ in range(args.repeats)]
    import reviewflow

    levels = len(reviewflow.Policy.default(year=2016).approval_levels)
    steps = n * _events_per_case(levels)
    labels = sorted({k for _, acc in runs for k in acc},
                    key=lambda k: [x[3] for x in _PARTS].index(k)
                    if k in [x[3] for x in _PARTS] else 100)
    rows = [[label, f"{statistics.median(acc.get(label, 0.0) for _, acc in runs) / steps * 1e6:.2f}"]
            for label in labels]
    rows.append(["drive, parts timed", f"{statistics.median(t for t, _ in runs) / steps * 1e6:.2f}"])
    rows.append(["drive, nothing timed", f"{statistics.median(plain) / steps * 1e6:.2f}"])
    print_table(f"reviewflow: µs per step by part ({n:,} cases, {steps:,} steps, medians of "
                f"{args.repeats})", ["part", "µs/step"], rows)
    if missing:
        print("not found (skipped):", ", ".join(m.strip() for m in missing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
