"""CLI commands that check the record: outbox (undelivered hook calls), verify."""

from __future__ import annotations

import click

from reviewflow.cli._env import Env
from reviewflow.cli._output import err_console, escape, out_console, print_json, table

__all__ = ["COMMANDS"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_obj
def outbox(env: Env, as_json: bool) -> int:
    """Show what the plugins have not heard yet: failed deliveries (plugin, hook, attempts,
    last error, next try) and events not yet offered; exit 1 if there are any.

    ``reviewflow tick`` retries each failed delivery when its next try has come.

    \b
    Example:
      reviewflow outbox
      reviewflow outbox --json
    """
    campaign = env.campaign()
    found = campaign.outbox_status()
    if as_json:
        print_json(found.to_json())
        return 0 if found.ok else 1
    msgs = env.msgs
    out = out_console()
    if found.ok:
        out.print(msgs("outbox_ok"))
        return 0
    if found.undelivered:
        out.print(msgs("outbox_undelivered", n=found.undelivered))
    if found.failures:
        out.print(table(
            msgs("outbox_failures", n=len(found.failures)),
            [msgs("event"), msgs("plugin"), "hook", msgs("attempts"), msgs("last_error"),
             msgs("next_try")],
            ((f"{f.event_id} ({f.event})", f.plugin, f.hook, f.attempts, f.last_error,
              f.next_try_at.isoformat()) for f in found.failures[:100]),
            right=(3,)))
    return 1


@click.command()
@click.option("--anchor", "anchor_files", multiple=True, metavar="FILE",
              help="An anchor file (from `reviewflow anchor`) the record must extend; repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_obj
def verify(env: Env, anchor_files: tuple[str, ...], as_json: bool) -> int:
    """Check the whole record; exit 1 and list every difference by case and field.

    Recomputes every case's hash chain, replays each case's events and compares the
    result with the stored case field by field, recounts every closed ballot box
    against its sealed close_vote event, and checks the campaign's policy (the one
    kept in the database, and --policy FILE if given) against its sealed digest.

    The record must also extend every anchor given with --anchor and every anchor kept
    in the database; with REVIEWFLOW_AUDIT_KEY (or REVIEWFLOW_AUDIT_KEY_FILE) set, every
    event's MAC is checked too. Notes say what could not be checked.

    \b
    Example:
      reviewflow verify --anchor anchors/2016-03-01.anchor
    """
    from reviewflow._policy_seal import unchecked
    from reviewflow.anchoring import read_anchor

    anchors = [read_anchor(path) for path in anchor_files]
    with unchecked():  # a policy other than the sealed one is reported, not refused
        campaign = env.campaign()
    report = campaign.verify(anchors)
    if as_json:
        print_json({"ok": report.ok, "cases": report.cases, "events": report.events,
                    "anchors": list(report.anchors), "notes": list(report.notes),
                    "problems": [p.to_json() for p in report.problems]})
        return 0 if report.ok else 1
    out = out_console()
    if report.ok:
        out.print(env.msgs("verify_ok", cases=report.cases, events=report.events))
        if report.anchors:
            out.print(env.msgs("verify_anchors", n=len(report.anchors)))
            for digest in report.anchors:
                out.print(f"  {digest}")
        for note in report.notes:
            err_console().print(escape(env.msgs("verify_note", text=note)))
    else:
        out.print(escape(str(report)))
    return 0 if report.ok else 1


COMMANDS = [outbox, verify]
