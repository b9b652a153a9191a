"""The engine: the seed lifecycle end to end, every refusal reason, hooks, batches, audit."""

from __future__ import annotations

import itertools
from typing import Any

import attrs
import pendulum
import pytest

import reviewflow as rf
from reviewflow.store.base import Commit
from reviewflow.store.memory import _kept, _snapshot
from reviewflow.testing import (
    SAMPLE_VOTE,
    Cast,
    HookRecorder,
    drive_to,
    passing_report,
    seed_campaign,
)

CAST = Cast.default()
BUREAU = CAST.organizer
LI = CAST.reviewers[0]


def open_one(campaign: rf.Campaign, case_id: str = "s1", **kw: object) -> rf.Case:
    return campaign.open_case(case_id, organization=f"{case_id}党支部",
                              secretary=CAST.secretary(case_id), **kw)  # type: ignore[arg-type]


def refused(excinfo: pytest.ExceptionInfo[rf.TransitionRefused]) -> str:
    return excinfo.value.reason


class TestLifecycle:
    """The seed's lifecycle runs end to end."""

    def test_whole_lifecycle_closes_with_a_score_and_an_intact_chain(self) -> None:
        campaign, clock = seed_campaign()
        open_one(campaign)

        case = drive_to(campaign, "s1", rf.Stage.CLOSED, clock=clock)

        assert case.stage == rf.Stage.CLOSED
        assert case.data["evaluation"]["score"] == "79"
        assert case.data["evaluation"]["rounded"] == "79.00"
        events = [r.event for r in case.history]
        assert events == ["open", "finish_research", "submit_report", "sign_off", "sign_off",
                "hold_meeting", "comment", "comment", "finish_evaluation", "hold_talk",
                "submit_special_report"]
        assert campaign.verify().ok

    def test_the_issue_sketch_runs_as_written(self) -> None:
        clock = rf.FrozenClock(pendulum.datetime(2016, 1, 4, 9, tz="Asia/Shanghai"))
        campaign = rf.Campaign(rf.Policy.default(year=2016), clock=clock)
        zhang = rf.Actor("zhang", "张三", roles={"secretary"})
        campaign.open_case("school-01", organization="第一中学党支部", secretary=zhang)
        campaign.fire("school-01", "finish_research", actor=BUREAU,
                      problems=["组织生活不规范", "党员发展滞后"])
        campaign.fire("school-01", "submit_report", actor=zhang, report=passing_report())
        campaign.fire("school-01", "sign_off", actor=LI, comment="同意")

        assert campaign.case("school-01").stage == rf.Stage.APPROVAL

        campaign.fire("school-01", "sign_off", actor=BUREAU, comment="同意")

        assert campaign.case("school-01").stage == rf.Stage.MEETING

    def test_every_record_chains_stages(self) -> None:
        campaign, clock = seed_campaign()
        open_one(campaign)
        case = drive_to(campaign, "s1", rf.Stage.CLOSED, clock=clock)

        stages = [(r.from_stage, r.to_stage) for r in case.history]
        for (_, to_stage), (from_stage, _) in itertools.pairwise(stages):
            assert to_stage == from_stage
        assert [r.seq for r in case.history] == list(range(1, case.version + 1))

    def test_stage_labels_are_chinese(self) -> None:
        assert rf.Stage.APPROVAL.label == "材料审阅"
        assert rf.Stage.GROUP_TALK.label == "集体约谈"

    def test_return_for_revision_goes_back_and_clears_signatures(self) -> None:
        campaign, clock = seed_campaign()
        open_one(campaign)
        drive_to(campaign, "s1", rf.Stage.APPROVAL, clock=clock)
        campaign.fire("s1", "sign_off", actor=LI)

        case = campaign.fire("s1", "return_for_revision", actor=BUREAU, reason="数据不实")

        assert case.stage == rf.Stage.DRAFTING
        assert case.data["signatures"] == []
        assert case.history[-1].reason == "数据不实"

    def test_entered_times_are_recorded_per_stage(self) -> None:
        campaign, clock = seed_campaign()
        open_one(campaign)
        clock.advance(days=1)
        case = campaign.fire("s1", "finish_research", actor=BUREAU, problems=["p"])

        assert case.data["entered"]["drafting"] == "2016-01-05T09:00:00+08:00"


