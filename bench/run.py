"""Run the benchmarks: ``python -m bench`` (or ``python bench/run.py``).

Examples::

    python -m bench --quick                       # smoke run, a few seconds
    python -m bench --json bench-results.json     # the full run recorded in docs/benchmarks.md
    python -m bench --sections lifecycle --sizes 1k 10k --repeats 5
    python -m bench --sections lifecycle --variants baseline,tr_C1,reviewflow --sizes 100k

Every section runs in this one process (the demo as a subprocess), so the ratios between
reviewflow, its peers and the limit are measured under the same conditions. The machine
is shared and noisy: compare ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import fmt_bytes, fmt_num, fmt_size, machine_info, parse_size, print_table

SECTIONS = ("lifecycle", "memory", "store", "sweep", "scoring", "demo")
#: Sections written by other modules, each exposing ``run(quick: bool) -> dict``.
EXTERNAL = {"store": "bench.bench_store", "sweep": "bench.bench_sweep",
            "scoring": "bench.bench_scoring"}
FULL_SIZES = ("1k", "10k", "100k", "1M")
QUICK_SIZES = ("300",)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="reviewflow benchmarks beside their peers and the limit, in one process.",
        epilog="Example: python -m bench --sections lifecycle,memory --sizes 1k 10k --repeats 3",
    )
    p.add_argument("--quick", action="store_true",
                   help="smoke run of a few seconds: tiny sizes, one repeat (checks it runs)")
    p.add_argument("--sections", nargs="+", metavar="NAME",
                   help=f"sections to run (comma or space separated): {', '.join(SECTIONS)}")
    p.add_argument("--sizes", nargs="+", metavar="N",
                   help="case counts for the lifecycle section (e.g. 1k 10k 100k 1M)")
    p.add_argument("--mem-sizes", nargs="+", metavar="N",
                   help="case counts for the memory section (default 1k 10k 100k)")
    p.add_argument("--repeats", type=int, help="runs per variant and size (median; default 3)")
    p.add_argument("--variants", metavar="LIST",
                   help="lifecycle variants, comma separated: baseline,tr_C1,reviewflow,tr_A,psm")
    p.add_argument("--budget-s", type=float, default=60.0,
                   help="skip a lifecycle variant at a size when its projected run exceeds this "
                        "(default 60; baseline, tr_C1 and reviewflow always run up to 100k)")
    p.add_argument("--force", action="store_true", help="run every variant at every size")
    p.add_argument("--mem-max", default="100k",
                   help="largest size at which the lifecycle section measures bytes per case")
    p.add_argument("--demo-branches", type=int, help="branches for the demo section (1000)")
    p.add_argument("--demo-repeats", type=int, help="demo runs (default 3)")
    p.add_argument("--json", metavar="PATH", help="write every figure as JSON to PATH")
    return p


def _names(values: list[str] | None, allowed: tuple[str, ...]) -> list[str]:
    if not values:
        return list(allowed)
    out = []
    for v in values:
        for name in v.split(","):
            name = name.strip()
            if not name:
                continue
            if name not in allowed:
                raise SystemExit(f"unknown section {name!r}; sections are: {', '.join(allowed)}")
            out.append(name)
    return out


def _sizes(values: list[str] | tuple[str, ...]) -> list[int]:
    try:
        return sorted({parse_size(v) for item in values for v in item.split(",") if v})
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


def _write_json(path: str | None, data: dict[str, Any]) -> None:
    if not path:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n",
                   encoding="utf-8")
    os.replace(tmp, target)


def _memory_section(sizes: list[int]) -> dict[str, Any]:
    from bench import rf_lifecycle

    reason = rf_lifecycle.unavailable_reason()
    if reason is not None:
        return {"status": f"not yet available: {reason}"}
    out: dict[str, Any] = {"status": "ok", "target_bytes_per_case": 1024,
                           "method": (rf_lifecycle.memory_profile.__doc__ or "").strip(),
                           "sizes": {}}
    rows = []
    for n in sizes:
        stages = ("research", "drafting", "approval", "closed") if n <= 10_000 else (
            "research", "drafting")
        t0 = time.perf_counter()
        prof = rf_lifecycle.memory_profile(n, stages=stages, detail=n == max(sizes))
        print(f"  memory at {fmt_size(n)}: {time.perf_counter() - t0:.1f} s", flush=True)
        out["sizes"][fmt_size(n)] = prof
        for stage, m in prof["stages"].items():
            rows.append([fmt_size(n), stage, f"{m['records_per_case']:.0f}",
                         fmt_bytes(m["total_bytes_per_case"]),
                         fmt_bytes(m["history_bytes_per_case"]),
                         fmt_bytes(m["ex_history_bytes_per_case"])])
    print_table("reviewflow bytes per in-memory case (tracemalloc)",
                ["cases", "stage", "events/case", "total", "event history", "excluding history"],
                rows)
    largest = out["sizes"][fmt_size(max(sizes))]["stages"]
    for stage in ("research", "drafting"):
        lines = largest.get(stage, {}).get("by_line")
        if lines:
            print_table(
                f"where the bytes of a {stage} case stay ({fmt_size(max(sizes))} cases, "
                "history dropped)",
                ["source line", "bytes/case", "blocks/case", "code"],
                [[x["where"], fmt_bytes(x["bytes_per_case"]), f"{x['blocks_per_case']:.2f}",
                  x["code"][:70]] for x in lines],
            )
    value = largest["research"]["ex_history_bytes_per_case"]
    out["targets"] = [{
        "what": f"bytes per open case excluding event history ({fmt_size(max(sizes))}, research)",
        "target": "<= 1024", "value": value, "met": value <= 1024,
    }]
    if "drafting" in largest:
        value = largest["drafting"]["ex_history_bytes_per_case"]
        out["targets"].append({
            "what": f"same, after finish_research with a 3-problem list ({fmt_size(max(sizes))})",
            "target": "<= 1024", "value": value, "met": value <= 1024,
        })
    return out


def _external(name: str, quick: bool) -> dict[str, Any]:
    module_name = EXTERNAL[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return {"status": f"not yet available ({module_name}.py does not exist yet)"}
        raise
    run = getattr(module, "run", None)
    if run is None:
        return {"status": f"not yet available ({module_name} has no run(quick) function)"}
    result = run(quick=quick)
    if not isinstance(result, dict):
        return {"status": "error", "error": f"{module_name}.run returned {type(result).__name__}"}
    result.setdefault("status", "ok")
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections; print tables; write JSON; return the exit code."""
    args = _parser().parse_args(argv)
    sections = _names(args.sections, SECTIONS)
    quick = args.quick
    sizes = _sizes(args.sizes or (QUICK_SIZES if quick else FULL_SIZES))
    mem_sizes = _sizes(args.mem_sizes or (QUICK_SIZES if quick else ("1k", "10k", "100k")))
    repeats = args.repeats or (1 if quick else 3)
    if repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    demo_branches = args.demo_branches or (20 if quick else 1000)
    demo_repeats = args.demo_repeats or (1 if quick else 3)
    variants = [v.strip() for v in args.variants.split(",")] if args.variants else None
    mem_max = parse_size(args.mem_max)

    data: dict[str, Any] = {
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "quick": quick,
        "machine": machine_info(),
        "options": {"sections": sections, "sizes": sizes, "mem_sizes": mem_sizes,
                    "repeats": repeats, "budget_s": args.budget_s, "force": args.force,
                    "demo_branches": demo_branches, "demo_repeats": demo_repeats},
        "sections": {},
    }
    m = data["machine"]
    print(f"reviewflow bench {'(quick) ' if quick else ''}on {m['cpu']}, {m['cores']} cores, "
          f"Python {m['python']}, load {m['loadavg_start']}", flush=True)
    started = time.perf_counter()
    failed = False
    for name in sections:
        print(f"\n### section {name}", flush=True)
        t0 = time.perf_counter()
        try:
            if name == "lifecycle":
                from bench.lifecycle import run_lifecycle

                result = run_lifecycle(
                    sizes=sizes, repeats=repeats, budget_s=args.budget_s, force=args.force,
                    mem_max=mem_max, mem_time_cap_s=30.0, names=variants,
                )
            elif name == "memory":
                result = _memory_section(mem_sizes)
            elif name == "demo":
                from bench.demo import run_demo

                result = run_demo(branches=demo_branches, repeats=demo_repeats)
            else:
                result = _external(name, quick)
        except Exception as exc:
            traceback.print_exc()
            result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
        result["seconds"] = time.perf_counter() - t0
        status = str(result.get("status", "ok"))
        if status == "error":
            failed = True
        print(f"--- section {name}: {status} ({result['seconds']:.1f} s)", flush=True)
        data["sections"][name] = result
        _write_json(args.json, data)
    with contextlib.suppress(OSError):
        data["machine"]["loadavg_end"] = list(os.getloadavg())
    data["seconds"] = time.perf_counter() - started
    _summary(data)
    _write_json(args.json, data)
    if args.json:
        print(f"\nJSON written to {args.json}")
    return 1 if failed else 0


def _summary(data: dict[str, Any]) -> None:
    rows = []
    for name, result in data["sections"].items():
        targets = result.get("targets") if isinstance(result, dict) else None
        if isinstance(targets, list) and targets:
            for t in targets:
                met = t.get("met")
                value = t.get("value")
                shown = fmt_num(value) if isinstance(value, int | float) else str(value)
                rows.append([name, t.get("what", ""), t.get("target", ""), shown,
                             {True: "met", False: "MISSED", None: ""}.get(met, str(met))])
        else:
            rows.append([name, "", "", "", str(result.get("status", "ok"))])
    print_table(f"summary ({data['seconds']:.0f} s in all)",
                ["section", "what", "target", "measured", "status"], rows)


if __name__ == "__main__":
    raise SystemExit(main())
