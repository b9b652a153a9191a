"""Permissions as pure functions: who may fire what now, and every reason why not."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import attrs
import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reviewflow as rf
from reviewflow import permissions
from reviewflow._lifecycle import FIRED
from reviewflow.clock import FrozenClock
from reviewflow.deadlines import At
from reviewflow.model import Actor, Case, Stage
from reviewflow.permissions import allowed, guard, roles_for, side_step_role
from reviewflow.policy import Policy, StageRule

TZ = "Asia/Shanghai"
POLICY = Policy.default(year=2016)
GROUPS = attrs.evolve(POLICY, guidance_groups={"一组": frozenset({"wang"}),
                                               "二组": frozenset({"zhao"})})
LI = Actor("li", "李书记", roles={"secretary"})
ROLES = sorted(POLICY.roles)
EVENTS = [e.name for e in FIRED]


def case(stage: Stage = Stage.DRAFTING, secretary: Actor = LI, **data: Any) -> Case:
    return Case("2016", "s1", "一中", secretary, stage, 2, "", dict(data))


def at(month: int, day: int, hour: int = 0) -> pendulum.DateTime:
    return pendulum.datetime(2016, month, day, hour, tz=TZ)


NOW = at(1, 12)


def said(refusal: Any) -> tuple[str, str]:
    """A refusal's reason and its message (without the case/event prefix and the code)."""
    prefix = f"{refusal.case_id}: {refusal.event}: "
    text = str(refusal)
    assert text.startswith(prefix)
    assert text.endswith(f" [{refusal.reason}]")
    return refusal.reason, text[len(prefix):-len(refusal.reason) - 3]

actors = st.builds(
    lambda ident, roles: Actor(ident, ident, roles=frozenset(roles)),
    st.sampled_from(["li", "wang", "zhao", "boss"]),
    st.sets(st.sampled_from(ROLES)),
)
cases = st.builds(
    lambda stage, signed, group: case(stage, signatures=[{"actor": a} for a in signed],
                                      **({"guidance_group": group} if group else {})),
    st.sampled_from(list(Stage)),
    st.lists(st.sampled_from(["li", "wang", "zhao", "boss"]), max_size=1),
    st.sampled_from([None, "一组", "二组"]),
)
times = st.sampled_from([at(1, 1), at(1, 12), at(1, 18, 1), at(3, 1)])


# --------------------------------------------------------------------------- properties


@settings(max_examples=300, deadline=None)
@given(roles=st.sets(st.sampled_from(ROLES)), c=cases, now=times)
def test_a_secretary_never_signs_off_their_own_case(roles: set[str], c: Case,
                                                    now: pendulum.DateTime) -> None:
    me = Actor("li", "李书记", roles=frozenset(roles) | {"secretary"})
    for policy in (POLICY, GROUPS):
        role, refusals = guard(policy, c, "sign_off", me, now, None, collect=True)
        assert refusals
        assert "self_sign_off" in {r.reason for r in refusals}
        assert role == ""
        _role, first = guard(policy, c, "sign_off", me, now, None)
        assert first


@settings(max_examples=300, deadline=None)
@given(actor=actors, c=cases, now=times, event=st.sampled_from(EVENTS))
def test_the_step_path_refuses_with_the_first_reason_allowed_lists(
        actor: Actor, c: Case, now: pendulum.DateTime, event: str) -> None:
    for policy in (POLICY, GROUPS):
        role, first = guard(policy, c, event, actor, now, at(1, 18))
        _role, every = guard(policy, c, event, actor, now, at(1, 18), collect=True)
        assert bool(first) == bool(every)
        if first:
            assert len(first) == 1
            assert (first[0].reason, str(first[0])) == (every[0].reason, str(every[0]))
        else:
            assert role in roles_for(c, actor) & policy.permissions[event]
        for refusal in every:
            assert refusal.case_id == c.case_id
            assert refusal.event == event


@settings(max_examples=200, deadline=None)
@given(actor=actors, c=cases)
def test_secretary_counts_only_on_the_own_case(actor: Actor, c: Case) -> None:
    held = roles_for(c, actor)
    assert held <= actor.roles
    assert ("secretary" in held) == ("secretary" in actor.roles and actor.id == c.secretary.id)


# --------------------------------------------------------------------------- the rules