class TestRefusals:
    """Each refusal has a stable reason and changes nothing."""

    def test_unknown_event(self) -> None:
        campaign, _ = seed_campaign()
        open_one(campaign)
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s1", "approve_everything", actor=BUREAU)
        assert refused(exc) == "unknown_event"

    def test_wrong_stage(self) -> None:
        campaign, _ = seed_campaign()
        open_one(campaign)
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s1", "sign_off", actor=LI)
        assert refused(exc) == "wrong_stage"
        assert "提前准备" in str(exc.value)

    def test_not_permitted(self) -> None:
        campaign, _ = seed_campaign()
        open_one(campaign)
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s1", "finish_research", actor=LI, problems=["p"])
        assert refused(exc) == "not_permitted"

    def test_another_cases_secretary_is_not_this_cases_secretary(self) -> None:
        campaign, clock = seed_campaign()
        open_one(campaign)
        drive_to(campaign, "s1", rf.Stage.DRAFTING, clock=clock)
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s1", "submit_report", actor=CAST.secretary("s2"),
                          report=passing_report())
        assert refused(exc) == "not_permitted"
        assert "own secretary" in str(exc.value)

    def test_secretary_cannot_sign_off_own_report(self) -> None:
        campaign, clock = seed_campaign()
        open_one(campaign)
        drive_to(campaign, "s1", rf.Stage.APPROVAL, clock=clock)
        both = rf.Actor("sec-s1", "书记", roles={"secretary", "guidance_group"})
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s1", "sign_off", actor=both)
        assert refused(exc) == "self_sign_off"

    def test_one_person_cannot_sign_two_levels(self) -> None:
        policy = attrs.evolve(rf.Policy.default(year=2016), approval_levels=(
            rf.ApprovalLevel(name="a", roles={"guidance_group"}),
            rf.ApprovalLevel(name="b", roles={"guidance_group"}),
        ))
        campaign, clock = seed_campaign(policy=policy)
        open_one(campaign)
        drive_to(campaign, "s1", rf.Stage.APPROVAL, clock=clock)
        campaign.fire("s1", "sign_off", actor=LI)
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s1", "sign_off", actor=LI)
        assert refused(exc) == "already_signed"

    def test_level_roles_decide_who_signs(self) -> None:
        campaign, clock = seed_campaign()
        open_one(campaign)
        drive_to(campaign, "s1", rf.Stage.APPROVAL, clock=clock)
        campaign.fire("s1", "sign_off", actor=LI)
        other = rf.Actor("liu", "刘", roles={"guidance_group"})
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s1", "sign_off", actor=other)
        assert refused(exc) == "not_permitted"
        assert "局党组审定" in str(exc.value)

    def test_guidance_group_assignment(self) -> None:
        policy = attrs.evolve(
            rf.Policy.default(year=2016),
            guidance_groups={"一组": frozenset({"li"}), "二组": frozenset({"liu"})},
            assignments={"s1": "二组"},
        )
        campaign, clock = seed_campaign(policy=policy)
        open_one(campaign)
        open_one(campaign, "s2")
        drive_to(campaign, "s1", rf.Stage.APPROVAL, clock=clock)
        drive_to(campaign, "s2", rf.Stage.APPROVAL, clock=clock)
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s1", "sign_off", actor=LI)
        assert refused(exc) == "not_in_group"
        liu = rf.Actor("liu", "刘", roles={"guidance_group"})
        assert len(campaign.fire("s1", "sign_off", actor=liu).data["signatures"]) == 1
        # s2 has no assignment: any member of any group may sign
        assert len(campaign.fire("s2", "sign_off", actor=LI).data["signatures"]) == 1
        outsider = rf.Actor("x", "外人", roles={"guidance_group"})
        campaign.fire("s2", "return_for_revision", actor=BUREAU, reason="重写")
        drive_to(campaign, "s2", rf.Stage.APPROVAL, clock=clock)
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s2", "sign_off", actor=outsider)
        assert refused(exc) == "not_in_group"

    def test_hard_deadline_at_exact_boundaries(self) -> None:
        campaign, clock = seed_campaign()
        open_one(campaign)
        drive_to(campaign, "s1", rf.Stage.DRAFTING, clock=clock)
        due = pendulum.datetime(2016, 1, 18, tz="Asia/Shanghai")

        clock.set(due.add(microseconds=1))
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s1", "submit_report", actor=CAST.secretary("s1"),
                          report=passing_report())
        assert refused(exc) == "deadline_passed"
        assert "2016-01-18 00:00:00 CST" in str(exc.value)

        clock.set(due)
        case = campaign.fire("s1", "submit_report", actor=CAST.secretary("s1"),
                             report=passing_report())
        assert case.stage == rf.Stage.APPROVAL

    def test_soft_deadline_marks_the_step_late(self) -> None:
        campaign, clock = seed_campaign()
        open_one(campaign)
        drive_to(campaign, "s1", rf.Stage.APPROVAL, clock=clock)
        clock.set(pendulum.datetime(2016, 1, 25, 0, 0, 1, tz="Asia/Shanghai"))
        campaign.fire("s1", "sign_off", actor=LI)
        case = campaign.fire("s1", "sign_off", actor=BUREAU)

        assert case.stage == rf.Stage.MEETING
        assert case.history[-1].reason == "late"
        assert case.history[-1].data["late"] is True
        assert case.history[-2].reason is None  # staying in approval is not a late exit

    def test_meeting_before_window_is_too_early(self) -> None:
        campaign, _ = seed_campaign()
        open_one(campaign)
        drive_to(campaign, "s1", rf.Stage.MEETING)
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s1", "hold_meeting", actor=BUREAU, attendance={"public": 3})
        assert refused(exc) == "too_early"

    def test_meeting_date_before_window_is_too_early(self) -> None:
        campaign, clock = seed_campaign()
        open_one(campaign)
        drive_to(campaign, "s1", rf.Stage.MEETING)
        clock.set(pendulum.datetime(2016, 1, 12, tz="Asia/Shanghai"))
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s1", "hold_meeting", actor=BUREAU, date="2016-01-08",
                          attendance={"public": 3})
        assert refused(exc) == "too_early"

    def test_content_rule_lists_every_finding(self) -> None:
        campaign, clock = seed_campaign()
        open_one(campaign, carried_over=["去年问题"])
        drive_to(campaign, "s1", rf.Stage.DRAFTING, clock=clock)
        bad = rf.Report(duty="成绩" * 200, progress="成绩" * 200,
                        problems=[rf.Problem(description="问题")], plans="计划")
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s1", "submit_report", actor=CAST.secretary("s1"), report=bad)

        assert refused(exc) == "content_rule"
        assert {"achievements_too_long", "problem_without_cause", "problem_without_measure",
                "carry_over_unaddressed"} == set(exc.value.findings)

    @pytest.mark.parametrize(("event", "data", "reason"), [
        ("finish_research", {}, "missing_data"),
        ("finish_research", {"problems": "not a list"}, "missing_data"),
        ("finish_research", {"problems": ["p"], "colour": 1}, "invalid_data"),
    ])
    def test_research_data(self, event: str, data: dict[str, object], reason: str) -> None:
        campaign, _ = seed_campaign()
        open_one(campaign)
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s1", event, actor=BUREAU, **data)
        assert reason == refused(exc)

    def test_missing_and_invalid_data_in_later_stages(self) -> None:
        campaign, clock = seed_campaign()
        open_one(campaign)
        drive_to(campaign, "s1", rf.Stage.DRAFTING, clock=clock)
        sec = CAST.secretary("s1")
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s1", "submit_report", actor=sec)
        assert refused(exc) == "missing_data"
        drive_to(campaign, "s1", rf.Stage.APPROVAL, clock=clock)
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s1", "return_for_revision", actor=BUREAU)
        assert refused(exc) == "missing_data"
        drive_to(campaign, "s1", rf.Stage.MEETING, clock=clock)
        clock.set(pendulum.datetime(2016, 1, 12, 9, tz="Asia/Shanghai"))
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s1", "hold_meeting", actor=BUREAU, attendance={"public": -1})
        assert refused(exc) == "invalid_data"
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s1", "hold_meeting", actor=BUREAU, date="2099-01-01",
                          attendance={"public": 1})
        assert refused(exc) == "invalid_data"
        drive_to(campaign, "s1", rf.Stage.EVALUATION, clock=clock)
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s1", "finish_evaluation", actor=BUREAU, vote=SAMPLE_VOTE)
        assert refused(exc) == "missing_data"
        assert exc.value.findings == ("superior_secretary", "department_delegate")
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s1", "record_vote", actor=BUREAU, vote={"good": -1})
        assert refused(exc) == "invalid_data"
        with pytest.raises(rf.TransitionRefused) as exc:
            campaign.fire("s1", "record_vote", actor=BUREAU, vote={"good": 0})
        assert refused(exc) == "invalid_data"

    def test_refusal_changes_nothing_and_is_journaled(self) -> None:
        campaign, clock = seed_campaign()
        open_one(campaign)
        drive_to(campaign, "s1", rf.Stage.APPROVAL, clock=clock)
        before = campaign.case("s1").to_json()
        with pytest.raises(rf.TransitionRefused):
            campaign.fire("s1", "sign_off", actor=CAST.secretary("s1"))

        assert before == campaign.case("s1").to_json()
        journal = campaign.refusals("s1")
        assert [r.reason for r in journal] == ["self_sign_off"]
        assert journal[0].actor_id == "sec-s1"

    def test_unknown_case(self) -> None:
        campaign, _ = seed_campaign()
        with pytest.raises(rf.UnknownCaseError, match="no case 'nope'"):
            campaign.fire("nope", "finish_research", actor=BUREAU, problems=["p"])

    def test_duplicate_case(self) -> None:
        campaign, _ = seed_campaign()
        open_one(campaign)
        with pytest.raises(rf.DuplicateCaseError):
            open_one(campaign)

    def test_bad_open_arguments(self) -> None:
        campaign, _ = seed_campaign()
        with pytest.raises(rf.InputError, match="secretary"):
            campaign.open_case("s1", organization="x", secretary="zhang")  # type: ignore[arg-type]
        with pytest.raises(rf.InputError, match="case_id"):
            campaign.open_case("", organization="x", secretary=CAST.secretary("s1"))
        with pytest.raises(rf.InputError, match="guidance group"):
            campaign.open_case("s1", organization="x", secretary=CAST.secretary("s1"),
                               guidance_group="nope")
        assert campaign.cases() == []

    @pytest.mark.parametrize(("case_id", "organization", "name", "what"), [
        ("s\x01", "第一中学党支部", "张三", "case_id"),
        ("s1", "第一\x01中学党支部", "张三", "organization"),
        ("s1", "第一中学\r=HYPERLINK(1)", "张三", "organization"),
        ("s1", "第一中学党支部", "张\t三", "actor name"),
        ("s1", "第一中学党支部", "张三\x85", "actor name"),
    ])
    def test_control_characters_in_ids_and_names_are_refused(
            self, case_id: str, organization: str, name: str, what: str) -> None:
        campaign, _ = seed_campaign()
        if what == "actor name":  # refused where the actor is made
            with pytest.raises(rf.InputError, match=r"actor name .* a control character"):
                rf.Actor("sec-1", name, roles={"secretary"})
            return
        secretary = rf.Actor("sec-1", name, roles={"secretary"})
        with pytest.raises(rf.InputError, match=rf"{what} .* a control character"):
            campaign.open_case(case_id, organization=organization, secretary=secretary)
        with pytest.raises(rf.InputError, match="row 2"):  # a batch: all rows or none
            campaign.open_cases([
                {"case_id": "ok", "organization": "二中", "secretary": CAST.secretary("ok")},
                {"case_id": case_id, "organization": organization, "secretary": secretary},
            ])
        assert campaign.cases() == []


