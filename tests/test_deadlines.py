"""Due rules, extensions, grace, ladders, and the sweep that fires each rung exactly once."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import attrs
import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reviewflow as rf
from reviewflow._engine import deadline_results, deadline_work
from reviewflow._engine import sweep as _sweep
from reviewflow.calendar import WorkingCalendar
from reviewflow.campaign import Campaign
from reviewflow.deadlines import (
    After,
    At,
    DueContext,
    DueState,
    EarlierOf,
    Entered,
    LaterOf,
    MeetingDate,
    OnDay,
    Rung,
    StageDue,
    check_due_rules,
    deadline_status,
    default_report_ladder,
    due_rule_from_json,
    due_rungs,
    effective_due,
    explain_due,
    ladder_from_json,
    next_fire,
    rung_key,
    rung_schedule,
)
from reviewflow.exceptions import DeadlineError, PolicyError, TransitionRefused
from reviewflow.model import Actor, Case, Stage
from reviewflow.policy import Policy, StageRule
from reviewflow.testing import Cast, HookRecorder, drive_to

TZ = "Asia/Shanghai"
US = pendulum.duration(microseconds=1)


def t(*args: int) -> pendulum.DateTime:
    return pendulum.datetime(*args, tz=TZ)


def case_with(**data: Any) -> Case:
    return Case("2016", "c1", "第一中学党支部", Actor("sec"), Stage.DRAFTING, data=data)


# -- rules ---------------------------------------------------------------------------------------


def test_fixed_due_time_explains_itself() -> None:
    rule = At(t(2016, 1, 18))
    assert rule.resolve(DueContext.bare()) == t(2016, 1, 18)
    assert rule.explain(DueContext.bare()) == ["fixed due time 2016-01-18 00:00:00 CST"]


def test_a_naive_fixed_time_is_refused() -> None:
    with pytest.raises(DeadlineError, match="no time zone"):
        At(dt.datetime(2016, 1, 18))


def test_on_day_start_and_end_are_explicit() -> None:
    ctx = DueContext.bare()
    assert OnDay(day=dt.date(2016, 1, 17), time="start").resolve(ctx) == t(2016, 1, 17)
    end = OnDay(day=dt.date(2016, 1, 17)).resolve(ctx)
    assert end == t(2016, 1, 17, 23, 59, 59, 999999)
    assert OnDay(day=dt.date(2016, 1, 17)).explain(ctx) == [
        "due on 2016-01-17 (Sun), end of day = 2016-01-17 23:59:59 CST"
    ]


def test_working_days_after_the_meeting_explained_step_by_step() -> None:
    rule = After(anchor=MeetingDate(), n=5)
    ctx = DueContext(case=case_with(meeting={"date": "2016-01-20"}))
    assert rule.resolve(ctx) == t(2016, 1, 27, 23, 59, 59, 999999)
    assert "; ".join(rule.explain(ctx)) == (
        "meeting held 2016-01-20 (Wed); +5 working days, skipping 2016-01-23/24 weekend = "
        "2016-01-27 23:59:59 CST"
    )


def test_no_meeting_yet_means_no_due_time() -> None:
    rule = After(anchor=MeetingDate(), n=5)
    ctx = DueContext(case=case_with())
    assert rule.resolve(ctx) is None
    assert rule.explain(ctx) == ["the meeting has not been held yet", "no due time until then"]


def test_working_days_after_entering_a_stage_across_the_spring_festival() -> None:
    rule = After(anchor=Entered("drafting"), n=5, time="keep")
    ctx = DueContext(case=case_with(entered={"drafting": "2016-02-03T10:30:00+08:00"}))
    assert rule.resolve(ctx) == t(2016, 2, 15, 10, 30)
    steps = rule.explain(ctx)
    assert steps[0] == "entered drafting (撰写述职报告) 2016-02-03 10:30:00 CST (Wed)"
    assert steps[1] == (
        "+5 working days, skipping 2016-02-07..13 Spring Festival (春节), counting make-up "
        "working days (调休) 2016-02-06 (Sat), 2016-02-14 (Sun) = 2016-02-15 10:30:00 CST"
    )


def test_calendar_days_and_start_of_day() -> None:
    rule = After(anchor=Entered("drafting"), n=3, unit="days", time="start")
    ctx = DueContext(case=case_with(entered={"drafting": "2016-02-05T10:30:00+08:00"}))
    assert rule.resolve(ctx) == t(2016, 2, 8)
    assert rule.explain(ctx)[1] == "+3 calendar days = 2016-02-08 00:00:00 CST"


def test_negative_working_days_count_back() -> None:
    rule = After(anchor=At(t(2016, 2, 15, 9)), n=-2, time="keep")
    assert rule.resolve(DueContext.bare()) == t(2016, 2, 6, 9)


def test_another_stage_due_time_with_its_own_explanation() -> None:
    rules = {
        Stage.DRAFTING: StageRule(due=At(t(2016, 1, 18))),
        Stage.APPROVAL: StageRule(due=After(anchor=StageDue("drafting"), n=5)),
    }
    ctx = DueContext(case=case_with(), rules=rules, stage=Stage.APPROVAL)
    assert effective_due(rules[Stage.APPROVAL], ctx) == t(2016, 1, 25, 23, 59, 59, 999999)
    assert explain_due(rules[Stage.APPROVAL], ctx) == [
        "drafting (撰写述职报告): fixed due time 2016-01-18 00:00:00 CST",
        "drafting (撰写述职报告) due 2016-01-18 00:00:00 CST",
        "+5 working days, skipping 2016-01-23/24 weekend = 2016-01-25 23:59:59 CST",
    ]


def test_another_stage_due_time_follows_its_extension() -> None:
    rules = {
        Stage.DRAFTING: StageRule(due=At(t(2016, 1, 18))),
        Stage.APPROVAL: StageRule(due=After(anchor=StageDue("drafting"), n=1, time="keep")),
    }
    case = case_with(extensions={"drafting": {"until": "2016-01-22T00:00:00+08:00"}})
    ctx = DueContext(case=case, rules=rules, stage=Stage.APPROVAL)
    assert effective_due(rules[Stage.APPROVAL], ctx) == t(2016, 1, 25)


def test_stage_anchors_in_a_loop_are_refused() -> None:
    rules = {
        Stage.DRAFTING: StageRule(due=After(anchor=StageDue("approval"), n=1)),
        Stage.APPROVAL: StageRule(due=After(anchor=StageDue("drafting"), n=1)),
    }
    ctx = DueContext(case=case_with(), rules=rules, stage=Stage.APPROVAL)
    with pytest.raises(DeadlineError, match="loop: approval -> drafting -> approval"):
        effective_due(rules[Stage.APPROVAL], ctx)
    with pytest.raises(PolicyError, match="loop"):
        check_due_rules(rules)
    check_due_rules({Stage.APPROVAL: rules[Stage.APPROVAL], Stage.DRAFTING: StageRule()})


def test_earlier_of_takes_what_is_known_later_of_waits_for_all() -> None:
    fixed = At(t(2016, 1, 29))
    after_meeting = After(anchor=MeetingDate(), n=5)
    no_meeting = DueContext(case=case_with())
    met = DueContext(case=case_with(meeting={"date": "2016-01-20"}))
    assert EarlierOf((fixed, after_meeting)).resolve(no_meeting) == t(2016, 1, 29)
    assert EarlierOf((fixed, after_meeting)).resolve(met) == t(2016, 1, 27, 23, 59, 59, 999999)
    assert LaterOf((fixed, after_meeting)).resolve(no_meeting) is None
    assert LaterOf((fixed, after_meeting)).resolve(met) == t(2016, 1, 29)
    steps = EarlierOf((fixed, after_meeting)).explain(met)
    assert steps[0] == "(1) fixed due time 2016-01-29 00:00:00 CST"
    assert steps[-1] == "the earlier of them: 2016-01-27 23:59:59 CST"
    with pytest.raises(DeadlineError, match="at least two"):
        EarlierOf((fixed,))


def test_a_year_from_the_policys_own_calendar() -> None:
    year = max(WorkingCalendar.china().known_years()) + 1
    cal = WorkingCalendar.china(
        extra_days_off=[dt.date(year, 1, 12), dt.date(year, 1, 13)],
    )
    start = pendulum.datetime(year, 1, 9, 9, tz=TZ)
    rule = After(anchor=At(start), n=3, time="keep")
    due = rule.resolve(DueContext(calendar=cal))
    assert due is not None
    counted = [day for day in (start.date() + dt.timedelta(days=k) for k in range(1, 12))
               if day <= due.date() and cal.is_working_day(day)]
    assert len(counted) == 3
    assert dt.date(year, 1, 12) not in counted
    assert dt.date(year, 1, 13) not in counted
    with pytest.raises(DeadlineError, match="no official holiday schedule"):
        rule.resolve(DueContext())  # the built-in calendar does not know that year


# -- policy-file data ------------------------------------------------------------------------


RULE_DATA = [
    {"at": "2016-01-18T00:00:00+08:00"},
    {"on": "2016-01-17", "time": "end"},
    {"after": "meeting", "working_days": 5, "time": "end"},
    {"after": "entered:drafting", "days": 10, "time": "keep"},
    {"after": "due:drafting", "working_days": -2, "time": "start"},
    {"after": {"at": "2016-01-11T00:00:00+08:00"}, "working_days": 3, "time": "end"},
    {"earliest": [{"at": "2016-01-29T00:00:00+08:00"},
                  {"after": "meeting", "working_days": 5, "time": "end"}]},
    {"latest": [{"on": "2016-01-20", "time": "start"},
                {"after": "entered:approval", "working_days": 1, "time": "end"}]},
]


@pytest.mark.parametrize("data", RULE_DATA)
def test_rules_round_trip_through_policy_data(data: dict[str, Any]) -> None:
    rule = due_rule_from_json(data, "stages.x.due")
    again = due_rule_from_json(rule.to_json(), "stages.x.due")
    assert again == rule
    ctx = DueContext(case=case_with(meeting={"date": "2016-01-20"},
                                    entered={"drafting": "2016-01-05T09:00:00+08:00",
                                             "approval": "2016-01-15T09:00:00+08:00"}),
                     rules={Stage.DRAFTING: StageRule(due=At(t(2016, 1, 18)))},
                     stage=Stage.APPROVAL)
    assert again.resolve(ctx) == rule.resolve(ctx)


def test_toml_values_are_read() -> None:
    rule = due_rule_from_json({"on": dt.date(2016, 1, 17)}, "f")
    assert rule == OnDay(day=dt.date(2016, 1, 17), time="end")
    aware = dt.datetime(2016, 1, 18, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert due_rule_from_json({"at": aware}, "f").resolve(DueContext.bare()) == t(2016, 1, 18)


@pytest.mark.parametrize(("data", "field", "words"), [
    ({"at": "yesterday"}, r"stages\.drafting\.due\.at", "not a date-time"),
    ({"at": "2016-01-18T00:00:00"}, r"stages\.drafting\.due\.at", "offset"),
    ({"on": "2016-13-01"}, r"stages\.drafting\.due\.on", "not a day"),
    ({"on": "2016-01-17", "time": "noon"}, r"stages\.drafting\.due\.time", "time of day"),
    ({"after": "meeting"}, r"stages\.drafting\.due", "working_days or days"),
    ({"after": "meeting", "working_days": 1.5}, r"stages\.drafting\.due\.working_days", "whole"),
    ({"after": "entered:lunch", "days": 1}, r"stages\.drafting\.due\.after", "unknown stage"),
    ({"after": "tomorrow", "days": 1}, r"stages\.drafting\.due\.after", "anchor"),
    ({"after": "meeting", "days": 1, "hard": True}, r"stages\.drafting\.due\.hard", "does not go"),
    ({"earliest": [{"at": "2016-01-18T00:00:00+08:00"}]}, r"stages\.drafting\.due\.earliest",
     "two or more"),
    ({"latest": [{"at": "x"}, {"on": "2016-01-01"}]}, r"stages\.drafting\.due\.latest\[0\]\.at",
     "date-time"),
    ({"at": "2016-01-18T00:00:00+08:00", "on": "2016-01-17"}, r"stages\.drafting\.due",
     "exactly one"),
    ("2016-01-18", r"stages\.drafting\.due", "cannot read a due rule"),
])
def test_bad_rules_name_the_field(data: Any, field: str, words: str) -> None:
    with pytest.raises(PolicyError, match=field) as info:
        due_rule_from_json(data, "stages.drafting.due")
    assert words in str(info.value)


# -- extensions, grace, hard and soft ----------------------------------------------------------


def test_an_extension_replaces_a_due_time_and_is_explained() -> None:
    rule = StageRule(due=At(t(2016, 1, 18)), hard=True)
    case = case_with(extensions={"drafting": {
        "until": "2016-01-22T18:00:00+08:00", "reason": "书记外出学习", "by": "bureau"}})
    ctx = DueContext(case=case, stage=Stage.DRAFTING)
    assert effective_due(rule, ctx) == t(2016, 1, 22, 18)
    assert explain_due(rule, ctx) == [
        "fixed due time 2016-01-18 00:00:00 CST",
        "extended for this case by bureau to 2016-01-22 18:00:00 CST: 书记外出学习",
    ]
    other_stage = DueContext(case=case, stage=Stage.APPROVAL)
    assert effective_due(rule, other_stage) == t(2016, 1, 18)


def test_an_extension_never_shortens_a_deadline() -> None:
    rule = StageRule(due=At(t(2016, 1, 18)))
    case = case_with(extensions={"drafting": {"until": "2016-01-10T00:00:00+08:00"}})
    ctx = DueContext(case=case, stage=Stage.DRAFTING)
    assert effective_due(rule, ctx) == t(2016, 1, 18)
    assert "the due time stands" in explain_due(rule, ctx)[-1]


HARD = StageRule(due=At(t(2016, 1, 18)), hard=True)
SOFT = StageRule(due=At(t(2016, 1, 18)), hard=False)
HARD_GRACE = StageRule(due=At(t(2016, 1, 18)), hard=True, grace=pendulum.duration(hours=2))
SOFT_GRACE = StageRule(due=At(t(2016, 1, 18)), hard=False, grace=pendulum.duration(hours=2))


@pytest.mark.parametrize(("rule", "now", "state"), [
    (HARD, t(2016, 1, 18) - US, DueState.ON_TIME),
    (HARD, t(2016, 1, 18), DueState.ON_TIME),
    (HARD, t(2016, 1, 18) + US, DueState.PASSED_HARD),
    (SOFT, t(2016, 1, 18) - US, DueState.ON_TIME),
    (SOFT, t(2016, 1, 18), DueState.ON_TIME),
    (SOFT, t(2016, 1, 18) + US, DueState.LATE_SOFT),
    (HARD_GRACE, t(2016, 1, 18) + US, DueState.LATE_WITHIN_GRACE),
    (HARD_GRACE, t(2016, 1, 18, 2) - US, DueState.LATE_WITHIN_GRACE),
    (HARD_GRACE, t(2016, 1, 18, 2), DueState.LATE_WITHIN_GRACE),
    (HARD_GRACE, t(2016, 1, 18, 2) + US, DueState.PASSED_HARD),
    (SOFT_GRACE, t(2016, 1, 18, 2) + US, DueState.LATE_SOFT),
])
def test_deadline_status_at_exact_boundaries(rule: StageRule, now: pendulum.DateTime,
                                             state: DueState) -> None:
    ctx = DueContext(case=case_with(), stage=Stage.DRAFTING)
    assert deadline_status(rule, ctx, now) == (t(2016, 1, 18), state)
    assert state.refuses is (state is DueState.PASSED_HARD)


def test_end_of_day_boundaries() -> None:
    rule = StageRule(due=OnDay(day=dt.date(2016, 1, 17)), hard=True)
    ctx = DueContext(case=case_with(), stage=Stage.DRAFTING)
    last = t(2016, 1, 17, 23, 59, 59, 999999)
    assert deadline_status(rule, ctx, last - US)[1] is DueState.ON_TIME
    assert deadline_status(rule, ctx, last)[1] is DueState.ON_TIME
    assert deadline_status(rule, ctx, last + US)[1] is DueState.PASSED_HARD


def test_status_without_a_rule_or_an_anchor() -> None:
    ctx = DueContext(case=case_with(), stage=Stage.DRAFTING)
    assert deadline_status(StageRule(), ctx, t(2016, 1, 1)) == (None, DueState.NO_DEADLINE)
    pending = StageRule(due=After(anchor=MeetingDate(), n=5))
    assert deadline_status(pending, ctx, t(2016, 1, 1)) == (None, DueState.NOT_SCHEDULED)
    with pytest.raises(DeadlineError, match="no time zone"):
        deadline_status(HARD, ctx, dt.datetime(2016, 1, 1))


ORDER = [DueState.ON_TIME, DueState.LATE_WITHIN_GRACE, DueState.LATE_SOFT, DueState.PASSED_HARD]


@settings(max_examples=150, deadline=None)
@given(
    hard=st.booleans(),
    grace_s=st.integers(min_value=0, max_value=3 * 86400),
    a=st.integers(min_value=-5 * 86400 * 10**6, max_value=5 * 86400 * 10**6),
    b=st.integers(min_value=-5 * 86400 * 10**6, max_value=5 * 86400 * 10**6),
)
def test_a_later_now_never_un_misses_a_deadline(hard: bool, grace_s: int, a: int, b: int) -> None:
    rule = StageRule(due=At(t(2016, 1, 18)), hard=hard, grace=pendulum.duration(seconds=grace_s))
    ctx = DueContext(case=case_with(), stage=Stage.DRAFTING)
    early, late = sorted((a, b))
    s1 = deadline_status(rule, ctx, t(2016, 1, 18) + pendulum.duration(microseconds=early))[1]
    s2 = deadline_status(rule, ctx, t(2016, 1, 18) + pendulum.duration(microseconds=late))[1]
    assert ORDER.index(s1) <= ORDER.index(s2)
    if s1.is_late:
        assert s2.is_late


# -- ladders ---------------------------------------------------------------------------------


def test_default_report_ladder() -> None:
    ladder = default_report_ladder()
    assert [r.id for r in ladder] == ["remind-3wd", "remind-1wd", "escalate-at-due"]
    assert [r.describe() for r in ladder] == [
        "remind secretary at T-3 working days 09:00",
        "remind secretary at T-1 working day 09:00",
        "escalate organizer at T",
    ]
    assert Policy.default(year=2016).stage(Stage.DRAFTING).ladder == ladder


def test_every_rung_kind_has_its_fire_time() -> None:
    due = t(2016, 2, 15, 18)  # Monday after the Spring Festival
    ctx = DueContext.bare()
    cases = [
        (Rung(offset=-1), t(2016, 2, 14, 18)),  # Sunday, a make-up working day
        (Rung(offset=-2, time="09:00"), t(2016, 2, 6, 9)),
        (Rung(offset=-3, unit="days"), t(2016, 2, 12, 18)),
        (Rung(offset=-12, unit="hours"), t(2016, 2, 15, 6)),
        (Rung(offset=0, action="escalate"), due),
        (Rung(offset=2, action="auto", auto="mark_missed"), t(2016, 2, 17, 18)),
        (Rung(offset=36, unit="hours", action="auto"), t(2016, 2, 17, 6)),
    ]
    for rung, expected in cases:
        assert rung.fire_at(due, ctx) == expected, rung


def test_rung_defaults_and_checks() -> None:
    assert Rung(offset=-3).id == "remind-3wd"
    assert Rung(offset=-3).to == "owner"
    assert Rung(offset=0, action="escalate").to == "organizer"
    assert Rung(offset=2, unit="days", action="auto", auto="return_report").id == "auto+2d"
    assert Rung(offset=2, action="auto").to is None
    with pytest.raises(DeadlineError, match="needs action = 'auto'"):
        Rung(offset=1, auto="mark_missed")
    with pytest.raises(DeadlineError, match="HH:MM"):
        Rung(offset=1, time="9am")
    with pytest.raises(DeadlineError, match="hours"):
        Rung(offset=1, unit="hours", time="09:00")
    with pytest.raises(DeadlineError, match="integer"):
        Rung(offset=True)
    with pytest.raises(DeadlineError, match="rung id"):
        Rung(offset=1, id="has spaces")


def test_schedule_due_rungs_and_next_fire() -> None:
    due = t(2016, 1, 18)
    ctx = DueContext.bare()
    ladder = (*default_report_ladder(), Rung(offset=2, action="auto", auto="mark_missed"))
    schedule = rung_schedule(ladder, due, ctx)
    assert [(r.id, when) for r, when in schedule] == [
        ("remind-3wd", t(2016, 1, 13, 9)),
        ("remind-1wd", t(2016, 1, 15, 9)),
        ("escalate-at-due", t(2016, 1, 18)),
        ("auto+2wd", t(2016, 1, 20)),
    ]
    at_t = due_rungs(ladder, due, ctx, t(2016, 1, 18))
    assert [r.id for r, _ in at_t] == ["remind-3wd", "remind-1wd", "escalate-at-due"]
    before = due_rungs(ladder, due, ctx, t(2016, 1, 18) - US)
    assert [r.id for r, _ in before] == ["remind-3wd", "remind-1wd"]
    fired = {rung_key(ladder[0], due), rung_key(ladder[1], due)}
    assert [r.id for r, _ in due_rungs(ladder, due, ctx, t(2016, 1, 18), fired)] == [
        "escalate-at-due"
    ]
    assert next_fire(ladder, due, ctx, fired) == t(2016, 1, 18)
    assert next_fire(ladder, due, ctx, {rung_key(r, due) for r in ladder}) is None
    assert rung_key(ladder[0], due) != rung_key(ladder[0], due.add(days=1))


def test_ladder_round_trips_through_policy_data() -> None:
    ladder = (*default_report_ladder(), Rung(offset=-12, unit="hours"),
              Rung(offset=2, unit="days", action="auto", auto="return_report"))
    assert ladder_from_json([r.to_json() for r in ladder], "x") == ladder


@pytest.mark.parametrize(("items", "field", "words"), [
    ({"working_days": -3}, r"stages\.drafting\.ladder", "list of rungs"),
    (["remind"], r"stages\.drafting\.ladder\[0\]", "table"),
    ([{"action": "remind"}], r"stages\.drafting\.ladder\[0\]", "exactly one"),
    ([{"days": 1, "hours": 2}], r"stages\.drafting\.ladder\[0\]", "exactly one"),
    ([{"days": "1"}], r"stages\.drafting\.ladder\[0\]\.days", "whole number"),
    ([{"days": 1, "colour": "red"}], r"stages\.drafting\.ladder\[0\]\.colour", "unknown key"),
    ([{"days": 1, "action": "shout"}], r"stages\.drafting\.ladder\[0\]", "action"),
    ([{"days": 1, "action": "auto", "auto": "delete"}], r"ladder\[0\]", "auto must be"),
    ([{"days": -1}, {"days": -1}], r"stages\.drafting\.ladder\[1\]\.id", "used twice"),
])
def test_bad_ladders_name_the_field(items: Any, field: str, words: str) -> None:
    with pytest.raises(PolicyError, match=field) as info:
        ladder_from_json(items, "stages.drafting.ladder")
    assert words in str(info.value)


# -- the campaign: sweep, forecast, explain, extend -------------------------------------------


def make_campaign(policy: Policy | None = None,
                  at: pendulum.DateTime | None = None) -> tuple[Campaign, rf.FrozenClock]:
    clock = rf.FrozenClock(at or t(2016, 1, 4, 9))
    return Campaign(policy or Policy.default(year=2016), clock=clock), clock


def sweep(campaign: Campaign, now: pendulum.DateTime) -> deadline_results.SweepResult:
    result: deadline_results.SweepResult = campaign.sweep(now)
    return result


CAST = Cast.default()


def open_drafting(campaign: Campaign, clock: rf.FrozenClock, *ids: str) -> None:
    for cid in ids:
        campaign.open_case(cid, organization=f"{cid}党支部", secretary=CAST.secretary(cid))
        drive_to(campaign, cid, Stage.DRAFTING, cast=CAST, clock=clock)


def fired_ids(campaign: Campaign, case_id: str) -> list[str]:
    return [r.data["rung"]["id"] for r in campaign.case(case_id).history
            if r.event == deadline_work.RUNG_EVENT]


def test_every_rung_of_the_default_ladder_fires_once_at_its_time() -> None:
    campaign, clock = make_campaign()
    recorder = HookRecorder()
    campaign.register(recorder)
    open_drafting(campaign, clock, "s1")
    moments = [
        (t(2016, 1, 13, 9) - US, []),
        (t(2016, 1, 13, 9), ["remind-3wd"]),
        (t(2016, 1, 15, 9) - US, []),
        (t(2016, 1, 15, 9), ["remind-1wd"]),
        (t(2016, 1, 18) - US, []),
        (t(2016, 1, 18), ["escalate-at-due"]),
        (t(2016, 1, 30), []),
    ]
    for now, expected in moments:
        result = sweep(campaign, now)
        assert [f.rung.id for f in result.fired] == expected, now
        assert len(sweep(campaign, now)) == 0  # sweeping twice fires nothing new
    assert fired_ids(campaign, "s1") == ["remind-3wd", "remind-1wd", "escalate-at-due"]
    calls = [kw for name, kw in recorder.calls if name == "reviewflow_deadline_rung"]
    assert [(c["stage"], c["rung"].id, c["due"]) for c in calls] == [
        (Stage.DRAFTING, "remind-3wd", t(2016, 1, 18)),
        (Stage.DRAFTING, "remind-1wd", t(2016, 1, 18)),
        (Stage.DRAFTING, "escalate-at-due", t(2016, 1, 18)),
    ]
    assert calls[0]["case"].case_id == "s1"
    assert campaign.verify().ok


def test_a_late_first_sweep_fires_the_missed_rungs_in_order() -> None:
    campaign, clock = make_campaign()
    open_drafting(campaign, clock, "s1")
    result = sweep(campaign, t(2016, 1, 19))
    assert [f.rung.id for f in result.fired] == ["remind-3wd", "remind-1wd", "escalate-at-due"]
    assert [f.seq for f in result.fired] == [3, 4, 5]


def test_rungs_of_a_stage_finished_in_time_never_fire() -> None:
    campaign, clock = make_campaign()
    recorder = HookRecorder()
    campaign.register(recorder)
    open_drafting(campaign, clock, "early", "late")
    drive_to(campaign, "early", Stage.APPROVAL, cast=CAST, clock=clock)  # submitted on 4 Jan
    for now in (t(2016, 1, 13, 9), t(2016, 1, 15, 9), t(2016, 1, 18), t(2016, 1, 25)):
        sweep(campaign, now)
    assert fired_ids(campaign, "early") == []
    assert fired_ids(campaign, "late") == ["remind-3wd", "remind-1wd", "escalate-at-due"]
    assert all(kw["case"].case_id == "late" for name, kw in recorder.calls
               if name == "reviewflow_deadline_rung")


def test_the_sweep_reads_only_the_cases_with_rungs_due() -> None:
    policy = _policy_with(Stage.DRAFTING, StageRule(
        due=After(anchor=Entered("drafting"), n=5, time="keep"),
        ladder=(Rung(offset=-1, id="remind"),),
    ))
    campaign, clock = make_campaign(policy)
    for k in range(40):
        clock.set(t(2016, 1, 4, 9).add(hours=k))
        open_drafting(campaign, clock, f"c{k:02d}")
    # Entered at 9:00 + k hours; remind 4 working days later at the same time of day.
    result = sweep(campaign, t(2016, 1, 8, 11))
    assert sorted(f.case_id for f in result.fired) == ["c00", "c01", "c02"]
    assert result.candidates == 3


def test_two_sweeps_at_once_fire_each_rung_once() -> None:
    campaign, clock = make_campaign()
    recorder = HookRecorder()
    campaign.register(recorder)
    ids = [f"s{k}" for k in range(30)]
    open_drafting(campaign, clock, *ids)
    barrier = threading.Barrier(4)
    results: list[deadline_results.SweepResult] = []

    def run() -> None:
        barrier.wait()
        results.append(campaign.sweep(t(2016, 1, 18, 1)))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    total = sum(len(r.fired) for r in results)
    assert total == 3 * len(ids)
    calls = [(kw["case"].case_id, kw["rung"].id) for name, kw in recorder.calls
             if name == "reviewflow_deadline_rung"]
    assert len(calls) == len(set(calls)) == 3 * len(ids)
    for cid in ids:
        assert fired_ids(campaign, cid) == ["remind-3wd", "remind-1wd", "escalate-at-due"]
    assert campaign.verify().ok


def test_a_crash_before_recording_fires_later_and_after_recording_never_again() -> None:
    campaign, clock = make_campaign()
    recorder = HookRecorder()
    campaign.register(recorder)
    open_drafting(campaign, clock, "s1")
    store = campaign.store
    real_commit = store.commit

    def crash(_commits: Any) -> Any:
        raise RuntimeError("power cut")

    store.commit = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        campaign.sweep(t(2016, 1, 13, 9))
    store.commit = real_commit  # type: ignore[method-assign]
    assert fired_ids(campaign, "s1") == []
    assert [f.rung.id for f in campaign.sweep(t(2016, 1, 13, 9)).fired] == ["remind-3wd"]

    # Crash after the commit, before any hook ran: the record waits in the outbox.
    step = _sweep.rung_step(campaign._engine, campaign._engine.deadline_work, campaign.case("s1"),
                            t(2016, 1, 15, 9))
    assert step is not None
    assert store.commit([step.commit]) == [None]
    before = len(recorder.calls)
    assert len(campaign.sweep(t(2016, 1, 15, 9))) == 0  # recorded: never fires again
    pending = [r for r in store.pending_outbox(campaign.id) if r.event == deadline_work.RUNG_EVENT]
    assert [r.data["rung"]["id"] for r in pending] == ["remind-1wd"]
    campaign.dispatch_pending()  # what a restart does: the one delivery path
    assert [kw["rung"].id for name, kw in recorder.calls[before:]
            if name == "reviewflow_deadline_rung"] == ["remind-1wd"]


def test_forecast_uses_the_sweep_and_changes_nothing() -> None:
    campaign, clock = make_campaign()
    open_drafting(campaign, clock, "a", "b")
    drive_to(campaign, "b", Stage.APPROVAL, cast=CAST, clock=clock)
    versions = {c.case_id: c.version for c in campaign.cases()}
    forecast = campaign.forecast
    seen = forecast(t(2016, 1, 18, 12))
    assert [(f.case_id, f.rung.id) for f in seen.rungs] == [
        ("a", "remind-3wd"), ("a", "remind-1wd"), ("a", "escalate-at-due"),
    ]
    assert [(o.case_id, o.stage, o.state) for o in seen.overdue] == [
        ("a", Stage.DRAFTING, DueState.PASSED_HARD),
    ]
    assert {c.case_id: c.version for c in campaign.cases()} == versions
    later = forecast(t(2016, 1, 26))
    assert [(o.case_id, o.stage, o.state) for o in later.overdue] == [
        ("a", Stage.DRAFTING, DueState.PASSED_HARD),
        ("b", Stage.APPROVAL, DueState.LATE_SOFT),
    ]
    fired = sweep(campaign, t(2016, 1, 18, 12))
    assert [(f.case_id, f.rung.id) for f in fired.fired] == [
        (f.case_id, f.rung.id) for f in seen.rungs
    ]


def test_explain_due_for_a_case() -> None:
    campaign, clock = make_campaign()
    open_drafting(campaign, clock, "s1")
    explain = campaign.explain_due
    e = explain("s1", "drafting")
    assert e.due == t(2016, 1, 18)
    assert e.state is DueState.ON_TIME
    assert e.text == ("fixed due time 2016-01-18 00:00:00 CST; hard deadline: the step out of "
                      "drafting is refused after it")
    assert [(r.id, when, done) for r, when, done in e.rungs] == [
        ("remind-3wd", t(2016, 1, 13, 9), False),
        ("remind-1wd", t(2016, 1, 15, 9), False),
        ("escalate-at-due", t(2016, 1, 18), False),
    ]
    sweep(campaign, t(2016, 1, 14))
    assert [done for _, _, done in explain("s1").rungs] == [True, False, False]


def do_extend(campaign: Campaign, *args: Any) -> Case:
    return campaign.extend(*args)


def test_an_extension_is_an_event_moves_the_deadline_and_its_rungs() -> None:
    campaign, clock = make_campaign()
    recorder = HookRecorder()
    campaign.register(recorder)
    open_drafting(campaign, clock, "s1")
    sweep(campaign, t(2016, 1, 15, 10))
    until = t(2016, 1, 22, 18)
    case = do_extend(campaign, "s1", "drafting", until, "书记外出学习", CAST.organizer)
    record = case.history[-1]
    assert (record.event, record.actor_id, record.reason) == ("extend", "bureau", "书记外出学习")
    assert record.data == {"stage": "drafting", "until": until.isoformat(),
                           "previous_due": t(2016, 1, 18).isoformat(), "clock": "frozen"}
    assert "reviewflow_step" in recorder.names()
    e = campaign.explain_due("s1")
    assert e.due == until
    assert e.steps[1] == "extended for this case by bureau to 2016-01-22 18:00:00 CST: 书记外出学习"
    # The new due time gets its own reminders; the old ones are not repeated.
    result = sweep(campaign, t(2016, 1, 21, 9))
    assert [(f.rung.id, f.due) for f in result.fired] == [
        ("remind-3wd", until), ("remind-1wd", until),
    ]
    # The hard deadline now follows the extension.
    clock.set(t(2016, 1, 22, 17))
    assert campaign.due(campaign.case("s1"), Stage.DRAFTING) == until
    drive_to(campaign, "s1", Stage.APPROVAL, cast=CAST, clock=clock)
    assert len(sweep(campaign, t(2016, 1, 23))) == 0


def test_extension_refusals_change_nothing() -> None:
    campaign, clock = make_campaign()
    open_drafting(campaign, clock, "s1")
    version = campaign.case("s1").version
    cases = [
        (("s1", "drafting", t(2016, 1, 20), "理由", CAST.secretary("s1")), "not_permitted"),
        (("s1", "drafting", t(2016, 1, 20), "  ", CAST.organizer), "missing_data"),
        (("s1", "drafting", t(2016, 1, 17), "理由", CAST.organizer), "not_later"),
        (("s1", "research", t(2016, 1, 20), "理由", CAST.organizer), "wrong_stage"),
        (("s1", "evaluation", t(2016, 3, 20), "理由", CAST.organizer), "no_deadline"),
    ]
    for args, reason in cases:
        with pytest.raises(TransitionRefused) as info:
            do_extend(campaign, *args)
        assert info.value.reason == reason
    with pytest.raises(DeadlineError, match="no time zone"):
        do_extend(campaign, "s1", "drafting", dt.datetime(2016, 1, 20), "理由", CAST.organizer)
    assert campaign.case("s1").version == version
    assert [r.reason for r in campaign.refusals("s1")][-5:] == [r for _, r in cases]


def _policy_with(stage: Stage, rule: StageRule) -> Policy:
    base = Policy.default(year=2016)
    return attrs.evolve(base, stages={**base.stages, stage: rule})


def test_auto_action_mark_missed() -> None:
    ladder = (*default_report_ladder(), Rung(offset=2, action="auto", auto="mark_missed"))
    base = Policy.default(year=2016).stage(Stage.DRAFTING)
    campaign, clock = make_campaign(_policy_with(Stage.DRAFTING, attrs.evolve(base, ladder=ladder)))
    open_drafting(campaign, clock, "s1")
    sweep(campaign, t(2016, 1, 19))
    assert "missed" not in campaign.case("s1").data
    result = sweep(campaign, t(2016, 1, 20))
    assert [f.rung.id for f in result.fired] == ["auto+2wd"]
    assert campaign.case("s1").data["missed"]["drafting"]["rung"] == "auto+2wd"


def test_auto_action_return_report_sends_an_unsigned_report_back() -> None:
    approval = StageRule(due=At(t(2016, 1, 25)), hard=False,
                         ladder=(Rung(offset=1, action="auto", auto="return_report"),
                                 Rung(offset=3, id="late-reminder")))
    campaign, clock = make_campaign(_policy_with(Stage.APPROVAL, approval))
    open_drafting(campaign, clock, "s1")
    drive_to(campaign, "s1", Stage.APPROVAL, cast=CAST, clock=clock)
    result = sweep(campaign, t(2016, 1, 29))
    assert [f.rung.id for f in result.fired] == ["auto+1wd"]  # the later rung no longer applies
    case = campaign.case("s1")
    assert case.stage is Stage.DRAFTING
    last = case.history[-1]
    assert (last.event, last.from_stage, last.to_stage, last.actor_id) == (
        "return_for_revision", "approval", "drafting", "reviewflow")
    assert case.data["entered"]["drafting"] == t(2016, 1, 29).isoformat()
    assert campaign.verify().ok


# -- property: sweeping at any times fires every due rung exactly once ------------------------


@settings(max_examples=25, deadline=None)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=20 * 24), min_size=1, max_size=6),
    finish_at=st.one_of(st.none(), st.integers(min_value=0, max_value=20 * 24)),
)
def test_any_sweep_schedule_fires_each_due_rung_exactly_once(
    offsets: list[int], finish_at: int | None
) -> None:
    campaign, clock = make_campaign()
    open_drafting(campaign, clock, "s1")
    start = t(2016, 1, 4, 9)
    times = sorted(start.add(hours=h) for h in offsets)
    finished: pendulum.DateTime | None = None
    for now in times:
        if finish_at is not None and finished is None and start.add(hours=finish_at) <= now:
            finished = start.add(hours=finish_at)
            if finished <= t(2016, 1, 18):
                clock.set(finished)
                drive_to(campaign, "s1", Stage.APPROVAL, cast=CAST, clock=clock)
        sweep(campaign, now)
        assert len(sweep(campaign, now)) == 0
    fired = fired_ids(campaign, "s1")
    assert len(fired) == len(set(fired))
    schedule = rung_schedule(default_report_ladder(), t(2016, 1, 18), DueContext())
    left_at = finished if finished is not None and finished <= t(2016, 1, 18) else None
    expected = [r.id for r, when in schedule
                if when <= times[-1] and (left_at is None or when <= max(
                    (x for x in times if x < left_at), default=start.subtract(days=1)))]
    assert fired == expected


def test_the_sweep_on_a_sqlite_store_fires_once(tmp_path: Any) -> None:
    clock = rf.FrozenClock(t(2016, 1, 4, 9))
    campaign = Campaign(Policy.default(year=2016), clock=clock,
                        store=f"sqlite:///{tmp_path}/reviewflow.db")
    try:
        open_drafting(campaign, clock, "s1", "s2")
        first = campaign.sweep(t(2016, 1, 18))
        assert sorted((f.case_id, f.rung.id) for f in first.fired) == sorted(
            (cid, rid) for cid in ("s1", "s2")
            for rid in ("remind-3wd", "remind-1wd", "escalate-at-due"))
        assert len(campaign.sweep(t(2016, 1, 18))) == 0
        assert fired_ids(campaign, "s1") == ["remind-3wd", "remind-1wd", "escalate-at-due"]
        assert campaign.verify().ok
    finally:
        campaign.store.close()
