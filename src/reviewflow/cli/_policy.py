"""CLI commands for the policy file: example, check (with its warnings), amend."""

from __future__ import annotations

import click

from reviewflow.calendar import WorkingCalendar
from reviewflow.campaign import Campaign
from reviewflow.cli._env import Env
from reviewflow.cli._output import err_console, escape, out_console
from reviewflow.exceptions import ReviewflowError
from reviewflow.policy import Policy

__all__ = ["COMMANDS"]


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


COMMANDS = [policy]