class TestAllowed:
    """allowed() explains every event without changing anything."""

    def test_lists_every_event_with_reasons(self) -> None:
        campaign, clock = seed_campaign()
        open_one(campaign)
        drive_to(campaign, "s1", rf.Stage.APPROVAL, clock=clock)
        version = campaign.case("s1").version

        perms = {p.event: p for p in campaign.allowed("s1", LI)}

        assert perms["sign_off"].allowed
        assert perms["return_for_revision"].allowed
        assert not perms["finish_research"].allowed
        assert perms["finish_research"].reasons == ("wrong_stage", "not_permitted")
        assert perms["return_for_revision"].needs == ("reason",)
        assert version == campaign.case("s1").version

    def test_secretary_sees_self_sign_off(self) -> None:
        campaign, clock = seed_campaign()
        open_one(campaign)
        drive_to(campaign, "s1", rf.Stage.APPROVAL, clock=clock)
        perms = {p.event: p for p in campaign.allowed("s1", CAST.secretary("s1"))}
        assert perms["sign_off"].reasons == ("self_sign_off",)


class TestBatch:
    """fire_many is all-or-nothing per case with one result per case."""

    def test_hold_talk_over_many_cases(self) -> None:
        campaign, clock = seed_campaign()
        for i in range(5):
            open_one(campaign, f"s{i}")
            drive_to(campaign, f"s{i}", rf.Stage.GROUP_TALK if i < 4 else rf.Stage.EVALUATION,
                     clock=clock)

        results = campaign.fire_many([f"s{i}" for i in range(5)] + ["ghost"], "hold_talk",
                                     actor=CAST.superior, notes="约谈")

        assert [r.ok for r in results] == [True] * 4 + [False, False]
        assert isinstance(results[4].error, rf.TransitionRefused)
        assert results[4].error.reason == "wrong_stage"
        assert isinstance(results[5].error, rf.UnknownCaseError)
        assert len(campaign.cases(rf.Stage.REPORT_BACK)) == 4
        assert campaign.case("s4").stage == rf.Stage.EVALUATION

    def test_open_cases_is_all_or_nothing(self) -> None:
        campaign, _ = seed_campaign()
        rows = [{"case_id": "a", "organization": "A", "secretary": CAST.secretary("a")},
                {"case_id": "a", "organization": "A2", "secretary": CAST.secretary("a")}]
        with pytest.raises(rf.DuplicateCaseError):
            campaign.open_cases(rows)
        assert campaign.cases() == []


