"""Parsed policy-file data to a checked :class:`~reviewflow.policy.Policy`, table by table."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import pendulum

from reviewflow import deadlines
from reviewflow._policy_io.checks import Checker
from reviewflow._policy_io.keys import (
    CONTENT_KEYS,
    COUNT_KEYS,
    FLAG_KEYS,
    LEVEL_KEYS,
    MAX_DEPTH,
    SECTION_LIST_KEYS,
    SHARE_KEYS,
    STAGE_KEYS,
    TOP_KEYS,
)
from reviewflow._policy_io.values import day, kind, parse_duration, suggest
from reviewflow.calendar import calendar_from_policy
from reviewflow.clock import DEFAULT_TZ
from reviewflow.deadlines import DueRule
from reviewflow.model import Stage
from reviewflow.policy import EVENT_NAMES, MAX_GRACE, ApprovalLevel, ContentRules, Policy, StageRule
from reviewflow.scoring import ScoringPolicy


class Reader(Checker):
    """Turns parsed data into a Policy, raising PolicyError with the file, field and line."""

    # -- the policy

    def policy(self, data: Mapping[str, Any]) -> Policy:
        if not isinstance(data, Mapping):
            raise self.error(f"a policy must be a table of settings, not {kind(data)}", None)
        self.depth(data)
        self.keys(data, TOP_KEYS, None)
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
                    f"unknown stage {key!r}{suggest(key, known)}; stages are: "
                    f"{', '.join(known)}", f"stages.{key}"
                )
            stages[Stage(key)] = self.read_stage(rule, f"stages.{key}")
        return stages

    def read_stage(self, value: Any, field: str) -> StageRule:
        table = self.table(value, field)
        self.keys(table, STAGE_KEYS, field, also=("grace_seconds",))
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
                raise self.error(f"must be a whole number of seconds, not {kind(seconds)}",
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
                f"not {kind(value)}", field
            )
        seconds = parse_duration(value)
        if seconds is None:
            raise self.error(
                f'{value!r} is not a duration; write e.g. "2h", "30m", "1d12h" '
                '(d = days, h = hours, m = minutes, s = seconds) or "0"', field
            )
        return self.duration(seconds, field)

    def duration(self, seconds: int, field: str) -> pendulum.Duration:
        """A grace of ``seconds``: at most :data:`reviewflow.policy.MAX_GRACE`."""
        if seconds > MAX_GRACE.total_seconds():
            raise self.error(f"a grace of {seconds:,} seconds is out of range: at most "
                             f"{MAX_GRACE.days} days (\"{MAX_GRACE.days}d\")", field)
        return pendulum.duration(seconds=seconds)

    def ladder(self, value: Any, field: str) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise self.error(
                f"must be a list of rungs ([[{field}]] tables), not {kind(value)}",
                field
            )
        if not value:
            return ()
        return tuple(self.call(field, "the reminder ladder",
                               lambda: deadlines.ladder_from_json(value, field)))

    def read_permissions(self, value: Any, roles: Mapping[str, str]) -> dict[str, frozenset[str]]:
        table = self.table(value, "permissions")
        known = sorted(EVENT_NAMES)
        out = {}
        for event, allowed in table.items():
            if event not in EVENT_NAMES:
                raise self.error(
                    f"unknown event {event!r}{suggest(event, known)}; events are: "
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
                f"{kind(items)}", "approval.levels"
            )
        levels = []
        for i, item in enumerate(items):
            field = f"approval.levels[{i}]"
            level = self.table(item, field)
            self.keys(level, LEVEL_KEYS, field)
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
                    f"{suggest(group, groups)}; declare it under [guidance_groups]",
                    field
                )
        return out

    def read_content(self, value: Any) -> ContentRules:
        table = self.table(value, "content")
        self.keys(table, CONTENT_KEYS, "content")
        kwargs: dict[str, Any] = {}
        for key in SECTION_LIST_KEYS:
            if key in table:
                kwargs[key] = tuple(self.strings(table[key], f"content.{key}"))
        for key in SHARE_KEYS:
            if key in table:
                kwargs[key] = self.share(table[key], f"content.{key}")
        for key in COUNT_KEYS:
            if key in table:
                count = table[key]
                if count is False or count is None:
                    kwargs[key] = None
                elif self.integer(count, f"content.{key}") < 0:
                    raise self.error("must not be negative", f"content.{key}")
                else:
                    kwargs[key] = count
        for key in FLAG_KEYS:
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
        out = {key: tuple(day(x) for x in v) if isinstance(v, list | tuple) else v
               for key, v in table.items()}
        self.call("calendar", "the calendar", lambda: calendar_from_policy(out, "calendar"))
        return out

    def read_plugins(self, value: Any) -> tuple[str, ...]:
        names = self.strings(value, "plugins")
        for i, plugin in enumerate(names):
            if names.index(plugin) != i:
                raise self.error(
                    f"plugin {plugin!r} is listed twice; list it once", f"plugins[{i}]"
                )
        return tuple(names)
