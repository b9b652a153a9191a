"""Helpers for testing code that embeds reviewflow: actors, a passing report, and a driver
that moves a case to any stage with a frozen clock.

>>> import reviewflow as rf
>>> from reviewflow.testing import Cast, drive_to, seed_campaign
>>> campaign, clock = seed_campaign()
>>> cast = Cast.default()
>>> _ = campaign.open_case("s1", organization="第一中学党支部", secretary=cast.secretary("s1"))
>>> drive_to(campaign, "s1", rf.Stage.MEETING, cast=cast, clock=clock).stage
<Stage.MEETING: 'meeting'>
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
import pendulum

from reviewflow.campaign import Campaign
from reviewflow.clock import FrozenClock
from reviewflow.deadlines import Rung
from reviewflow.exceptions import TransitionRefused
from reviewflow.model import Actor, Case, EventRecord, Problem, Report, Stage
from reviewflow.policy import Policy
from reviewflow.scoring import CaseResult
from reviewflow.store.base import Store
from reviewflow.typing import CampaignView

__all__ = ["Cast", "HookRecorder", "drive_to", "passing_report", "seed_campaign", "valid_data"]


def seed_campaign(
    year: int = 2016, *, store: Store | str | None = None, policy: Policy | None = None,
    at: pendulum.DateTime | None = None,
) -> tuple[Campaign, FrozenClock]:
    """Return a campaign on the seed's default policy and the frozen clock it reads.

    The clock starts at 09:00 on 4 January of ``year`` (Asia/Shanghai), before
    the report deadline of 18 January.
    """
    clock = FrozenClock(at or pendulum.datetime(year, 1, 4, 9, tz="Asia/Shanghai"))
    return Campaign(policy or Policy.default(year=year), clock=clock, store=store), clock


@attrs.frozen
class Cast:
    """The people of a campaign, one per role (secretaries are made per case)."""

    organizer: Actor
    reviewers: tuple[Actor, ...]
    superior: Actor
    delegate: Actor
    office: Actor

    @classmethod
    def default(cls) -> Cast:
        """Return the seed's cast: the bureau, a guidance-group member, the two commenters."""
        return cls(
            organizer=Actor("bureau", "区教育局党组", roles={"organizer"}),
            reviewers=(Actor("li", "李四", roles={"guidance_group"}),),
            superior=Actor("wang", "王书记", roles={"superior_secretary"}),
            delegate=Actor("zhao", "赵部长", roles={"department_delegate"}),
            office=Actor("office", "局机关党委办公室", roles={"party_office"}),
        )

    def secretary(self, case_id: str) -> Actor:
        """Return the secretary of a case (one person per case)."""
        return Actor(f"sec-{case_id}", f"书记-{case_id}", roles={"secretary"})

    def signer(self, campaign: Campaign, case: Case) -> Actor:
        """Return someone who may sign the case's next approval level."""
        levels = campaign.policy.approval_levels
        level = levels[min(len(case.data.get("signatures", ())), len(levels) - 1)]
        if "organizer" in level.roles:
            return self.organizer
        for reviewer in self.reviewers:
            if reviewer.roles & level.roles:
                return reviewer
        return Actor(f"signer-{level.name}", level.label, roles=level.roles)


def passing_report(problems: Iterable[str] = ("组织生活不规范",), *,
                   rectified: dict[str, str] | None = None) -> Report:
    """Return a report that passes the seed's content rules (achievements under a third)."""
    return Report(
        duty="认真履行第一责任人职责，研究部署党建工作。",
        progress="全年开展主题党日十二次，发展党员三名。",
        problems=[
            Problem(description=p, causes="主观上重视不够，客观上人手不足。",
                    measure="建立月度督查台账，逐条整改销号。")
            for p in problems
        ],
        plans="坚持问题导向，针对查找出来的突出问题一条一条提出解决方案，"
              "工作措施有抓手、有载体、可监督、可考核，切实推动党建工作落地见效。" * 2,
        rectified=rectified or {},
    )


#: The seed's on-site vote used by :func:`drive_to`: scores 79.
SAMPLE_VOTE = {"good": 10, "fairly_good": 5, "average": 3, "poor": 2}