class TestHooks:
    """Hooks hear committed steps; a failing hook never undoes a step."""

    def test_hooks_hear_open_steps_and_refusals(self) -> None:
        campaign, _ = seed_campaign()
        recorder = HookRecorder()
        campaign.register(recorder)
        open_one(campaign)
        campaign.fire("s1", "finish_research", actor=BUREAU, problems=["p"])
        with pytest.raises(rf.TransitionRefused):
            campaign.fire("s1", "sign_off", actor=LI)

        assert recorder.names() == ["reviewflow_case_opened", "reviewflow_step",
                "reviewflow_refused"]
        assert recorder.calls[1][1]["record"].event == "finish_research"
        assert campaign.store.pending_outbox(campaign.id) == []

    def test_a_raising_hook_leaves_the_step_and_other_hooks(self) -> None:
        campaign, _ = seed_campaign()

        class Broken:
            @rf.hookimpl
            def reviewflow_step(self, campaign: object, case: object, record: object) -> None:
                raise RuntimeError("chat robot down")

        recorder = HookRecorder()
        campaign.register(Broken(), name="broken")
        campaign.register(recorder)
        open_one(campaign)
        case = campaign.fire("s1", "finish_research", actor=BUREAU, problems=["p"])

        assert case.stage == rf.Stage.DRAFTING
        assert campaign.case("s1").stage == rf.Stage.DRAFTING
        assert "reviewflow_step" in recorder.names()
        assert len(campaign.plugin_errors) == 1
        assert campaign.plugin_errors[0].plugin == "broken"
        assert isinstance(campaign.plugin_errors[0].__cause__, RuntimeError)

    def test_dispatch_pending_redelivers_undispatched_events(self) -> None:
        campaign, _ = seed_campaign()
        open_one(campaign)
        case = campaign.case("s1")
        # an event committed by a process that died before telling the hooks
        step = campaign._engine.prepare(case, "finish_research", BUREAU, {"problems": ["p"]})
        assert campaign.store.commit([Commit(
            case=step.case, expected_version=step.expected_version, events=step.events)]) == [None]
        recorder = HookRecorder()
        campaign.register(recorder)

        assert campaign.dispatch_pending() == 1
        assert recorder.names() == ["reviewflow_step"]
        assert campaign.dispatch_pending() == 0

    def test_registering_a_bad_plugin_is_a_plugin_error(self) -> None:
        campaign, _ = seed_campaign()

        class Wrong:
            @rf.hookimpl
            def reviewflow_step(self, nonsense: object) -> None: ...

        with pytest.raises(rf.PluginError):
            campaign.register(Wrong())

    def test_a_policy_naming_an_uninstalled_plugin_fails_clearly(self) -> None:
        policy = attrs.evolve(rf.Policy.default(year=2016), plugins=("no-such-plugin",))
        with pytest.raises(rf.PluginError, match="not installed"):
            rf.Campaign(policy)


