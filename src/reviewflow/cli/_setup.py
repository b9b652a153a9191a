"""CLI commands that set a campaign up: init (the campaign and its campaign file) and db upgrade."""

from __future__ import annotations

import json
from pathlib import Path

import click

from reviewflow.campaign import Campaign
from reviewflow.cli._env import CONFIG_NAME, Env, sqlite_url
from reviewflow.cli._output import escape, out_console
from reviewflow.exceptions import InputError

__all__ = ["COMMANDS"]


def _toml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


# ---------------------------------------------------------------------- init


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


COMMANDS = [init, db]
