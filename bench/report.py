"""Turn a results JSON file into the Markdown tables of ``docs/benchmarks.md``.

    python -m bench.report bench-results.json > /tmp/tables.md

The prose around the tables (what each target means, where it stands, what remains)
is written by hand in ``docs/benchmarks.md``; this prints the figures of one run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import _numeric, fmt_bytes, fmt_num, fmt_ratio


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|")

    right = [
        "---:" if i and all(_numeric(str(r[i])) for r in rows if i < len(r)) else "---"
        for i in range(len(headers))
    ]
    out = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "|".join(right) + "|"]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _met(value: Any) -> str:
    return {True: "**met**", False: "**missed**", None: "–"}.get(value, str(value))


def machine(data: dict[str, Any]) -> str:
    """Return the run's header: command, date, machine, versions."""
    m = data["machine"]
    pk = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    lines = [
        f"* Command: `{data['command']}` ({data.get('seconds', 0):.0f} s in all)",
        f"* Date (UTC): {m['date']}; git commit `{m.get('git_commit')}`"
        + (f" with uncommitted changes in {len(m['git_uncommitted_src'])} src files"
           if m.get("git_uncommitted_src") else ""),
        f"* Machine: {m['cpu']}, {m['cores']} cores, {m['mem_gb']} GB RAM, {m['platform']}",
        f"* Python {m['python']} ({m['implementation']}), SQLite {m['sqlite']}",
        f"* Packages: {pk}",
        f"* Load average at start {m.get('loadavg_start')}, at end {m.get('loadavg_end')}",
    ]
    return "\n".join(lines)


def lifecycle(section: dict[str, Any]) -> str:
    """Return the lifecycle tables: figures per size, growth, targets, reviewflow phases."""
    parts = []
    results = section["results"]
    rows = []
    for size in section["sizes"]:
        ratios = section["ratios"].get(size, {})
        for name, per_size in results.items():
            entry = per_size.get(size) if isinstance(per_size, dict) else None
            if not isinstance(entry, dict):
                continue
            if "us_per_case" not in entry:
                rows.append([name, size, "–", "", "", "", "", "", "", "", "",
                             entry.get("skipped") or entry.get("error", "")])
                continue
            r = ratios.get(name, {})
            lo, hi = entry["spread_total_s"]
            rows.append([
                name, size, entry["runs"], fmt_num(entry["create_s"]), fmt_num(entry["drive_s"]),
                f"{fmt_num(entry['total_s'])} ({fmt_num(lo)}–{fmt_num(hi)})",
                fmt_num(entry["us_per_case"]), fmt_num(entry["us_per_transition"]),
                fmt_bytes(entry.get("bytes_per_case")),
                fmt_ratio(r.get("per_case_vs_baseline")),
                fmt_ratio(r.get("per_transition_vs_tr_C1")), "",
            ])
    parts.append(_table(
        ["variant", "N", "runs", "create s", "drive s", "total s (spread)", "µs/case",
         "µs/transition", "bytes/case", "× baseline (per case)", "× tr_C1 (per transition)",
         "note"], rows))
    for name, value in results.items():
        if isinstance(value, dict) and "status" in value:
            parts.append(f"\n{name}: {value['status']}")
    grows = [
        [name, span, fmt_ratio(v["per_case"]), fmt_ratio(v["per_transition"])]
        for name, g in section["growth"].items() for span, v in g.items()
    ]
    if grows:
        parts.append("\nGrowth of the cost as N grows (1.00x = linear):\n")
        parts.append(_table(["variant", "from → to", "per case", "per transition"], grows))
    biggest = None
    for entry in results.get("reviewflow", {}).values():
        if isinstance(entry, dict) and "phase_us_per_case" in entry and (
            biggest is None or entry["n"] > biggest["n"]
        ):
            biggest = entry
    if biggest:
        levels = int(biggest["transitions_per_case"]) - 8
        per = {"sign_off": levels, "comment": 2}
        parts.append(f"\nreviewflow, time per phase at N = {biggest['n']:,} (median run):\n")
        parts.append(_table(
            ["event", "µs per case", "events per case", "µs per event"],
            [[e, fmt_num(us), per.get(e, 1), fmt_num(us / per.get(e, 1))]
             for e, us in biggest["phase_us_per_case"].items()],
        ))
    return "\n".join(parts)