class TestConcurrencyAndIdempotency:
    """Stale writes conflict; replays with the same key have one effect."""

    def test_stale_version_conflicts_and_changes_nothing(self) -> None:
        campaign, _ = seed_campaign()
        open_one(campaign)
        stale = campaign.case("s1")
        campaign.fire("s1", "finish_research", actor=BUREAU, problems=["p"])
        step = campaign._engine.prepare(stale, "finish_research", BUREAU, {"problems": ["q"]})

        [error] = campaign.store.commit([Commit(
            case=step.case, expected_version=step.expected_version, events=step.events)])

        assert isinstance(error, rf.ConflictError)
        assert (error.expected, error.actual) == (1, 2)
        assert campaign.case("s1").data["problems"] == ["p"]
        assert campaign.verify().ok

    def test_idempotency_key_replay(self) -> None:
        campaign, _ = seed_campaign()
        open_one(campaign)
        first = campaign.fire("s1", "finish_research", actor=BUREAU, problems=["p"],
                              idempotency_key="k1")
        again = campaign.fire("s1", "finish_research", actor=BUREAU, problems=["p"],
                              idempotency_key="k1")

        assert first.version == again.version == 2
        with pytest.raises(rf.IdempotencyKeyReused):
            campaign.fire("s1", "finish_research", actor=BUREAU, problems=["other"],
                          idempotency_key="k1")