def test_stage_and_role_refusals_keep_their_codes_and_messages() -> None:
    boss = Actor("boss", "局长", roles={"organizer"})
    other = Actor("zhang", "张书记", roles={"secretary"})
    _r, refusals = guard(POLICY, case(Stage.RESEARCH), "submit_report", other, NOW, None,
                         collect=True)
    assert [said(r) for r in refusals] == [
        ("wrong_stage", "the case is in 提前准备 (research); submit_report (提交述职报告) needs "
                        "撰写述职报告 (drafting)"),
        ("not_permitted", "zhang may not submit_report (提交述职报告): it needs the role "
                          "secretary (党组织书记); only the case's own secretary (li) acts as "
                          "secretary here"),
    ]
    assert guard(POLICY, case(), "submit_report", boss, NOW, None)[1][0].reason == "not_permitted"
    assert guard(POLICY, case(), "submit_report", LI, NOW, None) == ("secretary", [])


def test_sign_off_goes_level_by_level_with_one_signature_each() -> None:
    wang = Actor("wang", "王", roles={"guidance_group"})
    boss = Actor("boss", "局长", roles={"organizer", "guidance_group"})
    fresh = case(Stage.APPROVAL)
    assert guard(POLICY, fresh, "sign_off", wang, NOW, None) == ("guidance_group", [])
    assert guard(POLICY, fresh, "sign_off", boss, NOW, None) == ("guidance_group", [])
    signed = case(Stage.APPROVAL, signatures=[{"level": "guidance_group", "actor": "boss"}])
    _r, refusals = guard(POLICY, signed, "sign_off", wang, NOW, None)
    assert [said(r) for r in refusals] == [(
        "not_permitted", "level 2 (局党组审定) is signed by organizer (局党组); wang holds none "
                         "of these roles")]
    role, refusals = guard(POLICY, signed, "sign_off", boss, NOW, None)
    assert role == "organizer"
    assert [said(r) for r in refusals] == [(
        "already_signed", "boss already signed an earlier level of this report; another "
                          "person signs level 2 (局党组审定)")]


def test_guidance_groups_review_their_own_cases() -> None:
    wang = Actor("wang", "王", roles={"guidance_group"})
    zhao = Actor("zhao", "赵", roles={"guidance_group"})
    nobody = Actor("qian", "钱", roles={"guidance_group"})
    assigned = case(Stage.APPROVAL, guidance_group="一组")
    for event in ("sign_off", "return_for_revision"):
        assert guard(GROUPS, assigned, event, wang, NOW, None)[1] == []
        refusals = guard(GROUPS, assigned, event, zhao, NOW, None)[1]
        assert [said(r) for r in refusals] == [(
            "not_in_group", "case s1 is reviewed by guidance group '一组' (指导组); zhao is not "
                            "a member of it")]
        unassigned = case(Stage.APPROVAL)
        assert guard(GROUPS, unassigned, event, zhao, NOW, None)[1] == []
        assert [said(r) for r in guard(GROUPS, unassigned, event, nobody, NOW, None)[1]] == [
            ("not_in_group", "qian is not a member of any guidance group (指导组)")]
        assert guard(POLICY, assigned, event, nobody, NOW, None)[1] == []  # no groups: any member


def test_the_secretary_never_returns_their_own_report() -> None:
    me = Actor("li", "李书记", roles={"secretary", "organizer"})
    refusals = guard(POLICY, case(Stage.APPROVAL), "return_for_revision", me, NOW, None)[1]
    assert [r.reason for r in refusals] == ["not_permitted"]


