"""The policy: everything a campaign requires, as checked, frozen data.

``Policy.default(year=...)`` is the seed's plan (a district education bureau's
一述三评). ``reviewflow.load_policy(path)`` reads the same from a TOML file.
A policy is checked when it is built: a bad one raises :class:`PolicyError`
naming the field and the fix.

>>> p = Policy.default(year=2016)
>>> [level.label for level in p.approval_levels]
['指导组审阅', '局党组审定']
>>> p.stage(Stage.DRAFTING).hard
True
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

import attrs
import pendulum

from reviewflow import _lifecycle
from reviewflow.clock import DEFAULT_TZ
from reviewflow.deadlines import YEARS, At, DueRule, check_due_rules
from reviewflow.exceptions import PolicyError
from reviewflow.model import Stage
from reviewflow.scoring import ScoringPolicy

__all__ = [
    "DEFAULT_ROLES",
    "EVENTS",
    "ApprovalLevel",
    "ContentRules",
    "Policy",
    "StageRule",
]

#: Roles of the seed's plan, with their Chinese names.
DEFAULT_ROLES: Mapping[str, str] = {
    "organizer": "局党组",
    "secretary": "党组织书记",
    "guidance_group": "指导组",
    "superior_secretary": "上级党组织书记",
    "department_delegate": "上级党组织部门派员",
    "party_office": "局机关党委办公室",
    "scrutineer": "计票监票人",
}

#: Every event of the lifecycle: (name, source stage, destination stage, Chinese label),
#: derived from the one table in :mod:`reviewflow._lifecycle`. ``sign_off`` stays in
#: approval until the last level signs; ``comment`` and ``record_vote`` never change the stage.
EVENTS: tuple[tuple[str, Stage | None, Stage | None, str], ...] = tuple(
    (e.name, e.source, e.dest, e.label) for e in _lifecycle.FIRED
)
#: Steps that keep the stage and have a permission of their own (the vote's operations
#: follow ``record_vote``; scores, vetoes and publication follow ``finish_evaluation``).
SIDE_EVENTS: Mapping[str, str] = {e.name: e.label for e in _lifecycle.SIDE}
EVENT_NAMES = frozenset(_lifecycle.BY_NAME)

_DEFAULT_PERMISSIONS: Mapping[str, frozenset[str]] = {e.name: e.roles for e in _lifecycle.LIFECYCLE}


def _frozen_roles(value: Iterable[str]) -> frozenset[str]:
    return frozenset({value}) if isinstance(value, str) else frozenset(value)


def _permissions(value: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    return {event: _frozen_roles(roles) for event, roles in value.items()}


def _stages(value: Mapping[Any, Any]) -> dict[Stage, Any]:
    out: dict[Stage, Any] = {}
    for key, rule in value.items():
        try:
            stage = Stage(key)
        except ValueError:
            known = ", ".join(s.value for s in Stage)
            raise PolicyError(f"unknown stage {key!r}; stages are: {known}",
                              field="stages") from None
        out[stage] = rule
    return out


@attrs.frozen(kw_only=True)
class StageRule:
    """When the step out of a stage is due, and when it may happen at the earliest.

    ``hard`` refuses the step after ``due`` (+ ``grace``) with ``deadline_passed``;
    a soft deadline lets it through and marks it late. ``opens`` refuses a step
    before that time with ``too_early`` (the seed's meetings start mid-January).
    ``ladder`` holds the reminder and escalation rungs (see :mod:`reviewflow.deadlines`).
    """

    due: DueRule | None = None
    hard: bool = False
    grace: pendulum.Duration = attrs.field(factory=lambda: pendulum.duration())
    opens: pendulum.DateTime | None = None
    ladder: tuple[Any, ...] = ()


@attrs.frozen(kw_only=True)
class ApprovalLevel:
    """One level of the tiered review (分级审阅): who may sign at it."""

    name: str
    label: str = ""
    roles: frozenset[str] = attrs.field(converter=_frozen_roles)


@attrs.frozen(kw_only=True)
class ContentRules:
    """What a report must contain (the seed's 四个讲清楚 and 写成绩不超过1/3).

    Each of the ``required_sections`` must have text; the ``achievement_sections`` together may
    take at most ``achievement_max_share`` of the report's characters; the problem
    sections at least ``problems_min_share``, if set; every problem needs its causes
    and a measure; each of last year's problems must be addressed in ``rectified``.
    """

    required_sections: tuple[str, ...] = ("duty", "progress", "problems", "plans")
    achievement_sections: tuple[str, ...] = ("duty", "progress")
    achievement_max_share: Fraction | None = Fraction(1, 3)
    problems_min_share: Fraction | None = None
    min_chars: int | None = None
    max_chars: int | None = None
    require_cause_and_measure: bool = True
    require_carry_over: bool = True


_SECTIONS = frozenset({"duty", "progress", "problems", "plans", "rectified"})


@attrs.frozen(kw_only=True)
class Policy:
    """Everything a campaign requires. Build with :meth:`default`, :func:`load_policy`,
    or by hand; it is checked when built."""

    name: str = "述职评议考核"
    year: int
    tz: str = DEFAULT_TZ
    roles: Mapping[str, str] = attrs.field(factory=lambda: dict(DEFAULT_ROLES))
    stages: Mapping[Stage, StageRule] = attrs.field(factory=dict, converter=_stages)
    permissions: Mapping[str, frozenset[str]] = attrs.field(
        factory=lambda: dict(_DEFAULT_PERMISSIONS), converter=_permissions
    )
    approval_levels: tuple[ApprovalLevel, ...] = ()
    #: Guidance groups (指导组) by name: the actor ids of their members.
    guidance_groups: Mapping[str, frozenset[str]] = attrs.field(factory=dict)
    #: Which guidance group reviews which case (case id to group name).
    assignments: Mapping[str, str] = attrs.field(factory=dict)
    content: ContentRules = attrs.field(factory=ContentRules)
    scoring: ScoringPolicy = attrs.field(factory=ScoringPolicy)
    #: Working-day calendar settings; see :mod:`reviewflow.calendar`.
    calendar: Mapping[str, Any] = attrs.field(factory=dict)
    #: Plugins (entry-point names in the group ``reviewflow``) this campaign runs.
    plugins: tuple[str, ...] = ()

    def __attrs_post_init__(self) -> None:
        _check(self)

    def stage(self, stage: Stage) -> StageRule:
        """Return the rule for a stage (an empty rule if the policy sets none)."""
        return self.stages.get(stage) or _EMPTY_RULE

    def role_label(self, role: str) -> str:
        """Return a role's Chinese name."""
        return self.roles.get(role, role)

    @classmethod
    def default(cls, *, year: int, tz: str = DEFAULT_TZ) -> Policy:
        """Return the seed's plan for the ``year`` assessment (2016年度), run in January of
        that year as the seed runs it.

        Reports are due before 18 January (hard); meetings open mid-January (the 11th);
        two review levels: the guidance group, then the bureau's Party group.
        """
        _check_year(year)
        nxt = year
        stages = {
            Stage.DRAFTING: StageRule(
                due=At(pendulum.datetime(nxt, 1, 18, tz=tz)), hard=True,
                ladder=_default_report_ladder(),
            ),
            Stage.APPROVAL: StageRule(due=At(pendulum.datetime(nxt, 1, 25, tz=tz)), hard=False),
            Stage.MEETING: StageRule(
                opens=pendulum.datetime(nxt, 1, 11, tz=tz),
                due=At(pendulum.datetime(nxt, 2, 1, tz=tz)), hard=False,
            ),
        }
        levels = (
            ApprovalLevel(name="guidance_group", label="指导组审阅", roles={"guidance_group"}),
            ApprovalLevel(name="party_group", label="局党组审定", roles={"organizer"}),
        )
        return cls(name=f"{year}年度党组织书记抓党建工作述职评议考核", year=year, tz=tz,
                   stages=stages, approval_levels=levels)

    def to_json(self) -> str:
        """Return the policy as JSON in the policy-file shape (what a store keeps with the
        campaign); :func:`reviewflow.policy_file.policy_from_dict` reads it back."""
        from reviewflow._policy_io.write import policy_to_data

        return json.dumps(policy_to_data(self), ensure_ascii=False, sort_keys=True)


_EMPTY_RULE = StageRule()


def _default_report_ladder() -> tuple[Any, ...]:
    from reviewflow._due.ladder import default_report_ladder

    return tuple(default_report_ladder())


def _check_year(year: Any) -> None:
    if not isinstance(year, int) or not 1949 < year < 2200:
        raise PolicyError(f"year {year!r} is not a plausible year; give e.g. 2016", field="year")


def _check(p: Policy) -> None:
    _check_year(p.year)
    try:
        pendulum.timezone(p.tz)
    except Exception:
        raise PolicyError(
            f"unknown time zone {p.tz!r}; use an IANA name such as 'Asia/Shanghai'", field="tz"
        ) from None
    for stage, rule in p.stages.items():
        _check_stage_rule(stage, rule)
    check_due_rules(p.stages)
    for event, roles in p.permissions.items():
        if event not in EVENT_NAMES:
            raise PolicyError(
                f"unknown event {event!r}; events are: {', '.join(sorted(EVENT_NAMES))}",
                field=f"permissions.{event}",
            )
        for role in roles:
            if role not in p.roles:
                raise PolicyError(
                    f"unknown role {role!r}; declare it under [roles] or use one of: "
                    f"{', '.join(sorted(p.roles))}",
                    field=f"permissions.{event}",
                )
    if not p.approval_levels:
        raise PolicyError("at least one approval level is needed", field="approval.levels")
    names = [level.name for level in p.approval_levels]
    if len(set(names)) != len(names):
        raise PolicyError("approval level names must be unique", field="approval.levels")
    for i, level in enumerate(p.approval_levels):
        if not level.roles:
            raise PolicyError(
                f"approval level {level.name!r} has no signers; give it roles = [...]",
                field=f"approval.levels[{i}].roles",
            )
        for role in level.roles:
            if role not in p.roles:
                raise PolicyError(
                    f"unknown role {role!r} at approval level {level.name!r}",
                    field=f"approval.levels[{i}].roles",
                )
    for case_id, group in p.assignments.items():
        if group not in p.guidance_groups:
            raise PolicyError(
                f"case {case_id!r} is assigned to unknown guidance group {group!r}; "
                f"declare it under [guidance_groups]",
                field=f"assignments.{case_id}",
            )
    _lifecycle.check(p.permissions, p.approval_levels)
    _check_content(p.content)
    _check_stage_order(p)


#: The longest grace after a hard deadline.
MAX_GRACE = _dt.timedelta(days=366)


def _check_stage_rule(stage: Stage, rule: Any) -> None:
    where = f"stages.{stage.value}"
    if not isinstance(rule, StageRule):
        raise PolicyError(f"expected a StageRule, got {type(rule).__name__}", field=where)
    if rule.due is not None and not isinstance(rule.due, DueRule):
        raise PolicyError(
            f"due must be a due rule (e.g. deadlines.At(...)), got {rule.due!r}",
            field=f"{where}.due",
        )
    if rule.opens is not None and (
        not isinstance(rule.opens, _dt.datetime) or rule.opens.tzinfo is None
    ):
        raise PolicyError(
            f"opens must be an aware date-time such as 2016-01-11T00:00:00+08:00, "
            f"got {rule.opens!r}",
            field=f"{where}.opens",
        )
    if not isinstance(rule.grace, _dt.timedelta) or rule.grace < _dt.timedelta(0):
        raise PolicyError(f"grace must be a duration of zero or more, got {rule.grace!r}",
                          field=f"{where}.grace")
    if rule.grace > MAX_GRACE:
        raise PolicyError(f"a grace of {rule.grace.days} days is out of range: at most "
                          f"{MAX_GRACE.days} days", field=f"{where}.grace")
    if rule.opens is not None and rule.opens.year not in YEARS:
        raise PolicyError(f"opens {rule.opens.isoformat()} is out of range: a policy's dates "
                          f"fall in the years {YEARS.start} to {YEARS.stop - 1}",
                          field=f"{where}.opens")


def _check_content(c: ContentRules) -> None:
    for field_name in ("required_sections", "achievement_sections"):
        for section in getattr(c, field_name):
            if section not in _SECTIONS:
                raise PolicyError(
                    f"unknown report section {section!r}; sections are: "
                    f"{', '.join(sorted(_SECTIONS))}",
                    field=f"content.{field_name}",
                )
    for field_name in ("achievement_max_share", "problems_min_share"):
        share = getattr(c, field_name)
        if share is not None and not 0 < share <= 1:
            raise PolicyError(
                f"{share} is not a share between 0 and 1; write it as a fraction like '1/3'",
                field=f"content.{field_name}",
            )
    if c.min_chars is not None and c.max_chars is not None and c.min_chars > c.max_chars:
        raise PolicyError("min_chars is above max_chars", field="content.min_chars")


def _check_stage_order(p: Policy) -> None:
    """Fixed due times must not go backwards along the lifecycle."""
    previous: tuple[Stage, pendulum.DateTime] | None = None
    for stage in Stage:
        rule = p.stages.get(stage)
        if rule is None:
            continue
        if not isinstance(rule.due, At):
            continue
        if previous is not None and rule.due.at < previous[1]:
            raise PolicyError(
                f"due time {rule.due.at.isoformat()} is before the due time of the earlier "
                f"stage {previous[0].value} ({previous[1].isoformat()}); move one of them",
                field=f"stages.{stage.value}.due",
            )
        if rule.opens is not None and rule.due.at < rule.opens:
            raise PolicyError(
                f"due time {rule.due.at.isoformat()} is before the window opens "
                f"({rule.opens.isoformat()})",
                field=f"stages.{stage.value}.due",
            )
        previous = (stage, rule.due.at)
