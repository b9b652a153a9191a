"""The lifecycle section: reviewflow beside its peers and the limit, round-robin in one process."""

from __future__ import annotations

import gc
import traceback
from collections.abc import Sequence
from typing import Any

from bench.common import (
    fmt_bytes,
    fmt_num,
    fmt_ratio,
    fmt_size,
    median,
    print_table,
)
from bench.peers import PEERS

__all__ = ["TARGETS", "run_lifecycle", "variants"]

#: Targets this section reports on (from the issues that own them).
TARGETS = {
    "per_transition_vs_tr_C1": 2.0,      # reviewflow at most 2x the bare shared machine
    "per_case_speedup_vs_per_case_machines": 10.0,  # at least 10x faster than tr_A and psm
    "growth_1k_to_100k": 1.5,             # per-case cost at 100k within 1.5x of 1k
}

#: Variants that always run up to this size, whatever the budget projects.
REQUIRED_UPTO = {"baseline": 100_000, "tr_C1": 100_000, "reviewflow": 100_000}


def variants(names: Sequence[str] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Return the runnable variants by name, and the ones that cannot run with the reason."""
    from bench import rf_lifecycle

    out: dict[str, Any] = {}
    missing: dict[str, str] = {}
    wanted = list(names) if names else ["baseline", "tr_C1", "reviewflow", "tr_A", "psm"]
    for name in wanted:
        if name == "reviewflow":
            reason = rf_lifecycle.unavailable_reason()
            if reason is None:
                out[name] = rf_lifecycle.ReviewflowLifecycle()
            else:
                missing[name] = f"not yet available: {reason}"
        elif name == "reviewflow_mac":
            out[name] = rf_lifecycle.ReviewflowMacLifecycle()
        elif name in PEERS:
            if name == "psm":
                try:
                    import statemachine  # noqa: F401
                except ImportError:
                    missing[name] = "python-statemachine is not installed (pip install '.[bench]')"
                    continue
            out[name] = PEERS[name]
        else:
            known = ", ".join(["reviewflow", "reviewflow_mac", *PEERS])
            raise SystemExit(f"unknown variant {name!r}; variants are: {known}")
    return out, missing


def _summary(runs: list[dict[str, Any]], n: int, per_case_steps: int) -> dict[str, Any]:
    totals = [r["create_s"] + r["drive_s"] for r in runs]
    create = median([r["create_s"] for r in runs])
    drive = median([r["drive_s"] for r in runs])
    total = median(totals)
    out: dict[str, Any] = {
        "n": n,
        "runs": len(runs),
        "create_s": create,
        "drive_s": drive,
        "total_s": total,
        "spread_total_s": [min(totals), max(totals)],
        "us_per_case": total / n * 1e6,
        "us_per_transition": drive / (n * per_case_steps) * 1e6,
        # The least disturbed run: on a shared machine, a check on the medians' ratios.
        "best_us_per_case": min(totals) / n * 1e6,
        "best_us_per_transition": min(r["drive_s"] for r in runs) / (n * per_case_steps) * 1e6,
        "transitions_per_case": per_case_steps,
        "raw": runs,
    }
    phases = [r["phase_s"] for r in runs if "phase_s" in r]
    if phases:
        out["phase_us_per_case"] = {
            k: median([p[k] for p in phases]) / n * 1e6 for k in phases[0]
        }
    return out


def run_lifecycle(
    *,
    sizes: Sequence[int],
    repeats: int,
    budget_s: float,
    force: bool,
    mem_max: int,
    mem_time_cap_s: float,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run every variant at every size, round-robin, and return figures, ratios and targets."""
    active, missing = variants(names)
    results: dict[str, dict[str, Any]] = {name: {} for name in active}
    for name, reason in missing.items():
        results[name] = {"status": reason}
    errors: dict[str, str] = {}
    for n in sorted(sizes):
        runnable = []
        for name in active:
            if name in errors:
                results[name][fmt_size(n)] = {"n": n, "skipped": "failed at a smaller size"}
                continue
            projected = _projected(results[name], n)
            required = REQUIRED_UPTO.get(name, 0)
            if (not force and projected is not None and projected > budget_s
                    and n > required):
                results[name][fmt_size(n)] = {
                    "n": n, "skipped": f"projected {projected:.0f} s per run > budget {budget_s:.0f} s",
                    "projected_s": projected,
                }
                print(f"  skip {name} at {fmt_size(n)}: projected {projected:.0f} s per run",
                      flush=True)
                continue
            runnable.append(name)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in runnable}
        for rep in range(repeats):
            k = rep % len(runnable) if runnable else 0
            for name in runnable[k:] + runnable[:k]:
                if name in errors:
                    continue
                try:
                    r = active[name].run(n)
                except Exception as exc:
                    errors[name] = f"{type(exc).__name__}: {exc}"
                    print(f"  {name} at {fmt_size(n)} FAILED: {errors[name]}", flush=True)
                    traceback.print_exc()
                    continue
                runs[name].append(r)
                print(f"  {name:<10} {fmt_size(n):>5} run {rep + 1}/{repeats}: "
                      f"create {r['create_s']:.3f} s, drive {r['drive_s']:.3f} s", flush=True)
                gc.collect()
        for name in runnable:
            if not runs[name]:
                results[name][fmt_size(n)] = {"n": n, "error": errors.get(name, "no run")}
                continue
            summary = _summary(runs[name], n, active[name].transitions_per_case)
            if n <= mem_max and (force or summary["total_s"] <= mem_time_cap_s):
                try:
                    summary["memory"] = active[name].memory(n)
                    summary["bytes_per_case"] = summary["memory"]["bytes_per_case"]
                except Exception as exc:
                    summary["memory"] = {"error": f"{type(exc).__name__}: {exc}"}
            results[name][fmt_size(n)] = summary
        _print_size(n, results)
    out = {
        "status": "error" if errors else "ok",
        "errors": errors,
        "sizes": [fmt_size(n) for n in sorted(sizes)],
        "repeats": repeats,
        "budget_s": budget_s,
        "variants": {name: getattr(v, "description", "") for name, v in active.items()},
        "results": results,
    }
    out["ratios"] = _ratios(results, sorted(sizes))
    out["growth"] = _growth(results)
    out["targets"] = _targets(out)
    _print_ratios(out)
    return out