def test_time_windows() -> None:
    boss = Actor("boss", "局长", roles={"organizer"})
    meeting = case(Stage.MEETING)
    _r, early = guard(POLICY, meeting, "hold_meeting", boss, at(1, 10), None)
    assert [said(r) for r in early] == [(
        "too_early", "述职评议会 (meeting) opens at 2016-01-11 00:00:00 CST; hold_meeting "
                     "(召开述职评议会) cannot happen before then")]
    assert guard(POLICY, meeting, "hold_meeting", boss, at(1, 11), None)[1] == []
    # hard deadline: the due time is given as a value or as a function of case and stage
    asked: list[Stage] = []

    def due(c: Case, stage: Stage) -> pendulum.DateTime | None:
        asked.append(stage)
        return at(1, 18)

    for given_due in (at(1, 18), due):
        _r, late = guard(POLICY, case(), "submit_report", LI, at(1, 18, 1), given_due)
        assert [r.reason for r in late] == ["deadline_passed"]
        assert said(late[0])[1] == ("the deadline for 撰写述职报告 (drafting) passed at 2016-01-18 "
                                "00:00:00 CST; ask the organizer for an extension")
        assert late[0].details == {"due": "2016-01-18T00:00:00+08:00",
                                   "now": "2016-01-18T01:00:00+08:00"}
        assert guard(POLICY, case(), "submit_report", LI, at(1, 18), given_due)[1] == []
    assert asked == [Stage.DRAFTING, Stage.DRAFTING]
    assert guard(POLICY, case(), "submit_report", LI, at(3, 1), None)[1] == []  # no due time
    graced = attrs.evolve(POLICY, stages={**POLICY.stages, Stage.DRAFTING: StageRule(
        due=At(at(1, 18)), hard=True, grace=pendulum.duration(hours=2))})
    assert guard(graced, case(), "submit_report", LI, at(1, 18, 1), at(1, 18))[1] == []
    # a step that keeps the stage is not refused by a hard deadline
    hard = attrs.evolve(POLICY, stages={Stage.EVALUATION: StageRule(due=At(at(1, 18)), hard=True)})
    delegate = Actor("d", "派员", roles={"department_delegate"})
    assert guard(hard, case(Stage.EVALUATION), "comment", delegate, at(3, 1), at(1, 18))[1] == []
    assert guard(hard, case(Stage.EVALUATION), "finish_evaluation", boss, at(3, 1),
                 at(1, 18))[1][0].reason == "deadline_passed"


def test_side_steps_follow_the_policy() -> None:
    boss = Actor("boss", "局长", roles={"organizer"})
    what = "extend a deadline (延期)"
    organizer = frozenset({"organizer"})
    assert side_step_role(POLICY, "extend", boss, what=what, default=organizer) == (
        "organizer", None)
    role, refusal = side_step_role(POLICY, "extend", LI, what=what, default=organizer,
                                   case_id="s1")
    assert role == ""
    assert refusal is not None
    assert said(refusal) == (
        "not_permitted", "li may not extend a deadline (延期): it needs the role organizer")
    # a step the policy names no roles for takes the default
    assert side_step_role(POLICY, "amend_policy", boss, what="x", default=organizer)[0] == (
        "organizer")
    lenient = attrs.evolve(POLICY, permissions={**POLICY.permissions,
                                                "extend": frozenset({"secretary", "organizer"})})
    other = Actor("zhang", "张书记", roles={"secretary"})
    assert side_step_role(lenient, "extend", LI, what="x", default=organizer,
                          roles=roles_for(case(), LI))[0] == "secretary"
    assert side_step_role(lenient, "extend", other, what="x", default=organizer,
                          roles=roles_for(case(), other))[1] is not None


def test_allowed_lists_every_fired_event_as_the_campaign_does() -> None:
    clock = FrozenClock(at(1, 12))
    campaign = rf.Campaign(POLICY, clock=clock)
    campaign.open_case("s1", organization="一中", secretary=LI)
    stored = campaign.case("s1")
    for actor in (LI, Actor("boss", "局长", roles={"organizer"})):
        mine = allowed(POLICY, stored, actor, clock.now(), campaign.due)
        theirs = campaign.allowed("s1", actor)
        assert [e.name for e, _ in mine] == [p.event for p in theirs] == EVENTS
        assert [tuple(r.reason for r in refusals) for _, refusals in mine] == [
            p.reasons for p in theirs]


def test_allowed_refuses_an_actor_that_is_not_an_actor_as_fire_does() -> None:
    campaign = rf.Campaign(POLICY, clock=FrozenClock(at(1, 12)))
    campaign.open_case("s1", organization="一中", secretary=LI)
    for call in (lambda: campaign.allowed("s1", "li"),
                 lambda: campaign.fire("s1", "submit_report", actor="li")):
        with pytest.raises(rf.InputError) as info:
            call()
        assert info.value.reason == "invalid_argument"
    assert campaign.refusals() == []


def test_the_module_imports_only_pure_rules() -> None:
    tree = ast.parse(Path(permissions.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert imported <= {"__future__", "collections.abc", "typing", "pendulum",
                        "reviewflow._lifecycle", "reviewflow.deadlines", "reviewflow.exceptions",
                        "reviewflow.model", "reviewflow.policy"}
