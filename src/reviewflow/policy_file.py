"""Policy files: read a complete :class:`~reviewflow.policy.Policy` from TOML, and write one.

A policy file is checked as it is read. Every problem is a :class:`PolicyError` that
names the file, the setting (a dotted path such as ``stages.drafting.due.at``), the
line where it can be found, and what to do. The format is described, key by key, in
``docs/reference/policy-file.md``; the shipped ``default_policy.toml`` is the seed's
plan for 2016 and loads to ``Policy.default(year=2016)``.

The rule for what a file leaves out: a top-level setting or table that is absent keeps
the seed's default for the file's ``year``; a table that is present replaces the
default, except ``[permissions]`` (events not listed keep their default roles),
``[content]`` and ``[scoring]`` (keys not given keep their defaults).
"""

from __future__ import annotations

import datetime as _dt
import difflib
import json
import os
import re
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import pendulum

from reviewflow import deadlines
from reviewflow._files import read_capped
from reviewflow.clock import DEFAULT_TZ
from reviewflow.deadlines import At, DueRule
from reviewflow.exceptions import PolicyError
from reviewflow.model import Stage
from reviewflow.policy import EVENT_NAMES, ApprovalLevel, ContentRules, Policy, StageRule
from reviewflow.scoring import ScoringPolicy

__all__ = [
    "DEFAULT_POLICY_FILE",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "load_policy",
    "policy_from_dict",
    "policy_to_data",
    "policy_to_toml",
]

#: The seed's plan for 2016 as an annotated policy file (loads to ``Policy.default(year=2016)``).
DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.toml")
#: Policy files larger than this are refused before they are parsed.
MAX_FILE_BYTES = 256 * 1024
#: Tables and arrays nested deeper than this are refused.
MAX_DEPTH = 32

_TOP_KEYS = (
    "name", "year", "tz", "plugins", "roles", "stages", "permissions", "approval",
    "guidance_groups", "assignments", "content", "scoring", "calendar",
)
_STAGE_KEYS = ("due", "hard", "grace", "opens", "ladder")
_LEVEL_KEYS = ("name", "label", "roles")
_SHARE_KEYS = ("achievement_max_share", "problems_min_share")
_COUNT_KEYS = ("min_chars", "max_chars")
_SECTION_LIST_KEYS = ("required_sections", "achievement_sections")
_FLAG_KEYS = ("require_cause_and_measure", "require_carry_over")
_CONTENT_KEYS = _SECTION_LIST_KEYS + _SHARE_KEYS + _COUNT_KEYS + _FLAG_KEYS

_T = TypeVar("_T")