def valid_data(event: str) -> dict[str, Any]:
    """Return data that passes ``event``'s own checks (the rules of stage, role and time
    still apply); an empty dict for an event that needs none or is unknown."""
    samples: dict[str, dict[str, Any]] = {
        "finish_research": {"problems": ["组织生活不规范"]},
        "submit_report": {"report": passing_report()},
        "sign_off": {"comment": "同意"},
        "return_for_revision": {"reason": "问题查摆不深入"},
        "hold_meeting": {"attendance": {"party_members": 20}},
        "comment": {"text": "点评"},
        "record_vote": {"vote": SAMPLE_VOTE},
        "finish_evaluation": {"vote": SAMPLE_VOTE},
        "hold_talk": {"notes": "约谈"},
        "submit_special_report": {"text": "专题报告"},
    }
    return samples.get(event, {})


def drive_to(campaign: Campaign, case_id: str, target: Stage, *, cast: Cast | None = None,
             clock: FrozenClock | None = None) -> Case:
    """Move a case forward along the happy path until it reaches ``target``.

    With ``clock``, the clock is moved to the meeting window when the meeting needs it.
    """
    cast = cast or Cast.default()
    case = campaign.case(case_id)
    while case.stage.order < target.order:
        case = _step(campaign, case, cast, clock)
    return case


def _step(campaign: Campaign, case: Case, cast: Cast, clock: FrozenClock | None) -> Case:
    cid = case.case_id
    stage = case.stage
    if stage is Stage.RESEARCH:
        return campaign.fire(cid, "finish_research", actor=cast.organizer, problems=["组织生活不规范"])
    if stage is Stage.DRAFTING:
        carried = case.data.get("carried_over", [])
        report = passing_report(rectified=dict.fromkeys(carried, "已整改"))
        return campaign.fire(cid, "submit_report", actor=case.secretary, report=report)
    if stage is Stage.APPROVAL:
        return campaign.fire(cid, "sign_off", actor=cast.signer(campaign, case), comment="同意")
    if stage is Stage.MEETING:
        opens = campaign.policy.stage(Stage.MEETING).opens
        if clock is not None and opens is not None and clock.now() < opens:
            clock.set(opens.add(hours=9))
        return campaign.fire(cid, "hold_meeting", actor=cast.organizer,
                             attendance={"party_members": 20})
    if stage is Stage.EVALUATION:
        comments: dict[str, Any] = case.data.get("comments", {})
        if "superior_secretary" not in comments:
            return campaign.fire(cid, "comment", actor=cast.superior, text="工作扎实")
        if "department_delegate" not in comments:
            return campaign.fire(cid, "comment", actor=cast.delegate, text="成效明显")
        return campaign.fire(cid, "finish_evaluation", actor=cast.organizer, vote=SAMPLE_VOTE)
    if stage is Stage.GROUP_TALK:
        return campaign.fire(cid, "hold_talk", actor=cast.superior, notes="集体约谈")
    if stage is Stage.REPORT_BACK:
        return campaign.fire(cid, "submit_special_report", actor=case.secretary, text="专题报告")
    raise ValueError(f"case {cid} is closed; nothing to drive")


class HookRecorder:
    """A plugin that records every hook call as ``(hook name, kwargs)``, for assertions."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def names(self) -> list[str]:
        """Return the hook names called, in order."""
        return [name for name, _ in self.calls]

    from reviewflow.hooks import hookimpl as _hookimpl

    @_hookimpl
    def reviewflow_case_opened(self, campaign: CampaignView, case: Case) -> None:
        """Record an opened case."""
        self.calls.append(("reviewflow_case_opened", {"case": case}))

    @_hookimpl
    def reviewflow_step(self, campaign: CampaignView, case: Case, record: EventRecord) -> None:
        """Record a step."""
        self.calls.append(("reviewflow_step", {"case": case, "record": record}))

    @_hookimpl
    def reviewflow_refused(self, campaign: CampaignView, case_id: str, event: str, actor: Actor,
                           error: TransitionRefused) -> None:
        """Record a refusal."""
        self.calls.append(("reviewflow_refused", {"case_id": case_id, "error": error}))

    @_hookimpl
    def reviewflow_deadline_rung(self, campaign: CampaignView, case: Case, stage: Stage,
                                 rung: Rung, due: pendulum.DateTime, record: EventRecord
                                 ) -> None:
        """Record a deadline rung."""
        self.calls.append(("reviewflow_deadline_rung", {"case": case, "stage": stage,
                                                        "rung": rung, "due": due,
                                                        "record": record}))

    @_hookimpl
    def reviewflow_results_published(self, campaign: CampaignView, results: list[CaseResult],
                                     scope: str) -> None:
        """Record a publication."""
        self.calls.append(("reviewflow_results_published", {"results": results, "scope": scope}))
