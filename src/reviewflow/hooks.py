"""Hook specifications: how a host application or plugin hears what happens.

Implement any of these on an object, mark them with :data:`hookimpl`, and pass the
object to :meth:`Campaign.register`. Hooks run after the step is committed: a hook
that raises never undoes or half-applies a step; the failure is logged and kept as
a :class:`~reviewflow.exceptions.PluginError` in ``Campaign.plugin_errors``, the
other hooks still run, and ``Campaign.dispatch_pending()`` retries that plugin alone
later (see :mod:`reviewflow._engine.dispatch`). Hook wrappers are refused at ``register``.

The arguments are typed with the real classes; ``campaign`` is the
:class:`~reviewflow.Campaign`, typed as :class:`reviewflow.typing.CampaignView` (what a
hook may use of it). :mod:`reviewflow.typing` also has each hook's signature as a
Protocol (``StepHook``, ``RefusedHook``, ...).

>>> import reviewflow as rf
>>> class Printer:
...     @rf.hookimpl
...     def reviewflow_step(self, campaign, case, record):
...         print(record.event, record.from_stage, "->", record.to_stage)
"""

from __future__ import annotations

import pendulum
import pluggy

from reviewflow.deadlines import Rung
from reviewflow.exceptions import TransitionRefused
from reviewflow.model import Actor, Case, EventRecord, Stage
from reviewflow.scoring import CaseResult
from reviewflow.typing import CampaignView

__all__ = ["PROJECT", "hookimpl", "hookspec"]

#: The pluggy project name; also the entry-point group plugins declare.
PROJECT = "reviewflow"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Mark a method as an implementation of a ``reviewflow_*`` hook.
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def reviewflow_case_opened(campaign: CampaignView, case: Case) -> None:
    """Tell that a case was opened (its opening event is committed)."""


@hookspec
def reviewflow_step(campaign: CampaignView, case: Case, record: EventRecord) -> None:
    """Tell that a step was committed: ``record`` is its event, ``case`` the case after it."""


@hookspec
def reviewflow_refused(campaign: CampaignView, case_id: str, event: str, actor: Actor,
                       error: TransitionRefused) -> None:
    """Tell that a command was refused (``error`` is the TransitionRefused; nothing changed)."""


@hookspec
def reviewflow_deadline_rung(campaign: CampaignView, case: Case, stage: Stage, rung: Rung,
                             due: pendulum.DateTime, record: EventRecord) -> None:
    """Tell that a reminder or escalation rung came due (fired exactly once per rung).

    ``record`` is the rung's ``deadline_rung`` event record: after a crash the hook may be
    told again (at least once), and ``record.event_id`` lets a host de-duplicate. An
    implementation may leave out the arguments it does not use.
    """


@hookspec
def reviewflow_results_published(campaign: CampaignView, results: list[CaseResult],
                                 scope: str) -> None:
    """Tell that evaluation results were published to ``scope``.

    Called after the publication committed; told again by ``Campaign.dispatch_pending()``
    when the process stopped before this hook ran (at least once).
    """
