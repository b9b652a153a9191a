"""Policy: the seed's plan, and a PolicyError naming the field and the fix for each bad setting."""

from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction
from typing import Any

import attrs
import pendulum
import pytest

from reviewflow.deadlines import At
from reviewflow.exceptions import DeadlineError, PolicyError, ReviewflowError
from reviewflow.model import Stage
from reviewflow.policy import (
    DEFAULT_ROLES,
    EVENT_NAMES,
    ApprovalLevel,
    ContentRules,
    Policy,
    StageRule,
)

TZ = "Asia/Shanghai"


def at(month: int, day: int, year: int = 2016) -> At:
    return At(pendulum.datetime(year, month, day, tz=TZ))


def seed(**changes: Any) -> Policy:
    return attrs.evolve(Policy.default(year=2016), **changes)


# --------------------------------------------------------------------------- the seed's plan


def test_default_policy_is_the_seed_plan() -> None:
    policy = Policy.default(year=2016)
    assert policy.year == 2016
    assert policy.tz == TZ
    drafting = policy.stage(Stage.DRAFTING)
    assert drafting.hard
    assert at(1, 18) == drafting.due
    assert pendulum.datetime(2016, 1, 11, tz=TZ) == policy.stage(Stage.MEETING).opens
    assert [lv.name for lv in policy.approval_levels] == ["guidance_group", "party_group"]
    assert Fraction(1, 3) == policy.content.achievement_max_share
    assert set(DEFAULT_ROLES) == set(policy.roles)
    assert set(EVENT_NAMES) == set(policy.permissions)


def test_default_roles_match_the_issue() -> None:
    roles = Policy.default(year=2016).roles
    for role in ("organizer", "secretary", "guidance_group", "superior_secretary",
                 "department_delegate", "party_office"):
        assert role in roles
    assert roles["organizer"] == "局党组"


def test_a_stage_without_a_rule_has_an_empty_rule() -> None:
    rule = Policy.default(year=2016).stage(Stage.CLOSED)
    assert rule.due is None
    assert not rule.hard


def test_default_policies_of_two_years_differ_only_in_dates_and_name() -> None:
    a, b = Policy.default(year=2016), Policy.default(year=2017)
    changed = {f.name for f in attrs.fields(Policy) if getattr(a, f.name) != getattr(b, f.name)}
    assert {"name", "year", "stages"} == changed


def test_policy_to_json_is_json() -> None:
    data = json.loads(Policy.default(year=2016).to_json())
    assert data["year"] == 2016
    assert data["stages"]["drafting"]["hard"] is True


def test_role_label_falls_back_to_the_role_name() -> None:
    policy = Policy.default(year=2016)
    assert policy.role_label("guidance_group") == "指导组"
    assert policy.role_label("visitor") == "visitor"


# --------------------------------------------------------------------------- construction errors


def field_of(build: Any) -> tuple[str | None, str]:
    with pytest.raises(PolicyError) as info:
        build()
    return info.value.field, str(info.value)


def test_an_unknown_stage_is_refused() -> None:
    field, message = field_of(lambda: seed(stages={"drafing": StageRule()}))
    assert field == "stages"
    assert "unknown stage 'drafing'" in message
    assert "drafting" in message  # the list of stages to choose from


def test_an_unknown_role_in_permissions_is_refused() -> None:
    perms = {**Policy.default(year=2016).permissions, "sign_off": frozenset({"boss"})}
    field, message = field_of(lambda: seed(permissions=perms))
    assert field == "permissions.sign_off"
    assert "unknown role 'boss'" in message
    assert "[roles]" in message


def test_an_unknown_event_is_refused() -> None:
    perms = {**Policy.default(year=2016).permissions, "sign_of": frozenset({"organizer"})}
    field, message = field_of(lambda: seed(permissions=perms))
    assert field == "permissions.sign_of"
    assert "sign_off" in message


def test_an_unknown_role_at_an_approval_level_is_refused() -> None:
    levels = (ApprovalLevel(name="a", roles={"organizer"}), ApprovalLevel(name="b", roles={"x"}))
    field, message = field_of(lambda: seed(approval_levels=levels))
    assert field == "approval.levels[1].roles"
    assert "unknown role 'x'" in message


def test_a_deadline_before_the_previous_stage_is_refused() -> None:
    stages = {Stage.DRAFTING: StageRule(due=at(1, 18)), Stage.APPROVAL: StageRule(due=at(1, 10))}
    field, message = field_of(lambda: seed(stages=stages))
    assert field == "stages.approval.due"
    assert "earlier stage drafting" in message
    assert "move one of them" in message


def test_a_deadline_equal_to_the_previous_is_allowed() -> None:
    stages = {Stage.DRAFTING: StageRule(due=at(1, 18)), Stage.MEETING: StageRule(due=at(1, 18))}
    assert seed(stages=stages).stage(Stage.MEETING).due == at(1, 18)


