"""The demo section: ``reviewflow demo --branches N`` end to end, as a user runs it.

Each run is a fresh subprocess in a fresh temporary folder (the demo writes its SQLite
file and exports there), timed from process start to exit: interpreter start-up and
imports are part of "end to end". Target: 1,000 branches in under 10 s.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import fmt_num, median, print_table

__all__ = ["TARGET_S", "demo_command", "run_demo"]

TARGET_S = 10.0
TIMEOUT_S = 300


def demo_command() -> list[str] | None:
    """Return the command that runs the CLI, or None when there is no CLI yet."""
    if importlib.util.find_spec("reviewflow.cli") is None:
        return None
    script = Path(sys.executable).with_name("reviewflow")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from reviewflow.cli import main; sys.exit(main())"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("COLUMNS", "120")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _demo_supports_branches(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run([*cmd, "demo", "--help"], capture_output=True, text=True,
                             timeout=60, env=_env(), check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"the CLI does not start: {exc}"
    if out.returncode != 0:
        return f"`reviewflow demo --help` exited {out.returncode}: {out.stderr.strip()[-300:]}"
    if "--branches" not in out.stdout:
        return "`reviewflow demo` has no --branches option yet"
    return None


def run_demo(*, branches: int, repeats: int) -> dict[str, Any]:
    """Run the demo ``repeats`` times at ``branches`` branches; return times and the target."""
    cmd = demo_command()
    if cmd is None:
        return {"status": "not yet available: reviewflow.cli does not exist yet"}
    reason = _demo_supports_branches(cmd)
    if reason is not None:
        return {"status": f"not yet available: {reason}"}
    # Interpreter start-up plus importing the CLI, to tell fixed cost from the campaign.
    startup = []
    for _ in range(max(1, min(repeats, 3))):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import reviewflow.cli"], check=True, env=_env(),
                       capture_output=True, timeout=60)
        startup.append(time.perf_counter() - t0)
    runs = []
    last: dict[str, Any] = {}
    for i in range(repeats):
        with tempfile.TemporaryDirectory(prefix="rf-bench-demo-") as tmp:
            t0 = time.perf_counter()
            try:
                out = subprocess.run([*cmd, "demo", "--branches", str(branches)], cwd=tmp,
                                     capture_output=True, text=True, timeout=TIMEOUT_S,
                                     env=_env(), check=False)
            except subprocess.TimeoutExpired:
                return {"status": "error", "error": f"timed out after {TIMEOUT_S} s",
                        "branches": branches}
            elapsed = time.perf_counter() - t0
            files = sorted(str(p.relative_to(tmp)) for p in Path(tmp).rglob("*") if p.is_file())
        last = {"returncode": out.returncode, "stdout_tail": out.stdout[-1500:],
                "stderr_tail": out.stderr[-1500:], "files": files}
        if out.returncode != 0:
            print(out.stdout[-2000:], out.stderr[-2000:], sep="\n", flush=True)
            return {"status": "error", "error": f"demo exited {out.returncode}",
                    "branches": branches, "last": last}
        runs.append(elapsed)
        print(f"  demo --branches {branches} run {i + 1}/{repeats}: {elapsed:.2f} s", flush=True)
    med = median(runs)
    result = {
        "status": "ok",
        "command": " ".join([Path(cmd[0]).name, *cmd[1:], "demo", "--branches", str(branches)]),
        "branches": branches,
        "runs_s": runs,
        "median_s": med,
        "startup_import_s": median(startup),
        "per_branch_ms": (med - median(startup)) / branches * 1e3,
        "target_s": TARGET_S,
        "met": med < TARGET_S if branches >= 1000 else None,
        "last": last,
    }
    result["targets"] = [{
        "what": f"reviewflow demo --branches {branches}, end to end (median of {len(runs)})",
        "target": f"< {TARGET_S:.0f} s at 1000 branches", "value": med, "met": result["met"],
    }]
    print_table(
        "demo end to end (subprocess, fresh folder)",
        ["branches", "runs", "median s", "spread s", "start-up + import s", "ms per branch",
         "target"],
        [[branches, len(runs), fmt_num(med), f"{fmt_num(min(runs))}–{fmt_num(max(runs))}",
          fmt_num(result["startup_import_s"]), fmt_num(result["per_branch_ms"]),
          f"< {TARGET_S:.0f} s at 1000: " + {True: "met", False: "MISSED", None: "n/a"}[
              result["met"]]]],
    )
    return result