def memory(section: dict[str, Any]) -> str:
    """Return the memory table."""
    rows = []
    for size, prof in section.get("sizes", {}).items():
        for stage, m in prof["stages"].items():
            rows.append([size, stage, f"{m['records_per_case']:.0f}",
                         fmt_bytes(m["total_bytes_per_case"]),
                         fmt_bytes(m["history_bytes_per_case"]),
                         fmt_bytes(m["ex_history_bytes_per_case"])])
    return _table(["N", "stage", "event records per case", "total bytes/case",
                   "event history bytes/case", "bytes/case excluding history"], rows)


def demo(section: dict[str, Any]) -> str:
    """Return the demo table."""
    if section.get("status") != "ok":
        return f"{section.get('status')}: {section.get('error', '')}"
    runs = section["runs_s"]
    return _table(
        ["command", "runs", "median s", "spread s", "start-up + import s", "ms per branch"],
        [[f"`{section['command']}`", len(runs), fmt_num(section["median_s"]),
          f"{fmt_num(min(runs))}–{fmt_num(max(runs))}", fmt_num(section["startup_import_s"]),
          fmt_num(section["per_branch_ms"])]],
    )


#: Column names of the tables other sections print, for results that carry rows only.
KNOWN_HEADERS = {
    "store": ["db", "what", "transitions", "per s", "vs bare"],
    "scoring": ["what", "n", "s", "rate", "speed vs bare loop"],
}


def generic(section: dict[str, Any], name: str = "") -> str:
    """Return a section written by another module: its rows (if any) as a table."""
    rows = section.get("rows")
    if not isinstance(rows, list) or not rows:
        return "" if section.get("status") == "ok" else str(section.get("status"))
    if all(isinstance(r, dict) for r in rows):
        headers = list(rows[0])
        body = [[fmt_num(v) if isinstance(v, float) else v for v in r.values()] for r in rows]
        return _table(headers, body)
    width = max(len(r) for r in rows)
    headers = section.get("headers") or KNOWN_HEADERS.get(name)
    if not headers or len(headers) != width:
        headers = ["", *[""] * (width - 1)]
    return _table(headers, [[*r, *[""] * (width - len(r))] for r in rows])


def targets(data: dict[str, Any]) -> str:
    """Return every section's targets in one table."""
    rows = []
    for name, section in data["sections"].items():
        for t in section.get("targets") or ():
            value = t.get("value")
            shown = fmt_num(value) if isinstance(value, int | float) else str(value)
            rows.append([name, t.get("what", ""), t.get("target", ""), shown, _met(t.get("met"))])
        if not section.get("targets"):
            rows.append([name, "", "", "", section.get("status", "")])
    return _table(["section", "what", "target", "measured", "status"], rows)


def render(data: dict[str, Any]) -> str:
    """Return the Markdown for one run."""
    parts = ["### Run", machine(data), "", "### Targets", targets(data)]
    for name, section in data["sections"].items():
        parts += ["", f"### Section `{name}`", ""]
        if name == "lifecycle" and "results" in section:
            parts.append(lifecycle(section))
        elif name == "memory" and "sizes" in section:
            parts.append(memory(section))
        elif name == "demo":
            parts.append(demo(section))
        else:
            parts.append(generic(section, name))
        sql_rows = section.get("sql_rows")
        if isinstance(sql_rows, list) and sql_rows:  # the sweep on databases
            parts += ["", generic({"rows": sql_rows}, name)]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the Markdown tables of a results file."""
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m bench.report RESULTS.json", file=sys.stderr)
        return 2
    data = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    sys.stdout.write(render(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
