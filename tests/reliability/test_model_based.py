"""One state machine over the engine's commands, checked against a simple model, on every store.

Hypothesis drives a campaign with random commands: every event fired by every kind
of actor with valid or invalid data, batches (``fire_many``), new cases, clock moves
(including exactly to the deadline boundaries), and the deadline sweep when the
engine offers ``Campaign.sweep``. Beside it runs a model written here from the
seed's rules (not from the engine's code): per case, the stage and version it must
have, the signatures, the comments, and which command must succeed.

Checked after every command: the engine succeeded exactly when the model says it
must; the case's stage and version equal the model's; the version equals the number
of events; a refused command changed nothing. At the end of each example: every case
equals the model, ``campaign.verify()`` is clean, and the refusal journal holds one
entry per refused command.

Every example starts from a clean campaign (a fresh campaign id in a shared store).
CI form: 200 examples per backend (memory with up to 30 steps each, SQL stores with
up to 6: a SQL step costs 10-25 ms here). Long form (``REVIEWFLOW_LONG=1``): 10,000
examples per backend.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import attrs
import pendulum
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

import reviewflow as rf
from reviewflow.audit import verify_chain
from reviewflow.store.base import Store
from reviewflow.testing import valid_data

TZ = "Asia/Shanghai"
POLICY = rf.Policy.default(year=2016)
START = pendulum.datetime(2016, 1, 4, 9, tz=TZ)
#: The seed's 2016 times, written here from the plan, not read from the policy object.
REPORT_DUE = pendulum.datetime(2016, 1, 18, tz=TZ)  # hard: submit_report refused after it
MEETING_OPENS = pendulum.datetime(2016, 1, 11, tz=TZ)  # hold_meeting refused before it
APPROVAL_DUE = pendulum.datetime(2016, 1, 25, tz=TZ)  # soft
#: The report ladder (reminders 3 and 1 working days before the due time, at 09:00;
#: escalation at it): the rungs fire while a case is in drafting, each once.
RUNGS = (
    ("remind-3wd", pendulum.datetime(2016, 1, 13, 9, tz=TZ)),
    ("remind-1wd", pendulum.datetime(2016, 1, 15, 9, tz=TZ)),
    ("escalate-at-due", REPORT_DUE),
)
BOUNDARIES = [
    t.add(microseconds=d)
    for t in (MEETING_OPENS, REPORT_DUE, APPROVAL_DUE, RUNGS[0][1], RUNGS[1][1]) for d in (-1, 0, 1)
]
END = pendulum.datetime(2016, 2, 20, tz=TZ)

S = rf.Stage
#: event -> (source stage, destination stage; None = stays), from the seed's plan.
GRAPH: dict[str, tuple[rf.Stage, rf.Stage | None]] = {
    "finish_research": (S.RESEARCH, S.DRAFTING),
    "submit_report": (S.DRAFTING, S.APPROVAL),
    "sign_off": (S.APPROVAL, None),  # to the meeting after the second level
    "return_for_revision": (S.APPROVAL, S.DRAFTING),
    "hold_meeting": (S.MEETING, S.EVALUATION),
    "comment": (S.EVALUATION, None),
    "record_vote": (S.EVALUATION, None),
    "finish_evaluation": (S.EVALUATION, S.GROUP_TALK),
    "hold_talk": (S.GROUP_TALK, S.REPORT_BACK),
    "submit_special_report": (S.REPORT_BACK, S.CLOSED),
}
ROLES: dict[str, set[str]] = {
    "finish_research": {"organizer"},
    "submit_report": {"secretary"},
    "sign_off": {"guidance_group", "organizer"},
    "return_for_revision": {"guidance_group", "organizer"},
    "hold_meeting": {"organizer", "secretary"},
    "comment": {"superior_secretary", "department_delegate"},
    "record_vote": {"organizer", "scrutineer"},
    "finish_evaluation": {"organizer"},
    "hold_talk": {"superior_secretary", "organizer"},
    "submit_special_report": {"secretary", "party_office"},
}
#: The two approval levels: who signs each.
LEVELS = ({"guidance_group"}, {"organizer"})
EVENTS = [*GRAPH, "no_such_event"]
VALID: dict[str, dict[str, Any]] = {event: valid_data(event) for event in GRAPH}
ALL_ROLES = {"organizer", "guidance_group", "superior_secretary", "department_delegate",
             "party_office", "scrutineer"}
STAFF = (
    rf.Actor("bureau", "局党组", roles={"organizer"}),
    rf.Actor("li", "李四", roles={"guidance_group"}),
    rf.Actor("liu", "刘五", roles={"guidance_group"}),
    rf.Actor("wang", "王书记", roles={"superior_secretary"}),
    rf.Actor("zhao", "赵部长", roles={"department_delegate"}),
    rf.Actor("office", "机关党委办公室", roles={"party_office"}),
    rf.Actor("scr", "计票人", roles={"scrutineer"}),
    rf.Actor("nobody", "路人", roles=set()),
    rf.Actor("chief", "多职务", roles=ALL_ROLES),
)
CASE_IDS = ("a", "b", "c", "d", "e")


def secretary(case_id: str) -> rf.Actor:
    """Return the secretary of a case in this model (one person per case)."""
    return rf.Actor(f"sec-{case_id}", f"书记{case_id}", roles={"secretary"})


@attrs.define
class ModelCase:
    """What the model knows of one case."""

    stage: rf.Stage = S.RESEARCH
    version: int = 1
    signatures: list[str] = attrs.Factory(list)
    channels: set[str] = attrs.Factory(set)
    refusals: int = 0
    rungs: set[str] = attrs.Factory(set)


def expected(case_id: str, m: ModelCase, event: str, actor: rf.Actor, valid: bool,
             now: pendulum.DateTime) -> tuple[bool, str | None]:
    """Return (must succeed, comment channel) for a command, by the seed's rules."""
    if event not in GRAPH or not valid:
        return False, None
    source, _dest = GRAPH[event]
    if m.stage is not source:
        return False, None
    roles = set(actor.roles)
    if actor.id != secretary(case_id).id:
        roles.discard("secretary")
    held = roles & ROLES[event]
    if not held or (actor.id == secretary(case_id).id and event in ("sign_off", "return_for_revision")):
        return False, None
    if event == "sign_off":
        level = LEVELS[len(m.signatures)]
        if not held & level or actor.id in m.signatures:
            return False, None
    if event == "submit_report" and now > REPORT_DUE:
        return False, None
    if event == "hold_meeting" and now < MEETING_OPENS:
        return False, None
    if event == "finish_evaluation" and m.channels != {"superior_secretary", "department_delegate"}:
        return False, None
    if event == "comment" and min(held) in m.channels:
        return False, None  # a second comment is an amendment: it needs a reason
    return True, min(held) if event == "comment" else None