def _projected(per_size: dict[str, Any], n: int) -> float | None:
    """Project seconds per run at ``n`` from the largest size measured so far (linear)."""
    best = None
    for entry in per_size.values():
        if isinstance(entry, dict) and "us_per_case" in entry and (
            best is None or entry["n"] > best["n"]
        ):
            best = entry
    if best is None:
        return None
    return float(best["us_per_case"]) * n / 1e6


def _row(results: dict[str, Any], name: str, n: int) -> dict[str, Any] | None:
    entry = results.get(name, {}).get(fmt_size(n))
    return entry if isinstance(entry, dict) and "us_per_case" in entry else None


def _print_size(n: int, results: dict[str, Any]) -> None:
    base = _row(results, "baseline", n)
    trc = _row(results, "tr_C1", n)
    rows = []
    for name in results:
        entry = results[name].get(fmt_size(n))
        if not isinstance(entry, dict):
            continue
        if "us_per_case" not in entry:
            rows.append([name, "", "", "", "", "", "", "", entry.get("skipped") or entry.get("error")])
            continue
        lo, hi = entry["spread_total_s"]
        rows.append([
            name,
            entry["runs"],
            fmt_num(entry["create_s"]),
            fmt_num(entry["drive_s"]),
            f"{fmt_num(entry['total_s'])} ({fmt_num(lo)}–{fmt_num(hi)})",
            fmt_num(entry["us_per_case"]),
            fmt_num(entry["us_per_transition"]),
            fmt_bytes(entry.get("bytes_per_case")),
            "  ".join(filter(None, [
                f"{entry['us_per_case'] / base['us_per_case']:.1f}x baseline/case" if base else "",
                f"{entry['us_per_transition'] / trc['us_per_transition']:.2f}x tr_C1/transition"
                if trc and name != "tr_C1" else "",
            ])),
        ])
    print_table(
        f"lifecycle at {fmt_size(n)} cases (medians)",
        ["variant", "runs", "create s", "drive s", "total s (spread)", "us/case",
         "us/transition", "bytes/case", "ratios"],
        rows,
    )


