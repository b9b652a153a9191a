"""CLI commands for cases: import them from a spreadsheet, status, show one."""

from __future__ import annotations

from collections import Counter
from typing import Any

import click

from reviewflow.cli._env import Env
from reviewflow.cli._output import err_console, escape, out_console, print_json, table
from reviewflow.exceptions import ReviewflowError
from reviewflow.model import Stage

__all__ = ["COMMANDS"]


# ---------------------------------------------------------------------- cases


@click.group()
def cases() -> None:
    """Cases (述职对象): import organisations and secretaries from a spreadsheet.

    \b
    Example:
      reviewflow cases import branches.xlsx
    """


@cases.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check the file; write nothing.")
@click.pass_obj
def cases_import(env: Env, file: str, dry_run: bool) -> int:
    """Import cases from a CSV (UTF-8) or XLSX file: all rows or none.

    Columns (Chinese or English headers): 编号/case_id, 党组织/organization,
    书记/secretary, and optionally 书记编号/secretary_id, 指导组/guidance_group,
    上年编号/previous_case_id, 上年问题/carried_over. Errors name the row and column.

    \b
    Example:
      reviewflow cases import branches.xlsx --dry-run
      reviewflow cases import branches.xlsx
    """
    from reviewflow.imports import read_cases

    campaign = env.campaign()
    existing = [c.case_id for c in campaign.cases()]
    loaded = read_cases(file, guidance_groups=list(campaign.policy.guidance_groups),
                        existing=existing)
    if loaded.ignored_columns:
        err_console().print(f"{env.msgs('warning')}: ignored column(s): "
                            f"{escape(', '.join(loaded.ignored_columns))}")
    if dry_run:
        out_console().print(env.msgs("dry_run", n=len(loaded.rows)))
        return 0
    opened = campaign.open_cases(loaded.rows)
    out_console().print(env.msgs("cases_imported", n=len(opened)))
    return 0


# ---------------------------------------------------------------------- status and show


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("--soon", default=3, show_default=True, type=click.IntRange(0, 365),
              help="Days ahead that count as 'due soon'.")
@click.pass_obj
def status(env: Env, as_json: bool, soon: int) -> int:
    """Show cases per stage, and which are overdue or due soon.

    \b
    Example:
      reviewflow status
      reviewflow --now 2016-01-17T09:00+08:00 status --json
    """
    campaign = env.campaign()
    now = campaign.clock.now()
    horizon = now.add(days=soon)
    counts: Counter[str] = Counter()
    overdue: list[tuple[str, str, Any]] = []
    due_soon: list[tuple[str, str, Any]] = []
    for case in campaign.cases():
        counts[case.stage.value] += 1
        if case.stage is Stage.CLOSED:
            continue
        due = campaign.due(case, case.stage)
        if due is None:
            continue
        if now > due:
            overdue.append((case.case_id, case.stage.value, due))
        elif due <= horizon:
            due_soon.append((case.case_id, case.stage.value, due))
    overdue.sort(key=lambda x: (x[2], x[0]))
    due_soon.sort(key=lambda x: (x[2], x[0]))
    if as_json:
        print_json({
            "campaign": campaign.id,
            "now": now.isoformat(),
            "stages": {s.value: counts.get(s.value, 0) for s in Stage},
            "total": sum(counts.values()),
            "overdue": [{"case_id": c, "stage": s, "due": d.isoformat()} for c, s, d in overdue],
            "due_soon": [{"case_id": c, "stage": s, "due": d.isoformat()} for c, s, d in due_soon],
        })
        return 0
    msgs = env.msgs
    out = out_console()
    out.print(f"{escape(campaign.policy.name)} ({escape(campaign.id)}) · {msgs('now')}: {now.isoformat()}")
    out.print(table(msgs("stage_counts"), [msgs("stage"), "", msgs("cases")],
                    ((s.value, s.label, counts.get(s.value, 0)) for s in Stage), right=(2,)))
    for title, items in ((msgs("overdue"), overdue), (msgs("due_soon"), due_soon)):
        if items:
            out.print(table(f"{title} ({len(items)})", [msgs("case"), msgs("stage"), msgs("due")],
                            ((c, s, d.isoformat()) for c, s, d in items[:50])))
    return 0


@click.command()
@click.argument("case_id", metavar="CASE")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_obj
def show(env: Env, case_id: str, as_json: bool) -> int:
    """Show one case: stage, due time and how it was worked out, history, refusals.

    \b
    Example:
      reviewflow show branch-0001
    """
    campaign = env.campaign()
    case = campaign.case(case_id)
    due = campaign.due(case, case.stage) if case.stage is not Stage.CLOSED else None
    steps: list[str] = []
    if case.stage is not Stage.CLOSED:
        try:
            steps = list(campaign.explain_due(case_id).steps)
        except ReviewflowError:
            steps = []
    history = case.history
    refusals = campaign.refusals(case_id)
    if as_json:
        print_json({
            **case.to_json(),
            "due": None if due is None else due.isoformat(),
            "due_explained": steps,
            "history": [r.to_json() for r in history],
            "refusals": [{"event": r.event, "actor": r.actor_id, "at": r.at, "reason": r.reason,
                          "message": r.message} for r in refusals],
        })
        return 0
    msgs = env.msgs
    out = out_console()
    out.print(f"[bold]{escape(case.case_id)}[/] {escape(case.organization)} · "
              f"{msgs('secretary')}: {escape(case.secretary.name or case.secretary.id)} "
              f"({escape(case.secretary.id)})")
    out.print(f"{msgs('stage')}: {case.stage.value} ({case.stage.label}) · version {case.version}")
    if due is not None:
        out.print(f"{msgs('due')}: {due.isoformat()}")
        for step in steps:
            out.print(f"  - {escape(step)}")
    out.print(table(msgs("history"), ["#", msgs("event"), msgs("actor"), msgs("at"), msgs("stage"),
                                      msgs("reason")],
                    ((r.seq, r.event, r.actor_id, _short_time(r.at), f"{r.from_stage or ''} → {r.to_stage}",
                      r.reason or "") for r in history), right=(0,)))
    if refusals:
        out.print(table(msgs("refused"), [msgs("event"), msgs("actor"), msgs("at"), msgs("reason")],
                        ((r.event, r.actor_id, _short_time(r.at), r.reason) for r in refusals)))
    return 0


def _short_time(iso: str) -> str:
    """Return ``2016-01-05 09:00`` from an ISO time (the offset is the campaign's)."""
    return iso[:16].replace("T", " ")


COMMANDS = [cases, status, show]
