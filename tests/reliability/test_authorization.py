"""The authorization matrix: every role x every event x every stage.

For each stage (approval twice: before and after the first signature), each event of
the lifecycle (and the deadline extension), and each kind of actor (one per role, the
case's own secretary, another case's secretary, someone with no role), the event is
fired with valid data on a case in that stage. Who may do what is written here from
the seed's plan, not read from the engine:

* 0 unauthorized successes: a step succeeds only for an actor whose role the plan
  permits (``secretary`` only on their own case; each approval level only for its
  role; nobody signs their own report or the same report twice);
* every refusal, whatever its reason, is in the refusal journal exactly once, with the
  case, the event, the actor, the roles and the reason.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pendulum
import pytest

import reviewflow as rf
from reviewflow.policy import EVENTS
from reviewflow.testing import Cast, drive_to, valid_data

TZ = "Asia/Shanghai"
CAST = Cast.default()
S = rf.Stage

#: event -> the roles the seed's plan lets fire it.
PLAN: dict[str, set[str]] = {
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
    "extend": {"organizer"},
}
SOURCE = {
    "finish_research": S.RESEARCH, "submit_report": S.DRAFTING, "sign_off": S.APPROVAL,
    "return_for_revision": S.APPROVAL, "hold_meeting": S.MEETING, "comment": S.EVALUATION,
    "record_vote": S.EVALUATION, "finish_evaluation": S.EVALUATION, "hold_talk": S.GROUP_TALK,
    "submit_special_report": S.REPORT_BACK,
}
DATA: dict[str, dict[str, Any]] = {event: valid_data(event) for event, *_ in EVENTS}
ROLES = ("organizer", "guidance_group", "superior_secretary", "department_delegate",
         "party_office", "scrutineer")
#: (state name, stage, approval signatures already given)
STATES = [(s.value, s, 0) for s in S] + [("approval+1", S.APPROVAL, 1)]


def actors(case_id: str) -> list[tuple[str, rf.Actor]]:
    """Return one actor per kind, named by the kind."""
    out = [(role, rf.Actor(f"a-{role}", role, roles={role})) for role in ROLES]
    out.append(("own_secretary", CAST.secretary(case_id)))
    out.append(("other_secretary", rf.Actor("sec-elsewhere", "他人书记", roles={"secretary"})))
    out.append(("no_role", rf.Actor("a-none", "路人", roles=set())))
    return out


def authorized(event: str, kind: str, stage: rf.Stage, signatures: int) -> bool:
    """Whether the plan lets this kind of actor fire the event now (stage and role)."""
    if event == "extend":
        return kind == "organizer" and stage is not S.CLOSED
    if SOURCE[event] is not stage:
        return False
    role = "secretary" if kind == "own_secretary" else kind
    if role not in PLAN[event]:
        return False
    if event == "sign_off":
        return role == ("guidance_group", "organizer")[signatures]
    return True


class Matrix:
    """Cases in every state, replaced whenever a step moves one on."""

    def __init__(self, store: rf.Store, campaign_id: str) -> None:
        self.clock = rf.FrozenClock(pendulum.datetime(2016, 1, 4, 9, tz=TZ))
        self.campaign = rf.Campaign(rf.Policy.default(year=2016), clock=self.clock, store=store,
                                    campaign_id=campaign_id)
        self.n = 0

    def case_in(self, stage: rf.Stage, signatures: int) -> str:
        """Open a new case and drive it to ``stage`` (with that many signatures)."""
        self.n += 1
        case_id = f"m{self.n}"
        self.clock.set(pendulum.datetime(2016, 1, 4, 9, tz=TZ))
        self.campaign.open_case(case_id, organization=f"{case_id}支部",
                                secretary=CAST.secretary(case_id))
        drive_to(self.campaign, case_id, stage, cast=CAST, clock=self.clock)
        if signatures:
            self.campaign.fire(case_id, "sign_off", actor=CAST.reviewers[0], comment="同意")
        # between the meeting's opening and the report deadline: no time rule refuses
        self.clock.set(pendulum.datetime(2016, 1, 12, 10, tz=TZ))
        return case_id

    def fire(self, case_id: str, event: str, actor: rf.Actor) -> rf.Case:
        """Fire one event (``extend`` through the deadline operations)."""
        if event == "extend":
            extend = getattr(self.campaign, "extend", None)
            stage = self.campaign.case(case_id).stage
            until = pendulum.datetime(2016, 3, 1, tz=TZ)
            if extend is not None:
                result: rf.Case = extend(case_id, stage, until, reason="因故延期", actor=actor)
                return result
            return self.campaign.extend(case_id, stage, until, "因故延期", actor)
        return self.campaign.fire(case_id, event, actor=actor, **DATA[event])


def run_matrix(store: rf.Store, campaign_id: str) -> dict[str, Any]:
    """Fire every event by every kind of actor in every state; return the figures."""
    m = Matrix(store, campaign_id)
    tried = unauthorized_successes = authorized_successes = 0
    expected_journal: list[tuple[str, str, str, tuple[str, ...], str]] = []
    reasons: Counter[str] = Counter()
    for name, stage, signatures in STATES:
        case_id = m.case_in(stage, signatures)
        for event in PLAN:
            for index in range(len(actors("x"))):
                kind, actor = actors(case_id)[index]  # the own secretary of the current case
                tried += 1
                before = m.campaign.case(case_id).version
                try:
                    m.fire(case_id, event, actor)
                except rf.TransitionRefused as exc:
                    reasons[exc.reason] += 1
                    expected_journal.append(
                        (case_id, event, actor.id, tuple(sorted(actor.roles)), exc.reason))
                    assert m.campaign.case(case_id).version == before, (name, event, kind)
                    continue
                if authorized(event, kind, stage, signatures):
                    authorized_successes += 1
                else:
                    unauthorized_successes += 1
                    print(f"UNAUTHORIZED: {kind} fired {event} in {name}")
                case_id = m.case_in(stage, signatures)  # the step moved it on: a fresh one
    journal = [(r.case_id, r.event, r.actor_id, r.roles, r.reason) for r in m.campaign.refusals()]
    missing = Counter(expected_journal) - Counter(journal)
    # the journal holds exactly the refusals, in order (drive_to refuses nothing)
    assert journal == expected_journal or missing
    assert m.campaign.verify().ok
    return {
        "states": len(STATES), "events": len(PLAN), "actor_kinds": len(actors("x")),
        "tried": tried, "authorized_successes": authorized_successes,
        "unauthorized_successes": unauthorized_successes, "refusals": len(expected_journal),
        "journal_entries": len(journal), "refusals_not_journaled": sum(missing.values()),
        "reasons": dict(reasons),
    }


@pytest.mark.parametrize("kind", ["memory", "sqlite-normal"])
def test_every_role_event_stage(kind: str, make_store: Any, new_id: Any, figure: Any) -> None:
    figures = run_matrix(make_store(kind), new_id("authz"))
    figure(backend=kind, **figures)
    assert figures["tried"] == len(STATES) * len(PLAN) * 9
    assert figures["unauthorized_successes"] == 0
    assert figures["refusals_not_journaled"] == 0
    assert figures["journal_entries"] == figures["refusals"]
    # every authorized step with complete data went through (finish_evaluation lacks comments)
    assert figures["authorized_successes"] >= 14
    assert {"wrong_stage", "not_permitted", "self_sign_off"} <= set(figures["reasons"])


def test_batch_denials_are_journaled_each(make_store: Any, new_id: Any) -> None:
    """``fire_many`` by someone without the role: every case refused, each refusal journaled."""
    m = Matrix(make_store("memory"), new_id("authz"))
    ids = [m.case_in(S.RESEARCH, 0) for _ in range(5)]
    intruder = rf.Actor("a-none", "路人", roles={"party_office"})
    results = m.campaign.fire_many(ids, "finish_research", actor=intruder, **DATA["finish_research"])
    assert [r.ok for r in results] == [False] * 5
    journal = m.campaign.refusals()
    assert [(r.case_id, r.reason) for r in journal] == [(c, "not_permitted") for c in ids]


def test_a_secretary_cannot_act_for_another_case(make_store: Any, new_id: Any) -> None:
    m = Matrix(make_store("memory"), new_id("authz"))
    mine, theirs = m.case_in(S.DRAFTING, 0), m.case_in(S.DRAFTING, 0)
    with pytest.raises(rf.TransitionRefused) as refused:
        m.campaign.fire(theirs, "submit_report", actor=CAST.secretary(mine), **DATA["submit_report"])
    assert refused.value.reason == "not_permitted"
    assert m.campaign.case(theirs).stage is S.DRAFTING
