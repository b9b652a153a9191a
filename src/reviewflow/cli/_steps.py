"""CLI commands that act on cases: fire an event, allowed, extend a deadline, tick (the sweep)."""

from __future__ import annotations

import click

from reviewflow.cli._env import Env, read_json_data
from reviewflow.cli._output import escape, out_console, print_json, table
from reviewflow.exceptions import InputError

__all__ = ["COMMANDS"]


# ---------------------------------------------------------------------- fire and allowed


@click.command()
@click.argument("case_id", metavar="CASE")
@click.argument("event")
@click.option("--actor", "actor_id", required=True, metavar="ID", help="Who does it.")
@click.option("--role", "roles", multiple=True, metavar="ROLE",
              help="Act in this role (repeatable); declares the roles of an unlisted actor.")
@click.option("--data", "data", metavar="JSON", help="The event's data as a JSON object.")
@click.option("--data-file", "data_file", metavar="FILE",
              help="The event's data from a JSON file ('-': standard input).")
@click.option("--key", "key", metavar="KEY", help="Idempotency key: replaying it does nothing twice.")
@click.pass_obj
def fire(env: Env, case_id: str, event: str, actor_id: str, roles: tuple[str, ...],
         data: str | None, data_file: str | None, key: str | None) -> int:
    """Fire an event on a case as an actor. Exit 1 with the reason if a rule refuses it.

    \b
    Events and their data:
      finish_research        {"problems": ["...", "..."]}
      submit_report          {"report": {"duty": "...", "progress": "...",
                              "problems": [{"description": "...", "causes": "...",
                              "measure": "..."}], "plans": "..."}}
      sign_off               {"comment": "同意"}
      return_for_revision    {"reason": "..."}
      hold_meeting           {"date": "2016-01-20", "attendance": {"party_members": 30}}
      comment                {"text": "..."}
      record_vote            {"vote": {"good": 30, "fairly_good": 8, "average": 2, "poor": 0}}
      finish_evaluation      {"vote": {...}} (optional when recorded)
      hold_talk              {"notes": "..."}
      submit_special_report  {"text": "..."}

    \b
    Example:
      reviewflow fire school-01 sign_off --actor li --data '{"comment": "同意"}'
      reviewflow fire school-01 submit_report --actor sec-school-01 --data-file report.json
    """
    from reviewflow.policy import EVENTS

    payload = read_json_data(data, data_file)
    lifecycle = sorted(name for name, *_ in EVENTS)
    if event not in lifecycle:
        raise InputError(f"unknown event {event!r}; events are: {', '.join(lifecycle)}")
    campaign = env.campaign()
    actor = env.actor(actor_id, roles)
    for reserved in ("actor", "idempotency_key", "retries"):
        if reserved in payload:
            raise InputError(f"--data may not set {reserved!r}; use the command's options")
    case = campaign.fire(case_id, event, actor=actor, idempotency_key=key, **payload)
    out_console().print(escape(env.msgs("fired", case=case_id, event=event,
                                        stage=f"{case.stage.value} ({case.stage.label})")))
    return 0


@click.command()
@click.argument("case_id", metavar="CASE")
@click.option("--actor", "actor_id", required=True, metavar="ID", help="Who asks.")
@click.option("--role", "roles", multiple=True, metavar="ROLE", help="Act in this role (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_obj
def allowed(env: Env, case_id: str, actor_id: str, roles: tuple[str, ...], as_json: bool) -> int:
    """List what an actor may do on a case now, and why not. Changes nothing.

    \b
    Example:
      reviewflow allowed school-01 --actor li
    """
    campaign = env.campaign()
    actor = env.actor(actor_id, roles)
    perms = campaign.allowed(case_id, actor)
    if as_json:
        print_json([{"event": p.event, "allowed": p.allowed, "reasons": list(p.reasons),
                     "messages": list(p.messages), "needs": list(p.needs)} for p in perms])
        return 0
    msgs = env.msgs
    rows = []
    codes: list[str] = []
    for p in perms:
        rows.append((p.event, msgs("allowed") if p.allowed else msgs("not_allowed"),
                     ", ".join(p.needs), ", ".join(p.reasons)))
        codes += [r for r in p.reasons if r not in codes]
    out = out_console()
    out.print(table(f"{case_id} · {actor.id} ({', '.join(sorted(actor.roles))})",
                    [msgs("event"), "", msgs("needs"), msgs("reason")], rows))
    for code in codes:
        out.print(f"  {code}: {escape(msgs.reason(code))}")
    return 0


# ---------------------------------------------------------------------- extend and tick


@click.command()
@click.argument("case_id", metavar="CASE")
@click.argument("stage")
@click.option("--until", "until", required=True, metavar="TIME",
              help="The new due time, e.g. 2016-01-22T18:00+08:00 (no offset: the policy's zone).")
@click.option("--reason", "reason", required=True, metavar="TEXT", help="Why (recorded).")
@click.option("--actor", "actor_id", required=True, metavar="ID", help="Who extends (the organizer).")
@click.option("--role", "roles", multiple=True, metavar="ROLE", help="Act in this role (repeatable).")
@click.pass_obj
def extend(env: Env, case_id: str, stage: str, until: str, reason: str, actor_id: str,
           roles: tuple[str, ...]) -> int:
    """Extend one case's due time for a stage (延期), with a reason; the extension is an
    event in the case's history and its reminders are rescheduled.

    \b
    Example:
      reviewflow extend school-01 drafting --until 2016-01-22T18:00+08:00 \\
          --reason "校长外出学习" --actor bureau
    """
    import pendulum

    campaign = env.campaign()
    try:
        at = pendulum.parse(until, tz=campaign.policy.tz)
    except Exception:
        raise InputError(f"--until {until!r} is not a date-time; write e.g. "
                         "2016-01-22T18:00+08:00") from None
    if not isinstance(at, pendulum.DateTime):
        raise InputError(f"--until {until!r} needs a date and a time, e.g. 2016-01-22T18:00+08:00")
    campaign.extend(case_id, stage, at, reason, env.actor(actor_id, roles))
    out_console().print(escape(f"{case_id}: {stage} due {at.isoformat()} ({reason})"))
    return 0


@click.command()
@click.option("--limit", type=click.IntRange(1, 10_000_000), help="At most this many cases per run.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_obj
def tick(env: Env, limit: int | None, as_json: bool) -> int:
    """Fire due deadline reminders (the sweep) and redeliver hooks a crash left pending.

    Each reminder fires exactly once even when several machines run it at once,
    so it is safe from cron every minute.

    \b
    Example (crontab):
      * * * * *  cd /srv/assessment && reviewflow tick
    """
    campaign = env.campaign()
    result = campaign.sweep(limit=limit)
    fired = list(result.fired)
    delivered = campaign.dispatch_pending()
    if as_json:
        print_json({"fired": [str(f) for f in fired], "dispatched": delivered,
                    "failed": [[c, str(e)] for c, e in result.failed]})
        return 0
    out = out_console()
    out.print(env.msgs("rungs_fired", n=len(fired)))
    for f in fired[:100]:
        out.print(f"  {escape(str(f))}")
    if delivered:
        out.print(env.msgs("dispatched", n=delivered))
    return 0


COMMANDS = [fire, allowed, extend, tick]