# --------------------------------------------------------------------------- reading


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read a policy from a TOML file and check it.

    Raise :class:`PolicyError` for anything wrong with the file: missing, not a regular
    file, over :data:`MAX_FILE_BYTES`, not UTF-8, not TOML (duplicate keys included),
    nested deeper than :data:`MAX_DEPTH`, or a setting that is unknown, of the wrong
    type or inconsistent. The error names the file, the line and the setting.
    """
    source = os.fspath(path)
    text = _read_text(source)
    _check_dotted_keys(text, source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(exc, source, text) from None
    except ValueError as exc:  # int() past Python's digit limit (sys.get_int_max_str_digits)
        raise _number_error(exc, source, text) from None
    except RecursionError:
        line = _deep_line(text)
        raise PolicyError(
            f"tables or arrays are nested too deeply (the limit is {MAX_DEPTH} levels); "
            "a policy file needs only a few",
            field=None if line is None else _LineIndex(text).field_at(line),
            source=source, line=line,
        ) from None
    return _Reader(source, text).policy(data)


def policy_from_dict(data: Mapping[str, Any], *, source: str | None = None) -> Policy:
    """Build a policy from parsed policy-file data (the shape ``tomllib`` returns) and check it.

    ``source`` names where the data came from in error messages.
    """
    return _Reader(source, None).policy(data)


def _read_text(source: str) -> str:
    raw = read_capped(
        source, MAX_FILE_BYTES, "a .toml policy file",
        too_large="a policy file is a few KiB: check that this is the right file",
        fail=lambda message: PolicyError(message, source=source),
    )
    if raw.startswith(b"\xef\xbb\xbf"):  # editors on Windows often add a UTF-8 BOM
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise PolicyError(
            f"the file is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8 (GBK/GB 18030 files must be converted)",
            source=source, line=line,
        ) from None


def _check_dotted_keys(text: str, source: str) -> None:
    """Refuse a dotted key deeper than MAX_DEPTH before parsing: tomllib's time for one
    grows with the square of its length."""
    found = _LONG_DOTTED.search(text)
    if found:
        line = text.count("\n", 0, found.start()) + 1
        raise PolicyError(
            f"a key or table name has more than {MAX_DEPTH} dotted parts; a policy file "
            "needs only a few",
            source=source, line=line,
        )


def _deep_line(text: str) -> int | None:
    """Return the first line that opens more than MAX_DEPTH brackets, if one does."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.count("[") + line.count("{") > MAX_DEPTH:
            return number
    return None


def _number_error(exc: ValueError, source: str, text: str) -> PolicyError:
    """Turn tomllib's ValueError for a number it cannot convert into a PolicyError."""
    digits = sys.get_int_max_str_digits() or 4300
    found = re.search(rf"[0-9_]{{{digits + 1},}}", text)
    line = None if found is None else text.count("\n", 0, found.start()) + 1
    return PolicyError(
        f"a number here is too long to read ({str(exc).split(';')[0]}); numbers in a policy "
        "file are short (a year, a count): check this line",
        field=None if line is None else _LineIndex(text).field_at(line),
        source=source, line=line,
    )


_AT_LINE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _toml_error(exc: tomllib.TOMLDecodeError, source: str, text: str) -> PolicyError:
    message = str(exc)
    line: int | None = getattr(exc, "lineno", None)
    column: int | None = getattr(exc, "colno", None)
    found = _AT_LINE.search(message)
    if found:
        message = message[: found.start()]
        line, column = int(found.group(1)), int(found.group(2))
    message = message.removesuffix(" (at end of document)")
    where = f" (column {column})" if column else ""
    field = None
    if line is not None:
        field = _LineIndex(text).field_at(line)
    low = message.lower()
    if "overwrite" in low or "twice" in low:
        hint = "a key or table is given twice; keep one of them"
    else:
        hint = "fix the TOML syntax here (strings in double quotes, tables as [name])"
    return PolicyError(f"not valid TOML: {message}{where}; {hint}", field=field,
                       source=source, line=line)


class _Reader:
    """Turns parsed data into a Policy, raising PolicyError with the file, field and line."""

    def __init__(self, source: str | None, text: str | None) -> None:
        self.source = source
        self.text = text
        self._index: _LineIndex | None = None
        self.tz = DEFAULT_TZ

    # -- errors

    def line_of(self, field: str | None) -> int | None:
        if self.text is None or not field:
            return None
        if self._index is None:
            self._index = _LineIndex(self.text)
        return self._index.line_of(field)

    def error(self, message: str, field: str | None) -> PolicyError:
        return PolicyError(message, field=field, source=self.source, line=self.line_of(field))

    def rewrap(self, exc: PolicyError) -> PolicyError:
        """Add the file and line to an error raised by a delegate or by Policy's checks."""
        if exc.source is not None:
            return exc
        message = str(exc)
        if exc.field and message.startswith(f"{exc.field}: "):
            message = message[len(exc.field) + 2:]
        return PolicyError(message, field=exc.field, source=self.source,
                           line=self.line_of(exc.field))

    def call(self, field: str, what: str, fn: Callable[[], _T]) -> _T:
        """Run a delegate reader; turn whatever it raises into a PolicyError naming ``field``."""
        try:
            return fn()
        except PolicyError as exc:
            raise self.rewrap(exc) from exc
        except RecursionError:
            raise self.error(f"{what} is nested too deeply", field) from None
        except Exception as exc:
            raise PolicyError(
                f"cannot read {what}: {exc}; see docs/reference/policy-file.md for its form",
                field=field, source=self.source, line=self.line_of(field),
            ) from exc

    # -- type checks

    def table(self, value: Any, field: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(f"must be a table (e.g. [{field}]), not {_kind(value)}", field)
        return value

    def keys(self, data: Mapping[str, Any], known: Iterable[str], field: str | None,
             *, also: Iterable[str] = ()) -> None:
        """Refuse keys not in ``known`` (``also``: accepted, but not offered in messages)."""
        known = tuple(known)
        accepted = set(known) | set(also)
        for key in data:
            if key not in accepted:
                where = f"{field}.{key}" if field else key
                raise self.error(
                    f"unknown setting {key!r}{_suggest(key, known)}; "
                    f"settings here are: {', '.join(known)}", where
                )

    def string(self, value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise self.error(f"must be a string in double quotes, not {_kind(value)}", field)
        return value

    def boolean(self, value: Any, field: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(f"must be true or false, not {_kind(value)}", field)
        return value

    def integer(self, value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"must be a whole number, not {_kind(value)}", field)
        return value

    def strings(self, value: Any, field: str) -> list[str]:
        if not isinstance(value, list):
            raise self.error(
                f'must be a list of strings, e.g. ["a", "b"], not {_kind(value)}', field
            )
        for i, item in enumerate(value):
            self.string(item, f"{field}[{i}]")
        return value

    def roles(self, value: Any, field: str, roles: Mapping[str, str]) -> frozenset[str]:
        names = self.strings(value, field)
        for i, role in enumerate(names):
            if role not in roles:
                raise self.error(
                    f"unknown role {role!r}{_suggest(role, roles)}; declare it under "
                    f"[roles] or use one of: {', '.join(roles)}", f"{field}[{i}]"
                )
        return frozenset(names)

    def datetime(self, value: Any, field: str, *, dates: bool = False) -> pendulum.DateTime:
        """Read a date-time (TOML, or an ISO string as JSON has it); a local one (no offset)
        is in the policy's time zone."""
        if isinstance(value, str):
            try:
                value = (_dt.date.fromisoformat(value) if dates and len(value) == 10
                         else _dt.datetime.fromisoformat(value))
            except ValueError:
                raise self.error(
                    f"{value!r} is not a date-time; write e.g. 2017-01-11T00:00:00+08:00 "
                    "(without quotes)", field
                ) from None
        if isinstance(value, _dt.date) and value.year not in deadlines.YEARS:
            raise self.error(
                f"{value.isoformat()} is out of range: a policy's dates fall in the years "
                f"{deadlines.YEARS.start} to {deadlines.YEARS.stop - 1}", field)
        if isinstance(value, _dt.datetime):
            if value.tzinfo is None:
                return pendulum.instance(value, tz=self.tz)
            return pendulum.instance(value).in_timezone(self.tz)
        if dates and isinstance(value, _dt.date):
            return pendulum.datetime(value.year, value.month, value.day, tz=self.tz)
        raise self.error(
            f"must be a date-time such as 2017-01-11T00:00:00+08:00, not {_kind(value)}",
            field
        )

    # -- the policy

    def policy(self, data: Mapping[str, Any]) -> Policy:
        if not isinstance(data, Mapping):
            raise self.error(f"a policy must be a table of settings, not {_kind(data)}", None)
        self.depth(data)
        self.keys(data, _TOP_KEYS, None)
        if "year" not in data:
            raise self.error(
                "the year of the assessment is missing; add e.g. year = 2016 "
                "at the top of the file", "year"
            )
        year = self.integer(data["year"], "year")
        tz = self.string(data.get("tz", DEFAULT_TZ), "tz")
        try:
            pendulum.timezone(tz)
        except Exception:
            raise self.error(
                f"unknown time zone {tz!r}; use an IANA name such as 'Asia/Shanghai'",
                "tz"
            ) from None
        self.tz = tz
        seed = self.call("year", "the year", lambda: Policy.default(year=year, tz=tz))
        name = self.string(data.get("name", seed.name), "name")
        if not name.strip():
            raise self.error(
                "the name is empty; give the campaign a name people will recognise",
                "name"
            )
        roles = dict(seed.roles)
        if "roles" in data:
            roles = self.read_roles(data["roles"])
        stages = dict(seed.stages)
        if "stages" in data:
            stages = self.read_stages(data["stages"])
        permissions = dict(seed.permissions)
        if "permissions" in data:
            permissions.update(self.read_permissions(data["permissions"], roles))
            for event, allowed in permissions.items():
                for role in sorted(allowed):
                    if role not in roles:
                        raise self.error(
                            f"event {event!r} keeps its default roles, which include {role!r}, "
                            f"a role this file does not declare; list {event} under "
                            "[permissions] or declare the role under [roles]", "permissions")
        levels = seed.approval_levels
        if "approval" in data:
            levels = self.read_approval(data["approval"], roles)
        groups = dict(seed.guidance_groups)
        if "guidance_groups" in data:
            groups = self.read_groups(data["guidance_groups"])
        assignments = dict(seed.assignments)
        if "assignments" in data:
            assignments = self.read_assignments(data["assignments"], groups)
        content = seed.content
        if "content" in data:
            content = self.read_content(data["content"])
        scoring = seed.scoring
        if "scoring" in data:
            scoring_data = self.table(data["scoring"], "scoring")
            scoring = self.call("scoring", "the scoring settings",
                                lambda: ScoringPolicy.from_json(scoring_data, field="scoring"))
        calendar = dict(seed.calendar)
        if "calendar" in data:
            calendar = self.read_calendar(data["calendar"])
        plugins = seed.plugins
        if "plugins" in data:
            plugins = self.read_plugins(data["plugins"])
        return self.call("", "the policy", lambda: Policy(
            name=name, year=year, tz=tz, roles=roles, stages=stages, permissions=permissions,
            approval_levels=levels, guidance_groups=groups, assignments=assignments,
            content=content, scoring=scoring, calendar=calendar, plugins=plugins,
        ))

    def depth(self, data: Mapping[str, Any]) -> None:
        """Refuse data nested deeper than MAX_DEPTH (iteratively: no recursion to exhaust)."""
        stack: list[tuple[Any, int, str]] = [(data, 0, "")]
        while stack:
            node, level, path = stack.pop()
            if level > MAX_DEPTH:
                raise self.error(
                    f"nested too deeply (the limit is {MAX_DEPTH} levels); a policy "
                    "file needs only a few", path or None
                )
            if isinstance(node, Mapping):
                for key, value in node.items():
                    if isinstance(value, Mapping | list):
                        stack.append((value, level + 1, f"{path}.{key}" if path else str(key)))
            elif isinstance(node, list):
                for i, value in enumerate(node):
                    if isinstance(value, Mapping | list):
                        stack.append((value, level + 1, f"{path}[{i}]"))

    def read_roles(self, value: Any) -> dict[str, str]:
        table = self.table(value, "roles")
        roles = {}
        for role, label in table.items():
            roles[role] = self.string(label, f"roles.{role}")
        if not roles:
            raise self.error(
                "no roles are declared; list each role with its Chinese name, "
                'e.g. organizer = "局党组"', "roles"
            )
        return roles

    def read_stages(self, value: Any) -> dict[Stage, StageRule]:
        table = self.table(value, "stages")
        known = [s.value for s in Stage]
        stages: dict[Stage, StageRule] = {}
        for key, rule in table.items():
            if key not in known:
                raise self.error(
                    f"unknown stage {key!r}{_suggest(key, known)}; stages are: "
                    f"{', '.join(known)}", f"stages.{key}"
                )
            stages[Stage(key)] = self.read_stage(rule, f"stages.{key}")
        return stages

    def read_stage(self, value: Any, field: str) -> StageRule:
        table = self.table(value, field)
        self.keys(table, _STAGE_KEYS, field, also=("grace_seconds",))
        due: DueRule | None = None
        if "due" in table:
            due_data = self.due_data(table["due"], f"{field}.due")
            due = self.call(f"{field}.due", "the due rule",
                            lambda: deadlines.due_rule_from_json(due_data, f"{field}.due"))
        hard = self.boolean(table.get("hard", False), f"{field}.hard")
        grace = pendulum.duration()
        if "grace" in table:
            grace = self.grace(table["grace"], f"{field}.grace")
        if "grace_seconds" in table:  # the form Policy.to_json writes
            where = f"{field}.grace_seconds"
            seconds = table["grace_seconds"]
            if "grace" in table:
                raise self.error('give grace or grace_seconds, not both', where)
            if (isinstance(seconds, bool) or not isinstance(seconds, int | float)
                    or not 0 <= seconds < 1e9 or seconds != int(seconds)):
                raise self.error(f"must be a whole number of seconds, not {_kind(seconds)}",
                                 where)
            grace = self.duration(int(seconds), where)
        opens = None
        if "opens" in table:
            opens = self.datetime(table["opens"], f"{field}.opens", dates=True)
        ladder: tuple[Any, ...] = ()
        if "ladder" in table:
            ladder = self.ladder(table["ladder"], f"{field}.ladder")
        return StageRule(due=due, hard=hard, grace=grace, opens=opens, ladder=ladder)

    def due_data(self, value: Any, field: str) -> Any:
        """Put a due time given as a TOML date-time into the policy's time zone."""
        if isinstance(value, Mapping) and isinstance(value.get("at"), _dt.datetime):
            return {**value, "at": self.datetime(value["at"], f"{field}.at")}
        return value

    def grace(self, value: Any, field: str) -> pendulum.Duration:
        if not isinstance(value, str):
            raise self.error(
                f'must be a duration in quotes such as "2h", "30m" or "1d12h", '
                f"not {_kind(value)}", field
            )
        seconds = _parse_duration(value)
        if seconds is None:
            raise self.error(
                f'{value!r} is not a duration; write e.g. "2h", "30m", "1d12h" '
                '(d = days, h = hours, m = minutes, s = seconds) or "0"', field
            )
        return self.duration(seconds, field)

    def duration(self, seconds: int, field: str) -> pendulum.Duration:
        """A grace of ``seconds``: at most :data:`reviewflow.policy.MAX_GRACE`."""
        from reviewflow.policy import MAX_GRACE

        if seconds > MAX_GRACE.total_seconds():
            raise self.error(f"a grace of {seconds:,} seconds is out of range: at most "
                             f"{MAX_GRACE.days} days (\"{MAX_GRACE.days}d\")", field)
        return pendulum.duration(seconds=seconds)

    def ladder(self, value: Any, field: str) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise self.error(
                f"must be a list of rungs ([[{field}]] tables), not {_kind(value)}",
                field
            )
        if not value:
            return ()
        reader = getattr(deadlines, "ladder_from_json", None)
        if reader is None:
            raise self.error(
                "reminder ladders are not supported by this version of reviewflow "
                "yet; remove the ladder", field
            )
        return tuple(self.call(field, "the reminder ladder", lambda: reader(value, field)))

    def read_permissions(self, value: Any, roles: Mapping[str, str]) -> dict[str, frozenset[str]]:
        table = self.table(value, "permissions")
        known = sorted(EVENT_NAMES)
        out = {}
        for event, allowed in table.items():
            if event not in EVENT_NAMES:
                raise self.error(
                    f"unknown event {event!r}{_suggest(event, known)}; events are: "
                    f"{', '.join(known)}", f"permissions.{event}"
                )
            out[event] = self.roles(allowed, f"permissions.{event}", roles)
        return out

    def read_approval(self, value: Any, roles: Mapping[str, str]) -> tuple[ApprovalLevel, ...]:
        table = self.table(value, "approval")
        self.keys(table, ("levels",), "approval")
        items = table.get("levels", [])
        if not isinstance(items, list):
            raise self.error(
                f"must be a list of levels ([[approval.levels]] tables), not "
                f"{_kind(items)}", "approval.levels"
            )
        levels = []
        for i, item in enumerate(items):
            field = f"approval.levels[{i}]"
            level = self.table(item, field)
            self.keys(level, _LEVEL_KEYS, field)
            if "name" not in level:
                raise self.error('the level has no name; add e.g. name = "guidance_group"', field)
            if "roles" not in level:
                raise self.error(
                    'the level has no signers; add e.g. roles = ["guidance_group"]',
                    field
                )
            levels.append(ApprovalLevel(
                name=self.string(level["name"], f"{field}.name"),
                label=self.string(level.get("label", ""), f"{field}.label"),
                roles=self.roles(level["roles"], f"{field}.roles", roles),
            ))
        return tuple(levels)

    def read_groups(self, value: Any) -> dict[str, frozenset[str]]:
        table = self.table(value, "guidance_groups")
        return {group: frozenset(self.strings(members, f"guidance_groups.{group}"))
                for group, members in table.items()}

    def read_assignments(self, value: Any, groups: Mapping[str, Any]) -> dict[str, str]:
        table = self.table(value, "assignments")
        out = {}
        for case_id, group in table.items():
            field = f"assignments.{case_id}"
            out[case_id] = self.string(group, field)
            if group not in groups:
                raise self.error(
                    f"case {case_id!r} is assigned to unknown guidance group {group!r}"
                    f"{_suggest(group, groups)}; declare it under [guidance_groups]",
                    field
                )
        return out

    def read_content(self, value: Any) -> ContentRules:
        table = self.table(value, "content")
        self.keys(table, _CONTENT_KEYS, "content")
        kwargs: dict[str, Any] = {}
        for key in _SECTION_LIST_KEYS:
            if key in table:
                kwargs[key] = tuple(self.strings(table[key], f"content.{key}"))
        for key in _SHARE_KEYS:
            if key in table:
                kwargs[key] = self.share(table[key], f"content.{key}")
        for key in _COUNT_KEYS:
            if key in table:
                count = table[key]
                if count is False or count is None:
                    kwargs[key] = None
                elif self.integer(count, f"content.{key}") < 0:
                    raise self.error("must not be negative", f"content.{key}")
                else:
                    kwargs[key] = count
        for key in _FLAG_KEYS:
            if key in table:
                kwargs[key] = self.boolean(table[key], f"content.{key}")
        return ContentRules(**kwargs)

    def share(self, value: Any, field: str) -> Fraction | None:
        if value is False or value is None:
            return None
        if isinstance(value, float | int) and not isinstance(value, bool):
            raise self.error(
                f'write the share as a fraction in quotes, e.g. "1/3" (not {value!r}: '
                "decimal numbers are inexact)", field
            )
        text = self.string(value, field).strip()
        try:
            share = (Fraction(text[:-1].strip()) / 100 if text.endswith("%")
                     else Fraction(text))
        except (ValueError, ZeroDivisionError):
            raise self.error(
                f'{value!r} is not a share; write a fraction such as "1/3" or a '
                'percentage such as "30%"', field
            ) from None
        if not 0 < share <= 1:
            raise self.error(f'{value!r} is not a share between 0 and 1; write e.g. "1/3"', field)
        return share

    def read_calendar(self, value: Any) -> dict[str, Any]:
        """Check the [calendar] table with the calendar's own reader; keep it as data."""
        table = self.table(value, "calendar")
        out = {key: tuple(_day(x) for x in v) if isinstance(v, list | tuple) else v
               for key, v in table.items()}
        try:
            from reviewflow import calendar
        except ImportError:  # pragma: no cover - the calendar ships with reviewflow
            return out
        reader = getattr(calendar, "calendar_from_policy", None)
        if reader is not None:
            self.call("calendar", "the calendar", lambda: reader(out, "calendar"))
        return out

    def read_plugins(self, value: Any) -> tuple[str, ...]:
        names = self.strings(value, "plugins")
        for i, plugin in enumerate(names):
            if names.index(plugin) != i:
                raise self.error(
                    f"plugin {plugin!r} is listed twice; list it once", f"plugins[{i}]"
                )
        return tuple(names)


def _day(value: Any) -> Any:
    """Turn an ISO date string into a date (the JSON form of a TOML date); keep the rest."""
    if isinstance(value, str) and len(value) == 10:
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            return value
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return f"the {type(value).__name__} {value.isoformat()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return f"a {type(value).__name__}"


def _suggest(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_DURATION_UNITS = (86400, 3600, 60, 1)


def _parse_duration(text: str) -> int | None:
    text = text.strip().replace(" ", "")
    if text == "0":
        return 0
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        return None
    return sum(int(n) * unit for n, unit in zip(match.groups(), _DURATION_UNITS, strict=True)
               if n)


def _format_duration(duration: _dt.timedelta) -> str:
    seconds = int(duration.total_seconds())
    if seconds != duration.total_seconds() or seconds < 0:
        raise PolicyError(f"a grace of {duration} cannot be written; use whole, positive "
                          "seconds", field="grace")
    if seconds == 0:
        return "0"
    parts = []
    for unit, letter in zip(_DURATION_UNITS, "dhms", strict=True):
        n, seconds = divmod(seconds, unit)
        if n:
            parts.append(f"{n}{letter}")
    return "".join(parts)


# --------------------------------------------------------------------------- line index


_BARE = r"[A-Za-z0-9_-]+"
_BASIC = r'"(?:[^"\\]|\\.)*"'
_LITERAL = r"'[^']*'"
_PART = rf"(?:{_BARE}|{_BASIC}|{_LITERAL})"
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_PART_RE = re.compile(_PART)
#: A key of more than MAX_DEPTH dotted parts, where keys start: at a line's start (a header's
#: after its brackets) or after "{" or "," (inline tables). Strings end at the line's end,
#: so every scan stops there: linear in the text.
_LINE_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')"""
_LONG_DOTTED = re.compile(
    rf"(?:^|[{{,])[ \t]*+\[*+[ \t]*+(?:{_LINE_PART}[ \t]*+\.[ \t]*+){{{MAX_DEPTH},}}{_LINE_PART}",
    re.MULTILINE,
)
_HEADER_RE = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_KEY_RE = re.compile(rf"^\s*({_DOTTED})\s*=\s*(.*)$")
_INLINE_KEY_RE = re.compile(rf"[{{,]\s*({_DOTTED})\s*=")


def _parts(dotted: str) -> list[str]:
    out = []
    for token in _PART_RE.findall(dotted):
        if token.startswith('"'):
            try:
                token = json.loads(token)
            except ValueError:
                token = token[1:-1]
        elif token.startswith("'"):
            token = token[1:-1]
        out.append(token)
    return out


class _LineIndex:
    """Where each table and key of a TOML text is (best effort, for error messages).

    Paths are written as the reader names fields: ``stages.drafting.due.at``,
    ``approval.levels[1].roles``. One pass, linear in the size of the text.
    """

    def __init__(self, text: str) -> None:
        self.lines: dict[str, int] = {}
        self.at_line: dict[int, str] = {}
        #: For each array of tables, the path of its latest element.
        self.current: dict[str, str] = {}
        counts: dict[str, int] = {}
        table = ""
        in_string: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if in_string is not None:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            header = _HEADER_RE.match(line)
            if header:
                parts = _parts(header.group(2))
                if header.group(1) == "[[":
                    parent = self.expand(parts[:-1])
                    base = f"{parent}.{parts[-1]}" if parent else parts[-1]
                    index = counts.get(base, 0)
                    counts[base] = index + 1
                    self.add(base, number)
                    table = f"{base}[{index}]"
                    self.current[base] = table
                else:
                    table = self.expand(parts)
                self.add(table, number)
                self.at_line[number] = table
                continue
            keyed = _KEY_RE.match(line)
            if not keyed:
                continue
            key = ".".join(_parts(keyed.group(1)))
            path = f"{table}.{key}" if table else key
            self.add(path, number)
            self.at_line[number] = path
            rest = keyed.group(2)
            if rest.lstrip().startswith("{"):
                for inner in _INLINE_KEY_RE.findall(rest):
                    self.lines.setdefault(f"{path}.{'.'.join(_parts(inner))}", number)
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2 == 1:
                    in_string = quote

    def expand(self, parts: list[str]) -> str:
        """Join a header's parts, pointing into the latest element of any array of tables."""
        path = ""
        for part in parts:
            path = f"{path}.{part}" if path else part
            path = self.current.get(path, path)
        return path

    def add(self, key: str, number: int) -> None:
        """Record the first line of ``key`` and of each table enclosing it."""
        while key and key not in self.lines:
            self.lines[key] = number
            cut = max(key.rfind("."), key.rfind("["))
            if cut <= 0:
                break
            key = key[:cut]

    def line_of(self, field: str) -> int | None:
        """Return the line of ``field`` or of its nearest enclosing table or key."""
        while field:
            if field in self.lines:
                return self.lines[field]
            cut = max(field.rfind("."), field.rfind("["))
            if cut <= 0:
                return None
            field = field[:cut]
        return None

    def field_at(self, number: int) -> str | None:
        """Return the path of the key or table on a line, if that line has one."""
        return self.at_line.get(number)


# --------------------------------------------------------------------------- writing


def policy_to_toml(policy: Policy) -> str:
    """Return ``policy`` as policy-file TOML that :func:`load_policy` reads back as equal.

    Every section is written out in full, so the file does not depend on the seed's
    defaults. (A policy whose permissions omit an event loads back with that event's
    default roles: list every event to keep such a policy exact.)
    """
    out = _Writer()
    out.comment("reviewflow policy file (see docs/reference/policy-file.md)")
    out.pair("name", policy.name)
    out.pair("year", policy.year)
    out.pair("tz", policy.tz)
    out.pair("plugins", list(policy.plugins))
    out.header("roles")
    for role, label in policy.roles.items():
        out.pair(role, label)
    if not policy.stages:
        out.header("stages")
    for stage in Stage:
        rule = policy.stages.get(stage)
        if rule is None:
            continue
        path = f"stages.{stage.value}"
        out.header(path)
        if rule.due is not None:
            out.pair("due", _due_data(rule.due))
        out.pair("hard", rule.hard)
        if rule.grace:
            out.pair("grace", _format_duration(rule.grace))
        if rule.opens is not None:
            out.pair("opens", rule.opens)
        for rung in rule.ladder:
            to_json = getattr(rung, "to_json", None)
            if to_json is None:
                raise PolicyError(f"ladder rung {rung!r} has no to_json(); it cannot be written",
                                  field=f"{path}.ladder")
            out.table(f"{path}.ladder", to_json(), array=True)
    out.header("permissions")
    for event, roles in policy.permissions.items():
        out.pair(event, sorted(roles))
    for level in policy.approval_levels:
        out.header("approval.levels", array=True)
        out.pair("name", level.name)
        out.pair("label", level.label)
        out.pair("roles", sorted(level.roles))
    if not policy.approval_levels:
        out.header("approval")
        out.pair("levels", [])
    out.header("guidance_groups")
    for group, members in policy.guidance_groups.items():
        out.pair(group, sorted(members))
    out.header("assignments")
    for case_id, group in policy.assignments.items():
        out.pair(case_id, group)
    out.table("content", _content_data(policy.content))
    out.table("scoring", policy.scoring.to_json())
    out.table("calendar", dict(policy.calendar))
    return out.text()


def policy_to_data(policy: Policy) -> dict[str, Any]:
    """Return ``policy`` as JSON-safe data in the policy-file shape.

    Date-times and dates become ISO strings; :func:`policy_from_dict` reads the data back
    to an equal policy, so a store can keep a policy as JSON.
    """
    data: dict[str, Any] = _plain(tomllib.loads(policy_to_toml(policy)))
    return data


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    return value


def _due_data(rule: DueRule) -> Any:
    if isinstance(rule, At):
        return {"at": rule.at}
    return rule.to_json()


def _content_data(c: ContentRules) -> dict[str, Any]:
    default = ContentRules()
    data: dict[str, Any] = {
        "required_sections": list(c.required_sections),
        "achievement_sections": list(c.achievement_sections),
    }
    for key in _SHARE_KEYS + _COUNT_KEYS:
        value = getattr(c, key)
        if value is None:
            if getattr(default, key) is not None:
                data[key] = False
        else:
            data[key] = str(value) if isinstance(value, Fraction) else value
    for key in _FLAG_KEYS:
        data[key] = getattr(c, key)
    return data


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def text(self) -> str:
        return "\n".join(self.lines).strip() + "\n"

    def comment(self, text: str) -> None:
        self.lines.append(f"# {text}")

    def header(self, path: str, *, array: bool = False) -> None:
        name = ".".join(_key(p) for p in path.split("."))
        self.lines.append("")
        self.lines.append(f"[[{name}]]" if array else f"[{name}]")

    def pair(self, key: str, value: Any) -> None:
        if value is None:
            return
        self.lines.append(f"{_key(key)} = {_value(value)}")

    def table(self, path: str, data: Mapping[str, Any], *, array: bool = False) -> None:
        """Write a table: its plain values first, then its sub-tables under their headers."""
        self.header(path, array=array)
        nested: list[tuple[str, Any, bool]] = []
        for key, value in data.items():
            if isinstance(value, Mapping) and not _small(value):
                nested.append((key, value, False))
            elif (isinstance(value, list | tuple) and value
                  and all(isinstance(v, Mapping) for v in value)):
                nested.append((key, value, True))
            else:
                self.pair(key, value)
        for key, value, is_array in nested:
            sub = f"{path}.{key}"
            if is_array:
                for item in value:
                    self.table(sub, item, array=True)
            else:
                self.table(sub, value)


def _small(value: Mapping[str, Any]) -> bool:
    return len(value) <= 4 and not any(isinstance(v, Mapping | list | tuple) for v in
                                       value.values())


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}


def _string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return _value(value.value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Decimal | Fraction):
        return _string(str(value))
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, Mapping):
        items = [f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, set | frozenset):
        return _value(sorted(value))
    raise PolicyError(f"cannot write {value!r} ({type(value).__name__}) as TOML")