def advance(m: ModelCase, event: str, actor: rf.Actor, channel: str | None) -> None:
    """Apply a successful command to the model."""
    m.version += 1
    dest = GRAPH[event][1]
    if event == "sign_off":
        m.signatures.append(actor.id)
        if len(m.signatures) == len(LEVELS):
            dest = S.MEETING
    elif event in ("submit_report", "return_for_revision"):
        m.signatures = []
    elif event == "comment":
        assert channel is not None
        m.channels.add(channel)
    if dest is not None:
        m.stage = dest


def sweep_supported(store: Store) -> bool:
    """True when the engine has ``Campaign.sweep`` and ``store`` keeps the sweep's rows."""
    if not hasattr(rf.Campaign, "sweep"):
        return False
    from reviewflow.store.parts import DeadlineIndex
    from reviewflow.store.rows import RungMark

    if isinstance(store, (rf.MemoryStore, DeadlineIndex)):
        return True
    from reviewflow.store import sql

    return RungMark in getattr(sql, "_EXTRA_WRITERS", {})


def attempt(call: Callable[..., rf.Case], *args: Any, **kwargs: Any,
            ) -> tuple[rf.Case | None, rf.TransitionRefused | None]:
    """Run a command; return (the case after it, None) or (None, the refusal)."""
    try:
        return call(*args, **kwargs), None
    except rf.TransitionRefused as exc:
        return None, exc


