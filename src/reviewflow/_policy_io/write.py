"""A policy as policy-file TOML, and as JSON-safe data in the same shape.

The writer reads a policy through :class:`PolicyShape`, the part of
:class:`~reviewflow.policy.Policy` it writes, so that it does not import
:mod:`reviewflow.policy` (which uses it for ``Policy.to_json``).
"""

from __future__ import annotations

import datetime as _dt
import tomllib
from collections.abc import Mapping
from fractions import Fraction
from typing import Any, Protocol

from reviewflow._policy_io.keys import COUNT_KEYS, FLAG_KEYS, SHARE_KEYS
from reviewflow._policy_io.toml import Writer
from reviewflow._policy_io.values import format_duration
from reviewflow.deadlines import At, DueRule
from reviewflow.exceptions import PolicyError
from reviewflow.model import Stage
from reviewflow.scoring import ScoringPolicy


class StageShape(Protocol):
    """What the writer reads of a :class:`~reviewflow.policy.StageRule`."""

    @property
    def due(self) -> DueRule | None: ...
    @property
    def hard(self) -> bool: ...
    @property
    def grace(self) -> _dt.timedelta: ...
    @property
    def opens(self) -> _dt.datetime | None: ...
    @property
    def ladder(self) -> tuple[Any, ...]: ...


class LevelShape(Protocol):
    """What the writer reads of an :class:`~reviewflow.policy.ApprovalLevel`."""

    @property
    def name(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def roles(self) -> frozenset[str]: ...


class ContentShape(Protocol):
    """What the writer reads of :class:`~reviewflow.policy.ContentRules` (every field)."""

    @property
    def required_sections(self) -> tuple[str, ...]: ...
    @property
    def achievement_sections(self) -> tuple[str, ...]: ...


class PolicyShape(Protocol):
    """What the writer reads of a :class:`~reviewflow.policy.Policy`."""

    @property
    def name(self) -> str: ...
    @property
    def year(self) -> int: ...
    @property
    def tz(self) -> str: ...
    @property
    def plugins(self) -> tuple[str, ...]: ...
    @property
    def roles(self) -> Mapping[str, str]: ...
    @property
    def stages(self) -> Mapping[Stage, StageShape]: ...
    @property
    def permissions(self) -> Mapping[str, frozenset[str]]: ...
    @property
    def approval_levels(self) -> tuple[LevelShape, ...]: ...
    @property
    def guidance_groups(self) -> Mapping[str, frozenset[str]]: ...
    @property
    def assignments(self) -> Mapping[str, str]: ...
    @property
    def content(self) -> ContentShape: ...
    @property
    def scoring(self) -> ScoringPolicy: ...
    @property
    def calendar(self) -> Mapping[str, Any]: ...


def policy_to_toml(policy: PolicyShape) -> str:
    """Return ``policy`` as policy-file TOML that :func:`load_policy` reads back as equal.

    Every section is written out in full, so the file does not depend on the seed's
    defaults. (A policy whose permissions omit an event loads back with that event's
    default roles: list every event to keep such a policy exact.)
    """
    out = Writer()
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
            out.pair("grace", format_duration(rule.grace))
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


def policy_to_data(policy: PolicyShape) -> dict[str, Any]:
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


def _content_data(c: ContentShape) -> dict[str, Any]:
    default = type(c)()
    data: dict[str, Any] = {
        "required_sections": list(c.required_sections),
        "achievement_sections": list(c.achievement_sections),
    }
    for key in SHARE_KEYS + COUNT_KEYS:
        value = getattr(c, key)
        if value is None:
            if getattr(default, key) is not None:
                data[key] = False
        else:
            data[key] = str(value) if isinstance(value, Fraction) else value
    for key in FLAG_KEYS:
        data[key] = getattr(c, key)
    return data

