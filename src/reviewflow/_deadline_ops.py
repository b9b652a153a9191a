"""Deadline operations of a campaign: due times, extensions, the sweep and the forecast.

The :class:`~reviewflow.campaign.Campaign` delegates to the functions here; the rules
themselves are the pure functions of :mod:`reviewflow.deadlines`.

How the sweep fires each rung exactly once
------------------------------------------
* What has fired is part of the case: ``case.data["rungs"][stage][rung_key]``, where the
  key names the rung and the due time it was counted from. A firing is a step: one
  ``deadline_rung`` event record per rung, committed with the case's new snapshot under
  the optimistic version check. Two sweepers (threads or processes) that both find a rung
  due build the same step on the same version: one commits, the other gets a
  :class:`~reviewflow.exceptions.ConflictError`, reloads, and finds nothing left to fire.
* Hooks run after the commit. A crash after the commit but before the hook ran leaves
  the record in the outbox, and ``Campaign.dispatch_pending()`` delivers it (through
  :func:`reviewflow._delivery.deliver`, the one path every hook call takes, so that a
  failing rung hook is held and retried like any other); a crash before the commit leaves
  nothing recorded, and the next sweep fires the rung. Nothing double-fires, nothing is skipped.
* The sweep does not scan cases: every commit carries a
  :class:`~reviewflow.store.rows.RungSchedule` extra row
  (the case's current due time and the fire time of its next unfired rung), and the store
  keeps them in an index ordered by fire time. The sweep reads only the cases whose next
  fire time has come, so its cost grows with the rungs due, not with the cases held.
  Every store keeps it (``deadline_due`` and ``deadline_overdue``, see
  :class:`reviewflow.store.parts.DeadlineIndex`).
* A stage left before its rungs came due drops them: the schedule follows the case's
  current stage, and a rung fires only while the case is still in the stage it belongs to.

Where the code lives
--------------------
This module is the stable place to import from; the code is in :mod:`reviewflow._deadlines`,
one module per job (time keys, results, per-campaign state and
due times, the sweep, forecast and explain, extensions). The names here are the same objects
(module-level caches and locks included), not copies.
"""

# ruff: noqa: F401  # this module re-exports; private names too, for tests and benchmarks

from __future__ import annotations

from reviewflow._deadlines.explain import (
    _stage_arg,
    explain_due,
    forecast,
)
from reviewflow._deadlines.extend import (
    _campaign_now,
    extend,
)
from reviewflow._deadlines.results import (
    DueExplanation,
    FiredRung,
    Forecast,
    OverdueCase,
    SweepResult,
)
from reviewflow._deadlines.rows import (
    _CHUNK,
    _EPOCH,
    _EPOCH_ORDINAL,
    _SYSTEM_ROLE,
    _US_CACHE,
    EXTEND_EVENT,
    RUNG_EVENT,
    SYSTEM_ACTOR,
    from_us,
    to_us,
)
from reviewflow._deadlines.state import (
    _STATES,
    _STATES_LOCK,
    _UNSET,
    _commit,
    _fired,
    _has_deadline,
    _pending,
    _schedule_row,
    _State,
    _state,
    attach,
    commit_extras,
    rebuild_index,
    resolve_due,
    set_calendar,
)
from reviewflow._deadlines.sweep import (
    _candidates,
    _deliver,
    _now,
    _return_report,
    _rung_step,
    _RungStep,
    rung_of_record,
    sweep,
)

__all__ = [
    "DueExplanation",
    "FiredRung",
    "Forecast",
    "OverdueCase",
    "SweepResult",
    "attach",
    "commit_extras",
    "explain_due",
    "extend",
    "forecast",
    "rebuild_index",
    "resolve_due",
    "sweep",
    "to_us",
]