def _ratios(results: dict[str, Any], sizes: Sequence[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in sizes:
        key = fmt_size(n)
        base = _row(results, "baseline", n)
        trc = _row(results, "tr_C1", n)
        rf = _row(results, "reviewflow", n)
        here: dict[str, Any] = {}
        for name in results:
            row = _row(results, name, n)
            if row is None:
                continue
            r: dict[str, Any] = {}
            if base:
                r["per_case_vs_baseline"] = row["us_per_case"] / base["us_per_case"]
                r["per_transition_vs_baseline"] = (
                    row["us_per_transition"] / base["us_per_transition"]
                )
            if trc:
                r["per_case_vs_tr_C1"] = row["us_per_case"] / trc["us_per_case"]
                r["per_transition_vs_tr_C1"] = row["us_per_transition"] / trc["us_per_transition"]
                r["best_per_transition_vs_tr_C1"] = (
                    row["best_us_per_transition"] / trc["best_us_per_transition"]
                )
            if rf and name in ("tr_A", "psm"):
                r["reviewflow_speedup_per_case"] = row["us_per_case"] / rf["us_per_case"]
            here[name] = r
        out[key] = here
    return out


def _growth(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, per_size in results.items():
        g: dict[str, Any] = {}
        for lo, hi in ((1_000, 100_000), (10_000, 100_000), (1_000, 10_000), (100_000, 1_000_000)):
            a = per_size.get(fmt_size(lo))
            b = per_size.get(fmt_size(hi))
            if isinstance(a, dict) and isinstance(b, dict) and "us_per_case" in a and "us_per_case" in b:
                g[f"{fmt_size(lo)}->{fmt_size(hi)}"] = {
                    "per_case": b["us_per_case"] / a["us_per_case"],
                    "per_transition": b["us_per_transition"] / a["us_per_transition"],
                }
        out[name] = g
    return out


def _targets(out: dict[str, Any]) -> list[dict[str, Any]]:
    """Say where each lifecycle target stands, at the largest size where both sides ran."""
    targets: list[dict[str, Any]] = []
    ratios = out["ratios"]
    sizes = list(reversed(out["sizes"]))
    for key in sizes:
        rf = ratios.get(key, {}).get("reviewflow", {})
        if "per_transition_vs_tr_C1" in rf:
            value = rf["per_transition_vs_tr_C1"]
            targets.append({
                "what": f"reviewflow per transition vs bare transitions shared machine ({key})",
                "target": "<= 2.0x", "value": value,
                "met": value <= TARGETS["per_transition_vs_tr_C1"],
            })
            targets.append({
                "what": f"  same, best run of each side ({key})",
                "target": "<= 2.0x", "value": rf["best_per_transition_vs_tr_C1"],
                "met": rf["best_per_transition_vs_tr_C1"] <= TARGETS["per_transition_vs_tr_C1"],
            })
            targets.append({
                "what": f"reviewflow per case vs bare transitions shared machine ({key})",
                "target": "info only",
                "value": rf["per_case_vs_tr_C1"], "met": None,
            })
            break
    for peer in ("tr_A", "psm"):
        for key in sizes:
            r = ratios.get(key, {}).get(peer, {})
            if "reviewflow_speedup_per_case" in r:
                value = r["reviewflow_speedup_per_case"]
                targets.append({
                    "what": f"reviewflow per case faster than {peer} ({key})",
                    "target": ">= 10x", "value": value,
                    "met": value >= TARGETS["per_case_speedup_vs_per_case_machines"],
                })
                break
    g = out["growth"].get("reviewflow", {}).get("1k->100k")
    if g:
        targets.append({
            "what": "reviewflow per-case growth 1k -> 100k",
            "target": "<= 1.5x", "value": g["per_case"],
            "met": g["per_case"] <= TARGETS["growth_1k_to_100k"],
        })
    return targets


def _print_ratios(out: dict[str, Any]) -> None:
    rows = []
    for name, g in out["growth"].items():
        for span, v in g.items():
            rows.append([name, span, fmt_ratio(v["per_case"]), fmt_ratio(v["per_transition"])])
    if rows:
        print_table("growth of the per-case and per-transition cost",
                    ["variant", "from->to", "per case", "per transition"], rows)
    rows = []
    for t in out["targets"]:
        met = {True: "met", False: "MISSED", None: ""}[t["met"]]
        rows.append([t["what"], t["target"], fmt_ratio(t["value"]), met])
    if rows:
        print_table("lifecycle targets", ["what", "target", "measured", ""], rows)
    rf = out["results"].get("reviewflow", {})
    biggest = None
    for entry in rf.values():
        if isinstance(entry, dict) and "phase_us_per_case" in entry and (
            biggest is None or entry["n"] > biggest["n"]
        ):
            biggest = entry
    if biggest:
        per_phase = biggest["phase_us_per_case"]
        counts = {"sign_off": _levels(biggest), "comment": 2}
        rows = [
            [event, fmt_num(us), fmt_num(us / counts.get(event, 1))]
            for event, us in per_phase.items()
        ]
        print_table(
            f"reviewflow time per phase at {fmt_size(biggest['n'])} cases",
            ["event", "us per case", "us per event"], rows,
        )


def _levels(entry: dict[str, Any]) -> int:
    """Return the number of sign-off levels a reviewflow run used (from its step count)."""
    return int(entry["transitions_per_case"]) - 8
