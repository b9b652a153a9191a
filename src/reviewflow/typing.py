"""Public protocols: the shapes a host or a plugin may rely on.

Type a plugin's hooks, a host's store or clock with these instead of importing the
classes behind them. :class:`CampaignView` is what a hook may use of the ``campaign=``
it is told about (a :class:`~reviewflow.Campaign` satisfies it); the hook protocols
give each ``reviewflow_*`` hook's full signature (an implementation may leave out the
arguments it does not use).

>>> from reviewflow.testing import seed_campaign
>>> from reviewflow.typing import CampaignView, Store
>>> def stage_of(campaign: CampaignView, case_id: str) -> str:
...     return campaign.case(case_id).stage.value
>>> campaign, _ = seed_campaign()
>>> isinstance(campaign.store, Store)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import pendulum

from reviewflow.calendar import WorkdayCalendar
from reviewflow.clock import Clock
from reviewflow.deadlines import Rung
from reviewflow.exceptions import TransitionRefused
from reviewflow.model import Actor, Case, EventRecord, Stage
from reviewflow.policy import Policy
from reviewflow.scoring import CaseResult
from reviewflow.store.base import Refusal, Store
from reviewflow.store.parts import BallotBox, DeadlineIndex

__all__ = [
    "BallotBox",
    "CampaignView",
    "CaseOpenedHook",
    "Clock",
    "DeadlineIndex",
    "DeadlineRungHook",
    "RefusedHook",
    "ResultsPublishedHook",
    "StepHook",
    "Store",
    "WorkdayCalendar",
]


class CampaignView(Protocol):
    """What a hook may use of the campaign it is told about (``campaign=``).

    :class:`~reviewflow.Campaign` satisfies it; a hook that needs more than this can
    still type its argument as ``reviewflow.Campaign`` (it is the same object).
    """

    @property
    def id(self) -> str:
        """The campaign's id."""

    @property
    def policy(self) -> Policy:
        """The campaign's policy."""

    @property
    def store(self) -> Store:
        """The campaign's store."""

    @property
    def clock(self) -> Clock:
        """The campaign's clock."""

    def case(self, case_id: str) -> Case:
        """Return a case; ``UnknownCaseError`` when there is none."""

    def cases(self, stage: Stage | str | None = None) -> list[Case]:
        """Return the campaign's cases (those in ``stage`` if given)."""

    def due(self, case: Case, stage: Stage) -> pendulum.DateTime | None:
        """Return when ``stage`` is due for ``case`` (None: no due time)."""

    def refusals(self, case_id: str | None = None) -> list[Refusal]:
        """Return the journal of refused commands."""

    def results(self, case_ids: Sequence[str] | None = None) -> list[CaseResult]:
        """Return the evaluation results (the score of record)."""


class CaseOpenedHook(Protocol):
    """``reviewflow_case_opened``: a case was opened."""

    def __call__(self, campaign: CampaignView, case: Case) -> None: ...


class StepHook(Protocol):
    """``reviewflow_step``: a step was committed."""

    def __call__(self, campaign: CampaignView, case: Case, record: EventRecord) -> None: ...


class RefusedHook(Protocol):
    """``reviewflow_refused``: a command was refused (nothing changed)."""

    def __call__(self, campaign: CampaignView, case_id: str, event: str, actor: Actor,
                 error: TransitionRefused) -> None: ...


class DeadlineRungHook(Protocol):
    """``reviewflow_deadline_rung``: a reminder or escalation rung came due."""

    def __call__(self, campaign: CampaignView, case: Case, stage: Stage, rung: Rung,
                 due: pendulum.DateTime, record: EventRecord) -> None: ...


class ResultsPublishedHook(Protocol):
    """``reviewflow_results_published``: results were published to ``scope``."""

    def __call__(self, campaign: CampaignView, results: list[CaseResult], scope: str) -> None: ...