def happy(case_id: str, m: ModelCase) -> tuple[str, rf.Actor] | None:
    """Return the next step of the seed's happy path for a case, or None once closed."""
    bureau, li, _liu, wang, zhao = STAFF[:5]
    if m.stage is S.APPROVAL:
        return "sign_off", li if not m.signatures else bureau
    if m.stage is S.EVALUATION:
        if "superior_secretary" not in m.channels:
            return "comment", wang
        if "department_delegate" not in m.channels:
            return "comment", zhao
        return "finish_evaluation", bureau
    return {
        S.RESEARCH: ("finish_research", bureau),
        S.DRAFTING: ("submit_report", secretary(case_id)),
        S.MEETING: ("hold_meeting", bureau),
        S.GROUP_TALK: ("hold_talk", wang),
        S.REPORT_BACK: ("submit_special_report", secretary(case_id)),
    }.get(m.stage)


class CampaignMachine(RuleBasedStateMachine):
    """The engine on one store, beside the model."""

    store: Store
    stats: dict[str, int]
    policy: rf.Policy = POLICY

    def __init__(self) -> None:
        super().__init__()
        self.clock = rf.FrozenClock(START)
        self.campaign = rf.Campaign(self.policy, clock=self.clock, store=self.store,
                                    campaign_id=f"mbt-{secrets.token_hex(6)}")
        self.model: dict[str, ModelCase] = {}
        self.actors: list[rf.Actor] = list(STAFF)
        self.campaign.open_cases([
            {"case_id": c, "organization": f"{c}支部", "secretary": secretary(c)}
            for c in CASE_IDS[:2]
        ])
        for c in CASE_IDS[:2]:
            self.model[c] = ModelCase()
        self.stats["examples"] += 1
        self.sweeps = sweep_supported(self.store)

    # -- checks

    def check_case(self, case_id: str) -> None:
        """The stored case equals the model; its history has one event per version."""
        m = self.model[case_id]
        case = self.campaign.case(case_id)
        history = self.campaign.store.history(self.campaign.id, case_id)
        assert (case.stage, case.version) == (m.stage, m.version), case_id
        assert len(history) == case.version
        assert not verify_chain(case_id, history, expected_version=case.version,
                                expected_hash=case.last_hash)

    # -- rules

    @rule(data=st.data(), valid=st.booleans())
    def fire(self, data: st.DataObject, valid: bool) -> None:
        case_id = data.draw(st.sampled_from(sorted(self.model)), label="case")
        here = [e for e, (source, _d) in GRAPH.items() if source is self.model[case_id].stage]
        event = data.draw(st.sampled_from(here) | st.sampled_from(EVENTS) if here
                          else st.sampled_from(EVENTS), label="event")
        actor = data.draw(st.sampled_from([*self.actors, *map(secretary, sorted(self.model))]),
                          label="actor")
        m = self.model[case_id]
        before = self.campaign.case(case_id).to_json()
        must, channel = expected(case_id, m, event, actor, valid, self.clock.now())
        payload = dict(VALID.get(event, {})) if valid else {"bogus": 1}
        after, refused = attempt(self.campaign.fire, case_id, event, actor=actor, **payload)
        if refused is not None:
            assert not must, f"{event} by {actor.id} on {case_id} refused: {refused}"
            assert self.campaign.case(case_id).to_json() == before
            if event in GRAPH:
                m.refusals += 1
            self.stats["refused"] += 1
            return
        assert must, f"{event} by {actor.id} on {case_id} in {m.stage} must be refused"
        assert after is not None
        assert after.version == before["version"] + 1
        advance(m, event, actor, channel)
        self.stats["succeeded"] += 1
        self.check_case(case_id)

    @rule(event=st.sampled_from(list(GRAPH)), data=st.data())
    def fire_many(self, event: str, data: st.DataObject) -> None:
        actor = data.draw(st.sampled_from(self.actors), label="actor")
        ids = sorted(self.model)
        now = self.clock.now()
        musts = {c: expected(c, self.model[c], event, actor, True, now) for c in ids}
        results = self.campaign.fire_many(ids, event, actor=actor, **VALID[event])
        for result in results:
            must, channel = musts[result.case_id]
            assert result.ok == must, (event, actor.id, result.case_id, result.error)
            m = self.model[result.case_id]
            if result.ok:
                advance(m, event, actor, channel)
                self.stats["succeeded"] += 1
            else:
                assert isinstance(result.error, rf.TransitionRefused)
                m.refusals += 1
                self.stats["refused"] += 1
        for case_id in ids:
            self.check_case(case_id)

    @rule(data=st.data(), steps=st.integers(1, 10))
    def progress(self, data: st.DataObject, steps: int) -> None:
        """Take up to ``steps`` happy-path steps on a case (so that runs reach late stages)."""
        case_id = data.draw(st.sampled_from(sorted(self.model)), label="case")
        m = self.model[case_id]
        for _ in range(steps):
            nxt = happy(case_id, m)
            if nxt is None:
                return
            event, actor = nxt
            must, channel = expected(case_id, m, event, actor, True, self.clock.now())
            _after, refused = attempt(self.campaign.fire, case_id, event, actor=actor,
                                      **VALID[event])
            if refused is not None:
                assert not must, f"{event} by {actor.id} on {case_id} refused: {refused}"
                m.refusals += 1
                self.stats["refused"] += 1
                return
            assert must, f"{event} by {actor.id} on {case_id} in {m.stage} must be refused"
            advance(m, event, actor, channel)
            self.stats["succeeded"] += 1
        self.check_case(case_id)

    @precondition(lambda self: len(self.model) < len(CASE_IDS))
    @rule()
    def open_case(self) -> None:
        case_id = CASE_IDS[len(self.model)]
        case = self.campaign.open_case(case_id, organization=f"{case_id}支部",
                                       secretary=secretary(case_id))
        assert (case.stage, case.version) == (S.RESEARCH, 1)
        self.model[case_id] = ModelCase()

    @rule(days=st.integers(0, 6), hours=st.integers(0, 23))
    def move_clock(self, days: int, hours: int) -> None:
        if self.clock.now() < END:
            self.clock.advance(days=days, hours=hours)

    @rule(to=st.sampled_from(BOUNDARIES))
    def clock_to_boundary(self, to: pendulum.DateTime) -> None:
        """Move the clock exactly to a deadline, or one microsecond either side of it."""
        if to > self.clock.now():
            self.clock.set(to)

    @precondition(lambda self: self.sweeps)
    @rule()
    def sweep(self) -> None:
        """Run the deadline sweep: exactly the due, unfired rungs of drafting cases fire."""
        now = self.clock.now()
        due = {
            case_id: [rung for rung, at in RUNGS if at <= now and rung not in m.rungs]
            for case_id, m in self.model.items() if m.stage is S.DRAFTING
        }
        result = self.campaign.sweep()
        assert not result.failed, result.failed
        fired: dict[str, list[str]] = {}
        for f in result.fired:
            fired.setdefault(f.case_id, []).append(f.rung.id)
        assert fired == {c: r for c, r in due.items() if r}, (fired, due)
        for case_id, rungs in fired.items():
            m = self.model[case_id]
            m.rungs |= set(rungs)
            m.version += len(rungs)
            self.stats["rungs"] += len(rungs)
            self.check_case(case_id)

    def teardown(self) -> None:
        report = self.campaign.verify()
        assert report.ok, report
        assert report.cases == len(self.model)
        journal: dict[str, int] = {}
        for refusal in self.campaign.refusals():
            journal[refusal.case_id] = journal.get(refusal.case_id, 0) + 1
        for case_id, m in self.model.items():
            case = self.campaign.case(case_id)
            assert (case.stage, case.version) == (m.stage, m.version)
            assert journal.get(case_id, 0) == m.refusals, case_id
            self.stats["deepest"] = max(self.stats["deepest"], case.stage.order)
        self.stats["steps"] += sum(m.version - 1 + m.refusals - len(m.rungs)
                                   for m in self.model.values())


