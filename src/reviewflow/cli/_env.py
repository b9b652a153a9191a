"""What every CLI command shares: the campaign file, the database, the policy, actors, the clock.

The campaign file (``reviewflow.toml``, written by ``reviewflow init``) says which
database and campaign the commands work on, which policy file to use, and who
the actors are::

    db = "sqlite:///reviewflow.db"     # relative SQLite paths are relative to this file
    campaign = "2016"
    policy = "policy.toml"

    [actors.bureau]
    name = "区教育局党组"
    roles = ["organizer"]

Actors not listed there are still known when they are a case's secretary (role
``secretary``) or a member of a guidance group in the policy (``guidance_group``).
``--role`` names the role(s) to act in; for an actor nobody listed, it declares them
(for rehearsals), unless the campaign file says ``unlisted_actors = "refuse"``.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from reviewflow import _ids
from reviewflow._files import read_capped
from reviewflow.campaign import Campaign
from reviewflow.cli._clock import frozen_clock_allowed
from reviewflow.exceptions import InputError, PolicyError
from reviewflow.i18n import Messages
from reviewflow.model import Actor
from reviewflow.policy import Policy

__all__ = ["CONFIG_NAME", "Env", "read_json_data", "sqlite_url"]

CONFIG_NAME = "reviewflow.toml"
DEFAULT_DB = "sqlite:///reviewflow.db"
#: Largest --data-file / campaign file the CLI reads.
MAX_DATA_BYTES = 10 * 1024 * 1024
MAX_CONFIG_BYTES = 1024 * 1024


def sqlite_url(text: str, base: Path | None = None) -> str:
    """Return a database URL for a URL or a SQLite file path (relative to ``base`` if given).

    >>> sqlite_url("postgresql+psycopg://u@h/db")
    'postgresql+psycopg://u@h/db'
    >>> sqlite_url("sqlite:///x.db", Path("/srv/rf"))
    'sqlite:////srv/rf/x.db'
    """
    if "://" in text:
        if text.startswith("sqlite:///") and base is not None:
            rest = text.removeprefix("sqlite:///")
            if rest and not rest.startswith("/") and not rest.startswith(":memory:"):
                return f"sqlite:///{(base / rest).resolve()}"
        return text
    path = Path(text)
    if base is not None and not path.is_absolute():
        path = base / path
    return f"sqlite:///{path.resolve()}"


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        rest = url.removeprefix("sqlite:///").split("?", 1)[0]
        if rest and rest != ":memory:":
            return Path(rest)
    return None


def read_json_data(text: str | None, path: str | None) -> dict[str, Any]:
    """Read event data from ``--data`` JSON text or a ``--data-file``; InputError if bad."""
    if text is not None and path is not None:
        raise InputError("give --data or --data-file, not both")
    where = "--data"
    if path == "-":
        import sys

        where = "standard input"
        text = sys.stdin.read(MAX_DATA_BYTES + 1)
    elif path is not None:
        where = path
        raw = read_capped(path, MAX_DATA_BYTES, "a JSON file of the event's data",
                          fail=lambda message: InputError(f"--data-file {path}: {message}"))
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    if text is None:
        return {}
    if len(text) > MAX_DATA_BYTES:
        raise InputError(f"{where}: larger than {MAX_DATA_BYTES // (1024 * 1024)} MB")
    def constant(name: str) -> Any:
        raise InputError(f"{where}: {name} is not a number; write a finite number",
                         reason="invalid_data")

    def finite(number: str) -> float:
        value = float(number)
        if not math.isfinite(value):
            constant(number[:40])
        return value

    try:
        data = json.loads(text, parse_constant=constant, parse_float=finite)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not valid JSON at line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}") from None
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply") from None
    except ValueError as exc:  # an integer past Python's 4,300-digit limit
        raise InputError(f"{where}: a value cannot be read ({exc}); numbers have at most "
                         "4,300 digits", reason="invalid_data") from None
    if not isinstance(data, dict):
        raise InputError(f"{where}: must be a JSON object such as {{\"comment\": \"同意\"}}")
    return data


@attrs.define(slots=True)
class Env:
    """The resolved settings of one CLI run, and the campaign they lead to (opened lazily)."""

    msgs: Messages
    db_option: str | None = None
    campaign_option: str | None = None
    config_option: str | None = None
    policy_option: str | None = None
    now_option: str | None = None
    #: --allow-frozen-clock: --now on a campaign that is not a rehearsal.
    allow_frozen_clock: bool = False
    _config: dict[str, Any] | None = None
    _config_path: Path | None = None
    _campaign: Campaign | None = None

    # ------------------------------------------------------------------ campaign file

    def config_path(self) -> Path | None:
        """Return the campaign file in use: --config, REVIEWFLOW_CONFIG, or ./reviewflow.toml."""
        if self.config_option:
            return Path(self.config_option)
        env = os.environ.get("REVIEWFLOW_CONFIG")
        if env:
            return Path(env)
        default = Path(CONFIG_NAME)
        return default if default.is_file() else None

    def config(self) -> dict[str, Any]:
        """Return the campaign file's settings (empty when there is none)."""
        if self._config is not None:
            return self._config
        path = self.config_path()
        self._config = {}
        if path is None:
            return self._config
        if not path.exists():
            raise InputError(f"campaign file {path} not found; create one with "
                             "`reviewflow init POLICY.toml` or drop --config")
        raw = read_capped(path, MAX_CONFIG_BYTES, "a campaign file (reviewflow.toml)",
                          too_large="it should be a few lines",
                          fail=lambda message: InputError(f"campaign file {path}: {message}"))
        try:
            text = raw.decode("utf-8-sig")
            data = tomllib.loads(text)
        except UnicodeDecodeError:
            raise InputError(f"campaign file {path} is not UTF-8 text; save it as UTF-8") from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"campaign file {path}: {exc}") from None
        except ValueError as exc:  # a number past Python's int-string digit limit
            raise InputError(f"campaign file {path}: a value cannot be read ({exc}); the file "
                             "holds a few short settings: check it") from None
        except RecursionError:
            raise InputError(f"campaign file {path}: nested too deeply") from None
        known = {"db", "campaign", "policy", "actors", "unlisted_actors", "rehearsal"}
        unknown = set(data) - known
        if unknown:
            raise InputError(f"campaign file {path}: unknown setting(s) {', '.join(sorted(unknown))}; "
                             f"it takes {', '.join(sorted(known))}")
        for key in ("db", "campaign", "policy"):
            if key in data and not isinstance(data[key], str):
                raise InputError(f"campaign file {path}: {key} must be text")
        if data.get("unlisted_actors", "declare") not in ("declare", "refuse"):
            raise InputError(f"campaign file {path}: unlisted_actors must be \"refuse\" (only "
                             "listed actors act) or \"declare\" (--role declares an unlisted "
                             "actor's roles, for rehearsals)")
        if not isinstance(data.get("rehearsal", False), bool):
            raise InputError(f"campaign file {path}: rehearsal must be true or false")
        actors = data.get("actors", {})
        if not isinstance(actors, dict):
            raise InputError(f"campaign file {path}: [actors] must be a table of tables")
        actors = {_ids.identifier(k, f"campaign file {path}: actor id"): v for k, v in actors.items()}
        data["actors"] = actors
        for actor_id, entry in actors.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("roles", []), list) or not all(
                isinstance(r, str) for r in entry.get("roles", [])
            ):
                raise InputError(f"campaign file {path}: actors.{actor_id} needs roles = [\"...\"] "
                                 "and an optional name")
        self._config = data
        self._config_path = path
        return data

    def base_dir(self) -> Path | None:
        """Return the directory of the campaign file (relative paths in it start there)."""
        self.config()
        return None if self._config_path is None else self._config_path.parent

    # ------------------------------------------------------------------ database

    def db_url(self) -> str:
        """Return the database URL: --db, REVIEWFLOW_DB, the campaign file, or the default."""
        if self.db_option:
            return sqlite_url(self.db_option)
        env = os.environ.get("REVIEWFLOW_DB")
        if env:
            return sqlite_url(env)
        configured = self.config().get("db")
        if configured:
            return sqlite_url(configured, self.base_dir())
        return sqlite_url(DEFAULT_DB)

    def open_store(self, *, create: bool) -> Any:
        """Open the store; without ``create``, a missing SQLite file is an error (nothing made)."""
        from reviewflow.store import SqlStore, Timeouts, open_store

        timeouts = None
        spec = os.environ.get("REVIEWFLOW_DB_TIMEOUTS")
        if spec:  # the URL's own *_timeout parameters still win
            timeouts = Timeouts.from_text(spec)
        url = self.db_url()
        path = _sqlite_path(url)
        if not create and path is not None and not path.is_file():
            raise InputError(f"no database at {path}; create one with "
                             "`reviewflow init POLICY.toml --db ...` or point --db at it")
        if not create:
            return SqlStore(url, create=False, timeouts=timeouts)
        return open_store(url, timeouts=timeouts)

    # ------------------------------------------------------------------ policy and campaign

    def campaign_id(self, store: Any) -> str:
        """Return the campaign to work on: --campaign, the campaign file, or the only one stored."""
        chosen = self.campaign_option or os.environ.get("REVIEWFLOW_CAMPAIGN") or self.config().get(
            "campaign")
        existing = store.campaigns()
        if chosen:
            if chosen not in existing:
                raise InputError(f"no campaign {chosen!r} in {self.db_url()}; it holds: "
                                 f"{', '.join(existing) or 'none (run reviewflow init)'}")
            return str(chosen)
        if not existing:
            raise InputError(f"no campaign in {self.db_url()}; create one with "
                             "`reviewflow init POLICY.toml`")
        if len(existing) > 1:
            raise InputError(f"{self.db_url()} holds several campaigns ({', '.join(existing)}); "
                             "choose one with --campaign ID")
        return str(existing[0])

    def policy_path(self) -> Path | None:
        """Return the policy file: --policy, or the campaign file's ``policy``."""
        if self.policy_option:
            return Path(self.policy_option)
        configured = self.config().get("policy")
        if configured:
            base = self.base_dir() or Path()
            return base / str(configured)
        return None

    def policy_for(self, store: Any, campaign_id: str) -> Policy:
        """Return the campaign's policy: from the policy file, else rebuilt from the database."""
        path = self.policy_path()
        if path is not None:
            from reviewflow.policy_file import load_policy

            return load_policy(path)
        return self.stored_policy(store, campaign_id)

    def stored_policy(self, store: Any, campaign_id: str) -> Policy:
        """Return the campaign's policy as the database keeps it (its sealed policy)."""
        stored = store.campaign_policy(campaign_id)
        if stored is None:
            raise InputError(f"campaign {campaign_id!r} has no stored policy; pass --policy FILE")
        data = json.loads(stored)
        from reviewflow.policy_file import policy_from_dict

        try:
            return policy_from_dict(data, source="the database")
        except (PolicyError, TypeError, ValueError):
            pass
        year = data.get("year")
        if isinstance(year, int):
            default = Policy.default(year=year)
            if json.loads(default.to_json()) == data:
                return default
        raise InputError(f"cannot rebuild campaign {campaign_id!r}'s policy from the database; "
                         "give the policy file with --policy FILE (or policy = \"...\" in "
                         f"{CONFIG_NAME})")

    def clock(self, tz: str = "Asia/Shanghai") -> Any:
        """Return the clock: frozen at --now / REVIEWFLOW_NOW if given (else None: the system's).

        A time without an offset is read in ``tz`` (the policy's zone).
        """
        from reviewflow.clock import FrozenClock

        text = self.now_option or os.environ.get("REVIEWFLOW_NOW")
        if not text:
            return None
        import pendulum

        try:
            at = pendulum.parse(text, tz=tz)
        except Exception:
            raise InputError(f"--now {text!r} is not a date-time; write e.g. "
                             "2016-01-12T09:00+08:00") from None
        if not isinstance(at, pendulum.DateTime):
            raise InputError(f"--now {text!r} needs a date and a time, e.g. 2016-01-12T09:00+08:00")
        from reviewflow.deadlines import YEARS

        if at.year not in YEARS or at.in_timezone("UTC").year not in YEARS:
            raise InputError(f"--now {text!r} is out of range: give a time in the years "
                             f"{YEARS.start} to {YEARS.stop - 1}, e.g. 2016-01-12T09:00+08:00",
                             reason="invalid_argument")

        from reviewflow.clock import in_zone_of

        frozen_clock_allowed(at, rehearsal=self.config().get("rehearsal") is True,
                             flag=self.allow_frozen_clock)
        return FrozenClock(in_zone_of(at, pendulum.timezone(tz), what="--now"))

    def campaign(self) -> Campaign:
        """Open the existing campaign (never creates a database or a campaign)."""
        if self._campaign is None:
            store = self.open_store(create=False)
            cid = self.campaign_id(store)
            policy = self.policy_for(store, cid)
            from reviewflow.anchoring import audit_key_from_env

            self._campaign = Campaign(policy, clock=self.clock(policy.tz), store=store,
                                      campaign_id=cid, audit_key=audit_key_from_env())
        return self._campaign

    # ------------------------------------------------------------------ actors

    def actor(self, actor_id: str, roles: tuple[str, ...] = ()) -> Actor:
        """Return the actor with this id: from the campaign file, a case, or a guidance group.

        ``roles`` (from ``--role``) picks the roles to act in; for an actor nobody listed,
        it declares them.
        """
        actor_id = _ids.identifier(actor_id, "--actor")
        campaign = self.campaign()
        known = self.known_actor(campaign, actor_id)
        if known is None:
            if self.config().get("unlisted_actors") == "refuse":
                raise InputError(
                    f"unknown actor {actor_id!r}: list it under [actors.{actor_id}] in "
                    f"{CONFIG_NAME} with its roles (this campaign file says unlisted_actors "
                    "= \"refuse\", so --role does not declare one)")
            if not roles:
                raise InputError(
                    f"unknown actor {actor_id!r}: list it under [actors.{actor_id}] in "
                    f"{CONFIG_NAME} with its roles, or pass --role ROLE")
            for role in roles:
                if role not in campaign.policy.roles:
                    raise InputError(f"unknown role {role!r}; the policy's roles are: "
                                     f"{', '.join(sorted(campaign.policy.roles))}")
            return Actor(actor_id, actor_id, roles=set(roles))
        if roles:
            extra = set(roles) - known.roles
            if extra:
                raise InputError(f"{actor_id} does not hold the role(s) {', '.join(sorted(extra))}; "
                                 f"its roles are: {', '.join(sorted(known.roles))}")
            return Actor(known.id, known.name, roles=set(roles))
        return known

    def known_actor(self, campaign: Campaign, actor_id: str) -> Actor | None:
        """Return the actor if the campaign file, a case or the policy knows it."""
        actors: Mapping[str, Any] = self.config().get("actors", {})
        entry = actors.get(actor_id)
        if entry is not None:
            return Actor(actor_id, str(entry.get("name", actor_id)), roles=set(entry.get("roles", [])))
        roles: set[str] = set()
        name = actor_id
        for case in campaign.cases():
            if case.secretary.id == actor_id:
                roles.add("secretary")
                name = case.secretary.name or actor_id
                break
        if any(actor_id in members for members in campaign.policy.guidance_groups.values()):
            roles.add("guidance_group")
        return Actor(actor_id, name, roles=roles) if roles else None