class TestAudit:
    """verify() detects any edit or removal of an event."""

    def _history(self, campaign: rf.Campaign) -> list[tuple[Any, ...]]:
        return campaign.store._campaigns[campaign.id].history["s1"]  # type: ignore[attr-defined]

    def test_edit_is_detected(self) -> None:
        campaign, clock = seed_campaign()
        open_one(campaign)
        drive_to(campaign, "s1", rf.Stage.MEETING, clock=clock)
        edited = campaign.store.history(campaign.id, "s1")[2]._replace(actor_id="someone-else")
        self._history(campaign)[2] = _kept(edited)  # as the in-memory store keeps records

        report = campaign.verify()

        assert not report.ok
        assert (report.problems[0].case_id, report.problems[0].position) == ("s1", 3)

    def test_removal_is_detected(self) -> None:
        campaign, clock = seed_campaign()
        open_one(campaign)
        drive_to(campaign, "s1", rf.Stage.MEETING, clock=clock)
        del self._history(campaign)[-1]

        assert not campaign.verify().ok


class TestPolicy:
    """Policies are checked when built."""

    def test_default_policy_is_the_seed(self) -> None:
        policy = rf.Policy.default(year=2016)
        assert pendulum.datetime(2016, 1, 18, tz="Asia/Shanghai") == policy.stage(
            rf.Stage.DRAFTING).due.at  # type: ignore[union-attr]
        assert len(policy.approval_levels) == 2
        assert policy.role_label("organizer") == "局党组"

    @pytest.mark.parametrize(("change", "field"), [
        ({"approval_levels": ()}, "approval.levels"),
        ({"approval_levels": (rf.ApprovalLevel(name="a", roles=()),)}, "approval.levels[0].roles"),
        ({"approval_levels": (rf.ApprovalLevel(name="a", roles={"boss"}),)},
         "approval.levels[0].roles"),
        ({"permissions": {"sign_off": frozenset({"nobody"})}}, "permissions.sign_off"),
        ({"permissions": {"approve": frozenset({"organizer"})}}, "permissions.approve"),
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"assignments": {"s1": "nope"}}, "assignments.s1"),
        ({"stages": {**rf.Policy.default(year=2016).stages, rf.Stage.APPROVAL: rf.StageRule(
            due=rf.deadlines.At(pendulum.datetime(2016, 1, 1, tz="Asia/Shanghai")))}},
         "stages.approval.due"),
    ])
    def test_bad_policy_names_the_field(self, change: dict[str, object], field: str) -> None:
        with pytest.raises(rf.PolicyError) as exc:
            attrs.evolve(rf.Policy.default(year=2016), **change)
        assert field == exc.value.field


