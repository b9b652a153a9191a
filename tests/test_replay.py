"""The replay: a case's events fold into exactly the case the store keeps, for every step.

``verify`` compares the stored case with its replayed events field by field; this drives
cases through every kind of step (the lifecycle, a send-back, ballots and paper counts, a
void round and a re-vote, host numbers and vetoes, publication and feedback, an extension,
reminders of the sweep) and checks that the replay gives the stored case back.
"""

from __future__ import annotations

from typing import Any

import pendulum
import pytest

import reviewflow as rf
from reviewflow import _replay
from reviewflow.ballots import PaperCount
from reviewflow.testing import Cast, drive_to

TZ = "Asia/Shanghai"
CAST = Cast.default()


def _stored(campaign: rf.Campaign, case_id: str) -> dict[str, Any]:
    case = campaign.case(case_id)
    return {"stage": case.stage.value, "version": case.version, "last_hash": case.last_hash,
            "organization": case.organization, "secretary": case.secretary.to_json(),
            "previous_case_id": case.previous_case_id, "data": case.data}


def _replayed(campaign: rf.Campaign, case_id: str) -> dict[str, Any]:
    state = _replay.replay(campaign.store.history(campaign.id, case_id))
    return {**state.fields(), "data": state.data}


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    if request.param == "memory":
        return rf.MemoryStore()
    return f"sqlite:///{tmp_path / 'replay.db'}"


def test_every_kind_of_step_replays_to_the_stored_case(store: Any) -> None:
    clock = rf.FrozenClock(pendulum.datetime(2016, 1, 4, 9, tz=TZ))
    campaign = rf.Campaign(rf.Policy.default(year=2016), clock=clock, store=store)
    for cid in ("a", "b", "c", "d"):
        campaign.open_case(cid, organization=f"{cid}中学党支部", secretary=CAST.secretary(cid))
    # a: sent back once, then ballots with a void round (more returned than issued via
    # paper counts) and a re-vote with tokens
    drive_to(campaign, "a", rf.Stage.APPROVAL, cast=CAST, clock=clock)
    campaign.fire("a", "return_for_revision", actor=CAST.signer(campaign, campaign.case("a")),
                  reason="问题原因不清")
    drive_to(campaign, "a", rf.Stage.EVALUATION, cast=CAST, clock=clock)
    campaign.fire("a", "comment", actor=CAST.superior, text="工作扎实", rating="good")
    campaign.fire("a", "comment", actor=CAST.delegate, text="成效明显")
    campaign.issue_ballot_tokens("a", {"party_member": 3, "public": 0}, actor=CAST.organizer)
    campaign.enter_paper_counts("a", PaperCount(category="cadre", counts={"good": 4}, issued=2),
                                actor=CAST.organizer)
    campaign.close_vote("a", actor=CAST.organizer)  # void: 4 returned, 2 issued for cadres
    campaign.revote("a", actor=CAST.organizer, reason="重新测评")
    tokens = campaign.issue_ballot_tokens("a", {"party_member": 5}, actor=CAST.organizer)
    for t, choice in zip(tokens, ["good", "good", "fairly_good", "poor", None], strict=True):
        campaign.cast_ballot("a", t.token, choice)
    campaign.close_vote("a", actor=CAST.organizer)
    campaign.fire("a", "finish_evaluation", actor=CAST.organizer)
    # b: an open round voided by the re-vote itself, then paper counts replaced
    drive_to(campaign, "b", rf.Stage.EVALUATION, cast=CAST, clock=clock)
    campaign.issue_ballot_tokens("b", {"party_member": 2}, actor=CAST.organizer)
    campaign.revote("b", actor=CAST.organizer, void_reason="选票印错", reason="重印选票")
    campaign.enter_paper_counts("b", PaperCount(counts={"good": 8, "poor": 1}, issued=10),
                                actor=CAST.organizer)
    campaign.enter_paper_counts("b", PaperCount(counts={"good": 7, "poor": 2}, issued=10),
                                actor=CAST.organizer, replace=True)
    campaign.close_vote("b", actor=CAST.organizer)
    campaign.fire("b", "comment", actor=CAST.superior, text="工作扎实")
    campaign.fire("b", "comment", actor=CAST.superior, text="工作较扎实", reason="措辞修改")
    campaign.fire("b", "comment", actor=CAST.delegate, text="成效明显")
    campaign.fire("b", "finish_evaluation", actor=CAST.organizer)
    # c: typed counts, through to closed
    drive_to(campaign, "c", rf.Stage.CLOSED, cast=CAST, clock=clock)
    campaign.publish(actor=CAST.organizer, scope="全局党员干部", case_ids=["b", "c"])
    # d: an extension and the sweep's reminders while drafting
    clock.set(pendulum.datetime(2016, 1, 5, 9, tz=TZ))
    drive_to(campaign, "d", rf.Stage.DRAFTING, cast=CAST, clock=clock)
    campaign.sweep(pendulum.datetime(2016, 1, 14, 9, tz=TZ))
    campaign.extend("d", rf.Stage.DRAFTING, pendulum.datetime(2016, 1, 25, 18, tz=TZ),
                    "病假", CAST.organizer)
    campaign.sweep(pendulum.datetime(2016, 1, 22, 9, tz=TZ))

    events = {r.event for cid in "abcd" for r in campaign.store.history(campaign.id, cid)}
    assert {"open", "return_for_revision", "issue_ballots", "enter_paper_counts", "close_vote",
            "revote", "finish_evaluation", "publish_results", "feedback", "extend",
            "deadline_rung", "hold_talk", "submit_special_report"} <= events
    for cid in "abcd":
        assert _replayed(campaign, cid) == _stored(campaign, cid), cid
    report = campaign.verify()
    assert report.ok, str(report)


def test_a_stored_field_the_events_do_not_give_is_reported() -> None:
    campaign = rf.Campaign(rf.Policy.default(year=2016),
                           clock=rf.FrozenClock(pendulum.datetime(2016, 1, 4, 9, tz=TZ)))
    campaign.open_case("s1", organization="一中党支部", secretary=CAST.secretary("s1"))
    case = campaign.case("s1")
    case.data["extra"] = {"note": "added"}
    from reviewflow.store import memory

    campaign.store._campaigns[campaign.id].cases["s1"] = memory._snapshot(case)  # type: ignore[attr-defined]
    problems = campaign.verify().problems
    assert [(p.case_id, p.field, p.expected, p.found) for p in problems] == [
        ("s1", "data.extra", None, {"note": "added"})]
    assert "stored data.extra is {'note': 'added'} but the events give (absent)" in str(problems[0])
