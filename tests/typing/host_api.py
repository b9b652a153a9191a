"""The public API as a host uses it, checked by mypy (``mypy`` runs this file; see pyproject).

Each ``assert_type`` states what a call returns; a return that turns into ``Any`` (or
changes type) fails the type check. The functions are never called: the behaviour is
tested elsewhere, this file holds the types.
"""

from __future__ import annotations

from typing import assert_type

import pendulum

import reviewflow as rf

# The deadline results have no public name yet; hosts read them by attribute.
from reviewflow._engine.deadline_results import DueExplanation, Forecast, SweepResult
from reviewflow.ballots import CloseResult, IssuedToken
from reviewflow.typing import (
    BallotBox,
    CampaignView,
    CaseOpenedHook,
    DeadlineIndex,
    DeadlineRungHook,
    RefusedHook,
    ResultsPublishedHook,
    StepHook,
    Store,
)


class Plugin:
    """A host's plugin, typed with the public protocols."""

    @rf.hookimpl
    def reviewflow_case_opened(self, campaign: CampaignView, case: rf.Case) -> None:
        assert_type(campaign.id, str)

    @rf.hookimpl
    def reviewflow_step(self, campaign: CampaignView, case: rf.Case, record: rf.EventRecord
                        ) -> None:
        assert_type(campaign.case(record.case_id), rf.Case)
        assert_type(campaign.policy, rf.Policy)

    @rf.hookimpl
    def reviewflow_refused(self, campaign: CampaignView, case_id: str, event: str,
                           actor: rf.Actor, error: rf.TransitionRefused) -> None:
        assert_type(error.reason, str)

    @rf.hookimpl
    def reviewflow_deadline_rung(self, campaign: CampaignView, case: rf.Case, stage: rf.Stage,
                                 rung: rf.Rung, due: pendulum.DateTime,
                                 record: rf.EventRecord) -> None:
        assert_type(campaign.due(case, stage), pendulum.DateTime | None)

    @rf.hookimpl
    def reviewflow_results_published(self, campaign: CampaignView,
                                     results: list[rf.CaseResult], scope: str) -> None:
        assert_type(campaign.results([r.case_id for r in results]), list[rf.CaseResult])


def hooks_match_their_protocols(plugin: Plugin) -> None:
    opened: CaseOpenedHook = plugin.reviewflow_case_opened
    step: StepHook = plugin.reviewflow_step
    refused: RefusedHook = plugin.reviewflow_refused
    rung: DeadlineRungHook = plugin.reviewflow_deadline_rung
    published: ResultsPublishedHook = plugin.reviewflow_results_published
    del opened, step, refused, rung, published


def host(organizer: rf.Actor, secretary: rf.Actor, scrutineer: rf.Actor) -> None:
    policy = rf.Policy.default(year=2016)
    assert_type(policy, rf.Policy)
    assert_type(rf.load_policy("policy.toml"), rf.Policy)
    assert_type(rf.policy_to_toml(policy), str)
    clock = rf.FrozenClock(pendulum.datetime(2016, 1, 4, 9, tz="Asia/Shanghai"))
    campaign = rf.Campaign(policy, clock=clock, plugins=[Plugin()])
    view: CampaignView = campaign  # the campaign is what hooks are told about
    assert_type(view.id, str)
    store: Store = campaign.store
    index: DeadlineIndex = campaign.store
    box: BallotBox = campaign.store.ballot_box(campaign.id)
    del store, index, box

    case = campaign.open_case("s1", organization="第一中学党支部", secretary=secretary)
    assert_type(case, rf.Case)
    assert_type(campaign.case("s1"), rf.Case)
    assert_type(campaign.cases(rf.Stage.RESEARCH), list[rf.Case])
    assert_type(campaign.fire("s1", "finish_research", actor=organizer, problems=["x"]),
                rf.Case)
    assert_type(campaign.fire_many(["s1"], "hold_meeting", actor=organizer),
                list[rf.FireResult])
    permissions = campaign.allowed("s1", secretary)
    assert_type(permissions, list[rf.Permission])
    assert_type(campaign.due(case, rf.Stage.DRAFTING), pendulum.DateTime | None)

    swept = campaign.sweep()
    assert_type(swept, SweepResult)
    assert_type([f.case_id for f in swept.fired], list[str])
    forecast = campaign.forecast(pendulum.datetime(2016, 1, 20, tz="Asia/Shanghai"))
    assert_type(forecast, Forecast)
    assert_type([o.due for o in forecast.overdue], list[pendulum.DateTime])
    explained = campaign.explain_due("s1", rf.Stage.DRAFTING)
    assert_type(explained, DueExplanation)
    assert_type(explained.steps, tuple[str, ...])
    assert_type(explained.state, rf.DueState)

    tokens = campaign.issue_ballot_tokens("s1", {"party_members": 3}, actor=scrutineer)
    assert_type(tokens, list[IssuedToken])
    assert_type(campaign.cast_ballot("s1", tokens[0].token, "satisfied"), str)
    assert_type(campaign.close_vote("s1", actor=scrutineer), CloseResult)
    assert_type(campaign.results(), list[rf.CaseResult])
    assert_type(campaign.results()[0].score, rf.ScoreResult)
    assert_type(campaign.publish(actor=organizer, scope="全局党员干部"), list[rf.CaseResult])

    assert_type(campaign.anchor(save=False), rf.Anchor)
    assert_type(campaign.verify(), rf.VerifyReport)
    assert_type(campaign.dispatch_pending(), int)
