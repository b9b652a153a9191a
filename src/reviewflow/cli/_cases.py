"""CLI commands for campaigns and cases: init, policy check, import, status, show, fire, ..."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import click

from reviewflow.calendar import WorkingCalendar
from reviewflow.campaign import Campaign
from reviewflow.cli._env import CONFIG_NAME, Env, read_json_data, sqlite_url
from reviewflow.cli._output import err_console, escape, out_console, print_json, table
from reviewflow.exceptions import InputError, ReviewflowError
from reviewflow.model import Stage
from reviewflow.policy import Policy

__all__ = ["COMMANDS"]


def _toml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


# ---------------------------------------------------------------------- init and policy


@click.command()
@click.argument("policy_file", metavar="POLICY.toml", type=click.Path(dir_okay=False))
@click.option("--db", "db", metavar="URL|PATH", help="Database (default sqlite:///reviewflow.db "
              "next to the campaign file).")
@click.option("--id", "campaign_id", metavar="ID", help="Campaign id (default: the policy's year).")
@click.option("--config", "config", default=CONFIG_NAME, show_default=True, metavar="FILE",
              help="The campaign file to write.")
@click.option("--rehearsal", is_flag=True, help="Mark the campaign as a rehearsal (演练): --now "
              "may then freeze the clock; every step so made says \"clock\": \"frozen\".")
@click.pass_obj
def init(env: Env, policy_file: str, db: str | None, campaign_id: str | None, config: str,
         rehearsal: bool = False) -> int:
    """Create a campaign from a policy file, and the campaign file that points at it.

    The policy is checked first (errors name the line and the setting); nothing is
    written unless it is valid, the campaign file does not exist yet and the
    campaign is new.

    \b
    Example:
      reviewflow init policy.toml --db sqlite:///reviewflow.db
      reviewflow init policy.toml --rehearsal      # a trial run: --now is allowed
      # then edit [actors] in reviewflow.toml
    """
    from reviewflow.campaign import Campaign
    from reviewflow.policy_file import load_policy

    policy = load_policy(policy_file)
    config_path = Path(env.config_option or config)
    if config_path.exists():
        raise InputError(f"{config_path} exists already; remove it or choose another --config FILE")
    base = config_path.resolve().parent
    db_text = db or env.db_option or "sqlite:///reviewflow.db"
    url = sqlite_url(db_text, base if db is None and env.db_option is None else None)
    env.db_option = url
    store = env.open_store(create=True)
    cid = campaign_id or str(policy.year)
    if cid in store.campaigns():
        raise InputError(f"campaign {cid!r} exists already in {url}; give another --id")
    Campaign(policy, store=store, campaign_id=cid)
    store.close()
    policy_rel = _relative(Path(policy_file).resolve(), base)
    db_line = url
    if url.startswith("sqlite:///"):
        db_line = "sqlite:///" + _relative(Path(url.removeprefix("sqlite:///")), base)
    organizer = next((r for r in sorted(policy.roles) if r == "organizer"), sorted(policy.roles)[0])
    lines = [
        "# reviewflow campaign file: which database, campaign and policy the CLI uses,",
        "# and who the actors are. Relative paths are relative to this file.",
        f"db = {_toml_str(db_line)}",
        f"campaign = {_toml_str(cid)}",
        f"policy = {_toml_str(policy_rel)}",
        *(["# a rehearsal (演练): --now may freeze the clock; its events say \"clock\": \"frozen\"",
            "rehearsal = true"] if rehearsal else []),
        "",
        "# Actors: [actors.ID] with a display name and roles from the policy's [roles].",
        "# Secretaries are known from the imported cases; guidance-group members from the policy.",
        "# An actor listed nowhere may act with --role (for rehearsals) unless this says refuse:",
        "# unlisted_actors = \"refuse\"",
        "[actors.bureau]",
        f"name = {_toml_str(policy.role_label(organizer))}",
        f"roles = [{_toml_str(organizer)}]",
        "",
    ]
    from reviewflow._files import write_file

    write_file(config_path, "\n".join(lines), replace=False)
    out = out_console()
    out.print(escape(env.msgs("campaign_created", id=cid, db=url)))
    out.print(escape(env.msgs("config_written", path=config_path)))
    return 0


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base))
    except ValueError:
        return str(path.resolve())


@click.group()
def policy() -> None:
    """Policy files (政策文件): start from the seed's plan, check one before using it.

    \b
    Example:
      reviewflow policy example > policy.toml
      reviewflow policy check policy.toml
    """


@policy.command("example")
def policy_example() -> int:
    """Print the seed's plan as an annotated policy file, to start from.

    \b
    Example:
      reviewflow policy example > policy.toml
    """
    from reviewflow.policy_file import DEFAULT_POLICY_FILE

    click.echo(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"), nl=False)
    return 0


@policy.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 2).")
@click.pass_obj
def policy_check(env: Env, file: str, strict: bool) -> int:
    """Check a policy file without creating anything: errors, then warnings (lint).

    Errors (exit 2) name the line and the setting, among them an event nobody may
    fire, a stage nobody can reach and an approval level nobody may sign. Warnings:
    deadlines on days off, plugins that are not installed, guidance groups without
    members.

    \b
    Example:
      reviewflow policy check policy.toml --strict
    """
    from reviewflow.policy_file import load_policy

    loaded = load_policy(file)
    warnings = lint_policy(loaded)
    out = out_console()
    out.print(escape(env.msgs("policy_ok", path=file)))
    for warning in warnings:
        err_console().print(f"[yellow]{env.msgs('warning')}:[/] {escape(warning)}")
    if warnings:
        out.print(env.msgs("policy_warnings", n=len(warnings)))
    return 2 if strict and warnings else 0


@policy.command("amend")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--reason", "reason", required=True, metavar="TEXT", help="Why (recorded).")
@click.option("--actor", "actor_id", required=True, metavar="ID",
              help="Who amends (the organizer).")
@click.option("--role", "roles", multiple=True, metavar="ROLE", help="Act in this role (repeatable).")
@click.pass_obj
def policy_amend(env: Env, file: str, reason: str, actor_id: str, roles: tuple[str, ...]) -> int:
    """Amend the campaign's sealed policy to FILE (修订评议政策), as an event with a reason.

    The campaign's policy is sealed on its record: a command run with another policy
    file is refused. This records the change (an amend_policy event on the campaign's
    chain: who, why, the settings that changed) and keeps FILE's policy as the
    campaign's; later commands use it (leave out --policy, or pass FILE).

    \b
    Example:
      reviewflow policy amend policy-2.toml --reason "局党组会议决定调整等次分数线" --actor bureau
    """
    from reviewflow.policy_file import load_policy

    new = load_policy(file)
    store = env.open_store(create=False)
    cid = env.campaign_id(store)
    sealed = env.stored_policy(store, cid)
    env._campaign = Campaign(sealed, clock=env.clock(sealed.tz), store=store, campaign_id=cid)
    campaign = env._campaign
    from reviewflow._policy_seal import differing_fields

    changed = differing_fields(sealed.to_json(), new.to_json())
    campaign.amend_policy(new, reason=reason, actor=env.actor(actor_id, roles))
    out = out_console()
    out.print(escape(f"campaign {cid}: policy amended ({len(changed)} setting(s)): {reason}"))
    for path, _old, _new in changed[:50]:
        out.print(escape(f"  {path}"))
    return 0


def lint_policy(p: Policy) -> list[str]:
    """Return warnings about a valid policy: what will not work as its author expects."""
    from reviewflow.deadlines import At

    # An event nobody may fire, a stage nobody can reach, an approval level nobody may sign
    # are errors of the policy itself (PolicyError when it is built): not warnings here.
    warnings: list[str] = []
    for group, members in p.guidance_groups.items():
        if not members:
            warnings.append(f"guidance_groups.{group}: no members; nobody can sign its cases")
    calendar = _calendar(p)
    for stage, rule in p.stages.items():
        if isinstance(rule.due, At):
            day = rule.due.at.in_timezone(p.tz)
            if not day.year - 1 <= p.year <= day.year + 1:
                warnings.append(f"stages.{stage.value}.due: {day.date()} is far from the campaign "
                                f"year {p.year}")
            if calendar is not None:
                try:
                    if not calendar.is_working_day(day.date()):
                        warnings.append(f"stages.{stage.value}.due: {day.date()} is not a working day")
                except ReviewflowError:
                    pass
    from reviewflow._plugins import available

    installed = set(available())
    for name in p.plugins:
        if name not in installed:
            warnings.append(f"plugins: {name!r} is not installed (installed: "
                            f"{', '.join(sorted(installed)) or 'none'})")
    return warnings


def _calendar(p: Policy) -> WorkingCalendar | None:
    from reviewflow.calendar import calendar_from_policy

    try:
        return calendar_from_policy(p.calendar)
    except ReviewflowError:
        return None


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


# ---------------------------------------------------------------------- tick, verify, db


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


@click.group()
def db() -> None:
    """The database: upgrade its schema to this version of reviewflow.

    \b
    Example:
      reviewflow db upgrade --db postgresql+psycopg://reviewflow@db/assessment
    """


@db.command("upgrade")
@click.argument("url", required=False, metavar="[URL]")
@click.pass_obj
def db_upgrade(env: Env, url: str | None) -> int:
    """Upgrade the database schema (Alembic migrations shipped with reviewflow).

    \b
    Example:
      reviewflow db upgrade sqlite:///reviewflow.db
    """
    from reviewflow.store.sql import upgrade

    target = sqlite_url(url) if url else env.db_url()
    if target.startswith("sqlite:///"):
        path = Path(target.removeprefix("sqlite:///").split("?", 1)[0])
        if not path.is_file():
            raise InputError(f"no database at {path}: nothing to upgrade")
    old, new = upgrade(target)
    out_console().print(env.msgs("upgraded", rev=new, old=old or "-"))
    return 0


COMMANDS = [init, policy, cases, status, show, fire, allowed, extend, tick, outbox, verify,
            db]
