"""Shared helpers for the benchmarks: sizes, medians, tables, machine facts."""

from __future__ import annotations

import datetime as _dt
import gc
import importlib.metadata
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "REPO",
    "fmt_bytes",
    "fmt_num",
    "fmt_ratio",
    "fmt_size",
    "machine_info",
    "median",
    "parse_size",
    "print_table",
    "traced_bytes",
]

#: The repository root (the folder holding ``bench/``).
REPO = Path(__file__).resolve().parent.parent

_SUFFIX = {"k": 1_000, "m": 1_000_000}

#: Packages whose versions a run records.
PACKAGES = (
    "reviewflow", "transitions", "python-statemachine", "pendulum", "attrs", "pluggy",
    "holidays", "SQLAlchemy", "alembic", "psycopg", "PyMySQL", "numpy", "click", "rich",
)


def parse_size(text: str) -> int:
    """Read a case count such as ``1000``, ``10k``, ``100k`` or ``1M``."""
    raw = text.strip().lower().replace("_", "").replace(",", "")
    mult = 1
    if raw and raw[-1] in _SUFFIX:
        mult = _SUFFIX[raw[-1]]
        raw = raw[:-1]
    try:
        value = int(float(raw) * mult)
    except ValueError:
        raise ValueError(f"not a size: {text!r}; write e.g. 1000, 10k or 1M") from None
    if value < 1:
        raise ValueError(f"size must be at least 1, got {text!r}")
    return value


def fmt_size(n: int) -> str:
    """Write a case count compactly: 1k, 10k, 1M, 250."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def median(values: Sequence[float]) -> float:
    """Return the median of a non-empty sequence."""
    return float(statistics.median(values))


def fmt_num(value: float | None, digits: int = 3) -> str:
    """Write a number with about ``digits`` significant digits, '–' for None."""
    if value is None:
        return "–"
    if value == 0:
        return "0"
    mag = abs(value)
    if mag >= 10 ** digits:
        return f"{value:,.0f}".replace(",", " ")
    return f"{value:.{digits}g}" if mag >= 1 else f"{value:.{digits}f}"


def fmt_ratio(value: float | None) -> str:
    """Write a ratio such as ``1.73x``."""
    return "–" if value is None else f"{value:.2f}x"


def fmt_bytes(value: float | None) -> str:
    """Write a byte count per case."""
    return "–" if value is None else f"{value:,.0f}".replace(",", " ")


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Print a plain-text table (figures right-aligned, text left-aligned); return it."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [row[0].ljust(widths[0])] + [
            c.rjust(w) if _numeric(c) else c.ljust(w)
            for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [f"\n== {title}", line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    text = "\n".join(out)
    print(text, flush=True)
    return text


def _numeric(cell: str) -> bool:
    """Tell cells that read as figures (right-aligned) from text (left-aligned)."""
    head = cell.lstrip("<>=~ *")
    return not head or head[0].isdigit() or head[0] in "–-+."


def traced_bytes(build: Callable[[], Any]) -> tuple[int, Any]:
    """Return the bytes tracemalloc still counts after ``build()``, and what it built.

    A ``gc.collect()`` runs before and after, so only what ``build`` keeps alive counts.
    """
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before, kept


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.rstrip() if out.returncode == 0 else None


def machine_info() -> dict[str, Any]:
    """Return the facts a result needs beside it: CPU, cores, memory, Python, packages, load."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "mem_gb": _mem_total_gb(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "packages": versions,
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        # Files under src/ that differ from that commit: what ran was not exactly it.
        "git_uncommitted_src": (_git("status", "--porcelain", "--", "src") or "").splitlines(),
        "loadavg_start": load,
    }