#: (examples, steps per example) per backend: CI form, long form.
BUDGET = {
    "memory": ((200, 30), (10_000, 50)),
    "sqlite": ((200, 6), (10_000, 30)),
    "postgresql": ((200, 6), (10_000, 30)),
    "mysql": ((200, 6), (10_000, 30)),
}


def run_machine(store: Store, examples: int, steps: int, policy: rf.Policy = POLICY, *,
                shrink: bool = True, derandomize: bool = False) -> dict[str, Any]:
    """Run the machine on ``store``; return its figures."""
    stats = {"examples": 0, "succeeded": 0, "refused": 0, "steps": 0, "deepest": 0, "rungs": 0}
    machine: Callable[[], CampaignMachine] = type(
        "Machine", (CampaignMachine,), {"store": store, "stats": stats, "policy": policy},
    )
    started = time.perf_counter()
    run_state_machine_as_test(machine, settings=settings(
        max_examples=examples, stateful_step_count=steps, deadline=None, database=None,
        suppress_health_check=list(HealthCheck),
        phases=list(Phase) if shrink else [Phase.explicit, Phase.generate],
        derandomize=derandomize,
    ))
    stats["seconds"] = round(time.perf_counter() - started, 1)
    return stats


@pytest.mark.parametrize("kind", list(BUDGET))
def test_engine_matches_the_model(kind: str, make_store: Any, figure: Any) -> None:
    examples, steps = BUDGET[kind][0]
    stats = run_machine(make_store(kind), examples, steps)
    figure(backend=kind, max_steps=steps, sweep=sweep_supported(make_store(kind)), **stats)
    assert stats["examples"] >= examples // 2  # Hypothesis ran the machine in earnest
    assert stats["succeeded"] > 0
    assert stats["refused"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(BUDGET))
