"""Random event sequences by random actors keep the engine's invariants.

Invariants after every command: the stage is the one the history leads to; a
refused command changed nothing; version equals the number of events; the hash
chain verifies.
"""

from __future__ import annotations

from typing import Any

import pendulum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import reviewflow as rf
from reviewflow.policy import EVENTS
from reviewflow.testing import Cast, _step, valid_data

CAST = Cast.default()
CASES = ("a", "b", "c")
ACTORS = (
    CAST.organizer, CAST.reviewers[0], CAST.superior, CAST.delegate, CAST.office,
    rf.Actor("liu", "刘", roles={"guidance_group"}),
    rf.Actor("scr", "计票人", roles={"scrutineer"}),
    rf.Actor("nobody", "路人", roles=set()),
    *(CAST.secretary(c) for c in CASES),
)
EVENT_NAMES = [e[0] for e in EVENTS] + ["no_such_event"]


def data_for(event: str, valid: bool) -> dict[str, Any]:
    if not valid:
        return {"problems": []} if event == "finish_research" else {"bogus": 1}
    return valid_data(event)


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = rf.FrozenClock(pendulum.datetime(2016, 1, 4, 9, tz="Asia/Shanghai"))
        self.campaign = rf.Campaign(rf.Policy.default(year=2016), clock=self.clock)
        for case_id in CASES:
            self.campaign.open_case(case_id, organization=f"{case_id}支部",
                                    secretary=CAST.secretary(case_id))
        self.steps = 0
        self.deepest = 0

    @rule(case_id=st.sampled_from(CASES), event=st.sampled_from(EVENT_NAMES),
          actor=st.sampled_from(ACTORS), valid=st.booleans())
    def fire(self, case_id: str, event: str, actor: rf.Actor, valid: bool) -> None:
        before = self.campaign.case(case_id).to_json()
        try:
            after = self.campaign.fire(case_id, event, actor=actor, **data_for(event, valid))
        except rf.TransitionRefused as exc:
            refusal = exc
        else:
            assert before["version"] + 1 == after.version
            self.steps += 1
            return
        assert refusal.reason
        assert before == self.campaign.case(case_id).to_json()

    @rule(case_id=st.sampled_from(CASES))
    def progress(self, case_id: str) -> None:
        """Take the next happy-path step, so that random runs reach the later stages."""
        case = self.campaign.case(case_id)
        if case.stage is rf.Stage.CLOSED:
            return
        try:
            after = _step(self.campaign, case, CAST, self.clock)
        except rf.TransitionRefused as exc:
            refusal = exc
        else:
            assert case.version + 1 == after.version
            self.deepest = max(self.deepest, after.stage.order)
            return
        assert refusal.reason in {"deadline_passed", "too_early", "invalid_data"}

    @rule(event=st.sampled_from(EVENT_NAMES), actor=st.sampled_from(ACTORS))
    def fire_many(self, event: str, actor: rf.Actor) -> None:
        before = {c: self.campaign.case(c).to_json() for c in CASES}
        results = self.campaign.fire_many(CASES, event, actor=actor, **data_for(event, True))
        for result in results:
            now = self.campaign.case(result.case_id).to_json()
            if result.ok:
                assert before[result.case_id]["version"] + 1 == now["version"]
            else:
                assert before[result.case_id] == now

    @precondition(lambda self: self.clock.now() < pendulum.datetime(2016, 2, 10, tz="Asia/Shanghai"))
    @rule(days=st.integers(min_value=0, max_value=6), hours=st.integers(min_value=0, max_value=23))
    def advance(self, days: int, hours: int) -> None:
        self.clock.advance(days=days, hours=hours)

    @invariant()
    def stage_follows_history(self) -> None:
        for case in self.campaign.cases():
            history = case.history
            assert case.version == len(history)
            assert case.stage.value == history[-1].to_stage
            previous = None
            for record in history:
                assert record.from_stage == previous
                previous = record.to_stage

    @invariant()
    def chain_verifies(self) -> None:
        assert self.campaign.verify().ok


TestLifecycleMachine = LifecycleMachine.TestCase
TestLifecycleMachine.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_random_runs_reach_the_closed_stage() -> None:
    """The progress rule is strong enough for the machine to explore every stage."""
    machine = LifecycleMachine()
    for _ in range(40):
        for case_id in CASES:
            machine.progress(case_id)
    assert rf.Stage.CLOSED.order == machine.deepest