def test_a_deadline_before_its_window_opens_is_refused() -> None:
    rule = StageRule(opens=pendulum.datetime(2016, 2, 10, tz=TZ), due=at(2, 1))
    field, message = field_of(lambda: seed(stages={Stage.MEETING: rule}))
    assert field == "stages.meeting.due"
    assert "before the window opens" in message


def test_approval_levels_are_required() -> None:
    field, message = field_of(lambda: seed(approval_levels=()))
    assert field == "approval.levels"
    assert "at least one" in message


def test_an_approval_level_without_signers_is_refused() -> None:
    levels = (ApprovalLevel(name="a", roles=set()),)
    field, message = field_of(lambda: seed(approval_levels=levels))
    assert field == "approval.levels[0].roles"
    assert "no signers" in message
    assert "roles = [" in message


def test_approval_level_names_are_unique() -> None:
    levels = (ApprovalLevel(name="a", roles={"organizer"}),) * 2
    field, _ = field_of(lambda: seed(approval_levels=levels))
    assert field == "approval.levels"


def test_a_naive_opening_time_is_refused() -> None:
    rule = StageRule(opens=dt.datetime(2016, 1, 11))
    field, message = field_of(lambda: seed(stages={Stage.MEETING: rule}))
    assert field == "stages.meeting.opens"
    assert "aware" in message


def test_a_naive_due_time_is_refused_when_built() -> None:
    with pytest.raises(DeadlineError, match="no time zone") as info:
        At(dt.datetime(2016, 1, 18))
    assert isinstance(info.value, ReviewflowError)
    assert isinstance(info.value, ValueError)


def test_an_opening_date_without_a_time_is_a_policy_error() -> None:
    rule = StageRule(opens=dt.date(2016, 1, 11))  # type: ignore[arg-type]
    with pytest.raises(PolicyError):
        seed(stages={Stage.MEETING: rule})


@pytest.mark.parametrize(("year", "tz"), [(1800, TZ), (2016, "Asia/Shanghia")])
def test_a_bad_year_or_zone_is_refused(year: int, tz: str) -> None:
    field, message = field_of(lambda: Policy(year=year, tz=tz,
                                             approval_levels=seed().approval_levels))
    assert field == ("year" if year == 1800 else "tz")
    assert "e.g. 2016" in message or "IANA" in message


@pytest.mark.parametrize(
    ("share", "key"),
    [(Fraction(2), "achievement_max_share"), (Fraction(0), "achievement_max_share"),
     (Fraction(-1, 3), "problems_min_share")],
)
def test_bad_content_shares_are_refused(share: Fraction, key: str) -> None:
    content = ContentRules(**{key: share})
    field, message = field_of(lambda: seed(content=content))
    assert field == f"content.{key}"
    assert "between 0 and 1" in message
    assert "'1/3'" in message


def test_a_share_of_one_is_allowed() -> None:
    content = ContentRules(achievement_max_share=Fraction(1))
    assert seed(content=content).content.achievement_max_share == 1


def test_an_unknown_report_section_is_refused() -> None:
    field, message = field_of(lambda: seed(content=ContentRules(required_sections=("summary",))))
    assert field == "content.required_sections"
    assert "unknown report section 'summary'" in message


def test_min_chars_above_max_chars_is_refused() -> None:
    field, _ = field_of(lambda: seed(content=ContentRules(min_chars=10, max_chars=5)))
    assert field == "content.min_chars"


def test_an_assignment_to_an_unknown_group_is_refused() -> None:
    field, message = field_of(lambda: seed(guidance_groups={"一组": frozenset({"li"})},
                                           assignments={"school-01": "二组"}))
    assert field == "assignments.school-01"
    assert "[guidance_groups]" in message


def test_policy_errors_are_value_errors_of_the_reviewflow_tree() -> None:
    with pytest.raises(PolicyError) as info:
        seed(approval_levels=())
    assert isinstance(info.value, ReviewflowError)
    assert isinstance(info.value, ValueError)


def test_policy_error_message_names_source_line_and_field() -> None:
    error = PolicyError("must be true or false", field="stages.drafting.hard",
                        source="policy.toml", line=4)
    assert str(error) == "policy.toml:4: stages.drafting.hard: must be true or false"
    assert (error.source, error.line, error.field) == ("policy.toml", 4, "stages.drafting.hard")
    assert str(PolicyError("bad")) == "bad"


# --------------------------------------------------------------------------- conversions


def test_a_policy_with_calendar_dates_converts_to_json() -> None:
    policy = seed(calendar={"days_off": (dt.date(2016, 2, 8),)})
    assert "2016-02-08" in policy.to_json()


def test_permissions_given_as_one_role_name_mean_that_role() -> None:
    # hold_talk, not sign_off: organizer alone may not sign the guidance group's level.
    perms = {**Policy.default(year=2016).permissions, "hold_talk": "organizer"}
    policy = seed(permissions=perms)
    assert frozenset({"organizer"}) == policy.permissions["hold_talk"]