def test_engine_matches_the_model_long(kind: str, make_store: Any, figure: Any,
                                       require_long: None) -> None:
    examples, steps = BUDGET[kind][1]
    stats = run_machine(make_store(kind), examples, steps)
    figure(backend=kind, max_steps=steps, **stats)
    assert stats["examples"] >= examples // 2


def test_the_machine_catches_a_mutant_policy() -> None:
    """Negative control: an engine that lets the party office finish the research is caught."""
    permissions = dict(POLICY.permissions)
    permissions["finish_research"] = frozenset({"organizer", "party_office"})
    mutant = attrs.evolve(POLICY, permissions=permissions)
    with pytest.raises(AssertionError):
        run_machine(rf.MemoryStore(), 200, 30, mutant, shrink=False, derandomize=True)


def test_the_model_sees_a_wrong_stage() -> None:
    """Negative control: a case whose stored stage is not the model's fails the check."""
    store = rf.MemoryStore()
    machine = type("Machine", (CampaignMachine,),
                   {"store": store, "stats": {"examples": 0}})()
    machine.model["a"].stage = S.DRAFTING
    with pytest.raises(AssertionError):
        machine.check_case("a")


def test_random_commands_reach_every_stage() -> None:
    """The model's happy path drives a case to the end (the machine can get deep)."""
    store = rf.MemoryStore()
    machine = type("Machine", (CampaignMachine,), {"store": store, "stats": {"examples": 0}})()
    plan = [
        ("finish_research", STAFF[0]), ("submit_report", secretary("a")), ("sign_off", STAFF[1]),
        ("sign_off", STAFF[0]), ("hold_meeting", STAFF[0]), ("comment", STAFF[3]),
        ("comment", STAFF[4]), ("finish_evaluation", STAFF[0]), ("hold_talk", STAFF[3]),
        ("submit_special_report", secretary("a")),
    ]
    for event, actor in plan:
        if event == "hold_meeting":
            machine.clock.set(MEETING_OPENS)
        must, channel = expected("a", machine.model["a"], event, actor, True, machine.clock.now())
        assert must, event
        machine.campaign.fire("a", event, actor=actor, **VALID[event])
        advance(machine.model["a"], event, actor, channel)
        machine.check_case("a")
    assert machine.model["a"].stage is S.CLOSED