def test_exported_members_match_all() -> None:
    public = {name for name in dir(rf) if not name.startswith("_")} - {"annotations"}
    modules = {"audit", "campaign", "clock", "content", "deadlines", "exceptions", "hooks",
               "model", "policy", "scoring", "store", "testing"}
    assert sorted(rf.__all__) == rf.__all__
    missing = set(rf.__all__) - public
    assert set() == missing
    extra = {n for n in public - set(rf.__all__) if not hasattr(getattr(rf, n), "__path__")
             and getattr(getattr(rf, n), "__module__", None) is not None}
    assert set() == extra - modules


class TestSideSteps:
    """Steps that keep the stage (extensions, ballots, rungs) share the chain and the checks."""

    def test_side_step_is_chained_and_keeps_the_stage(self, monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
        from reviewflow import _replay

        campaign, _ = seed_campaign()
        open_one(campaign)

        def apply(case: rf.Case, now: pendulum.DateTime) -> tuple[dict[str, object], None, tuple[()]]:
            case.data["note"] = "x"
            return {"note": "x"}, None, ()

        case = campaign._engine.side_step("s1", "annotate", actor=BUREAU, role="organizer", apply=apply)

        assert case.stage == rf.Stage.RESEARCH
        assert (case.history[-1].from_stage, case.history[-1].to_stage) == ("research", "research")
        assert campaign.case("s1").data["note"] == "x"
        # verify replays every event: a new event needs its fold
        assert [p.kind for p in campaign.verify().problems] == ["replay"]

        def fold(state: _replay.Replayed, record: rf.EventRecord) -> None:
            state.data["note"] = record.data["note"]

        monkeypatch.setitem(_replay.FOLDS, "annotate", fold)
        assert campaign.verify().ok

    def test_side_step_refusal_is_journaled_and_changes_nothing(self) -> None:
        campaign, _ = seed_campaign()
        open_one(campaign)

        def apply(case: rf.Case, now: pendulum.DateTime) -> tuple[dict[str, object], None, tuple[()]]:
            case.data["note"] = "half-applied"
            raise rf.TransitionRefused("closed", "no notes now", case_id=case.case_id, event="x")

        with pytest.raises(rf.TransitionRefused):
            campaign._engine.side_step("s1", "annotate", actor=BUREAU, role="organizer", apply=apply)
        assert "note" not in campaign.case("s1").data
        assert [r.reason for r in campaign.refusals()] == ["closed"]

    def test_many_side_steps_report_per_case(self) -> None:
        campaign, _ = seed_campaign()
        open_one(campaign, "a")

        def apply(case: rf.Case, now: pendulum.DateTime) -> tuple[dict[str, object], None, tuple[()]]:
            return {}, None, ()

        results = campaign._engine.side_step_many(["a", "missing"], "annotate", actor=BUREAU,
                                        role="organizer", apply=apply)
        assert [r.ok for r in results] == [True, False]
        assert campaign.case("a").version == 2


class TestSnapshotAudit:
    """verify() also ties the stored snapshot to the events."""

    def test_an_edited_score_is_found(self) -> None:
        campaign, clock = seed_campaign()
        open_one(campaign)
        drive_to(campaign, "s1", rf.Stage.GROUP_TALK, clock=clock)
        edited = campaign.case("s1")
        edited.data = {**edited.data, "evaluation": {"score": "99", "rounded": "99.00"}}
        campaign.store._campaigns[campaign.id].cases["s1"] = _snapshot(edited)  # type: ignore[attr-defined]

        report = campaign.verify()

        assert not report.ok
        found = {(p.case_id, p.field, p.expected, p.found) for p in report.problems}
        assert found == {("s1", "data.evaluation.score", "79", "99"),
                         ("s1", "data.evaluation.rounded", "79.00", "99.00")}
        assert "stored data.evaluation.rounded is '99.00'" in str(report)

    def test_an_edited_stage_is_found(self) -> None:
        campaign, clock = seed_campaign()
        open_one(campaign)
        drive_to(campaign, "s1", rf.Stage.APPROVAL, clock=clock)
        edited = campaign.case("s1")
        edited.stage = rf.Stage.MEETING
        campaign.store._campaigns[campaign.id].cases["s1"] = _snapshot(edited)  # type: ignore[attr-defined]

        assert not campaign.verify().ok
