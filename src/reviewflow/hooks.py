"""Hook specifications: how a host application or plugin hears what happens.

Implement any of these on an object, mark them with :data:`hookimpl`, and pass the
object to :meth:`Campaign.register`. Hooks run after the step is committed: a hook
that raises never undoes or half-applies a step; the failure is logged and kept as
a :class:`~reviewflow.exceptions.PluginError` in ``Campaign.plugin_errors``, the
other hooks still run, and ``Campaign.dispatch_pending()`` retries that plugin alone
later (see :mod:`reviewflow._delivery`). Hook wrappers are refused at ``register``.

>>> import reviewflow as rf
>>> class Printer:
...     @rf.hookimpl
...     def reviewflow_step(self, campaign, case, record):
...         print(record.event, record.from_stage, "->", record.to_stage)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from reviewflow.model import Case, EventRecord


__all__ = ["PROJECT", "hookimpl", "hookspec"]

#: The pluggy project name; also the entry-point group plugins declare.
PROJECT = "reviewflow"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Mark a method as an implementation of a ``reviewflow_*`` hook.
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def reviewflow_case_opened(campaign: Any, case: Case) -> None:
    """Tell that a case was opened (its opening event is committed)."""


@hookspec
def reviewflow_step(campaign: Any, case: Case, record: EventRecord) -> None:
    """Tell that a step was committed: ``record`` is its event, ``case`` the case after it."""


@hookspec
def reviewflow_refused(campaign: Any, case_id: str, event: str, actor: Any, error: Any) -> None:
    """Tell that a command was refused (``error`` is the TransitionRefused; nothing changed)."""


@hookspec
def reviewflow_deadline_rung(campaign: Any, case: Case, stage: Any, rung: Any, due: Any,
                             record: Any) -> None:
    """Tell that a reminder or escalation rung came due (fired exactly once per rung).

    ``record`` is the rung's ``deadline_rung`` event record: after a crash the hook may be
    told again (at least once), and ``record.event_id`` lets a host de-duplicate. An
    implementation may leave out the arguments it does not use.
    """


@hookspec
def reviewflow_results_published(campaign: Any, results: Any, scope: Any) -> None:
    """Tell that evaluation results were published to ``scope``.

    Called after the publication committed; told again by ``Campaign.dispatch_pending()``
    when the process stopped before this hook ran (at least once).
    """
