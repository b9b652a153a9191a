"""The deadline work of one campaign: due times, the deadline index rows of a commit.

:class:`DeadlineWork` is owned by the campaign's engine (one per engine, rebuilt when the
policy changes): its calendar and caches are the campaign's own, not module-global state.
The engine asks it, on the step path, for due times (:meth:`DeadlineWork.due`) and for
the index row a commit carries (:meth:`DeadlineWork.commit_extras`); the sweep, forecast,
explanation (:mod:`reviewflow._engine.sweep`) and extensions (:mod:`reviewflow._engine.extend`)
use the same object.

How the sweep fires each rung exactly once
------------------------------------------
* What has fired is part of the case: ``case.data["rungs"][stage][rung_key]``, where the
  key names the rung and the due time it was counted from. A firing is a step: one
  ``deadline_rung`` event record per rung, committed with the case's new snapshot under
  the optimistic version check. Two sweepers (threads or processes) that both find a rung
  due build the same step on the same version: one commits, the other gets a
  :class:`~reviewflow.exceptions.ConflictError`, reloads, and finds nothing left to fire.
* Hooks run after the commit, through the engine's one delivery path
  (:mod:`reviewflow._engine.dispatch`); a crash after the commit but before the hook ran
  leaves the record in the outbox for ``Campaign.dispatch_pending()``; a crash before the
  commit leaves nothing recorded, and the next sweep fires the rung.
* The sweep does not scan cases: every commit carries a
  :class:`~reviewflow.store.rows.RungSchedule` extra row (the case's current due time and
  the fire time of its next unfired rung), and the store keeps them in an index ordered
  by fire time (:class:`~reviewflow.store.parts.DeadlineIndex`; every store keeps one).
* A stage left before its rungs came due drops them: the schedule follows the case's
  current stage, and a rung fires only while the case is still in the stage it belongs to.
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pendulum

from reviewflow._engine.context import StepContext
from reviewflow.calendar import in_zone, utc_offset
from reviewflow.deadlines import At, DueContext, Rung, due_tag, effective_due, ladder_from_json
from reviewflow.exceptions import DeadlineError
from reviewflow.model import Actor, Case, EventRecord, Stage
from reviewflow.policy import Policy
from reviewflow.store.rows import RungSchedule

__all__ = ["EXTEND_EVENT", "RUNG_EVENT", "SYSTEM_ACTOR", "DeadlineWork", "from_us",
           "rung_of_record", "rung_route", "to_us"]

#: The event name of a fired rung in a case's history.
RUNG_EVENT = "deadline_rung"
#: The event name of an extension in a case's history.
EXTEND_EVENT = "extend"
#: Who fires rungs and automatic actions.
SYSTEM_ACTOR = Actor("reviewflow", "reviewflow deadline sweep", roles={"system"})
SYSTEM_ROLE = "system"
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
#: Cases per batch (a sweep's load and commit, an index rebuild).
CHUNK = 1000


# -- time keys ----------------------------------------------------------------------------------

#: Recent conversions by object identity: the same due-time objects (fixed dues, cached
#: ladder times) are converted on every commit, and pendulum's utcoffset() is slow.
_US_CACHE: dict[int, tuple[_dt.datetime, int]] = {}


def to_us(value: _dt.datetime) -> int:
    """Return an aware datetime as whole microseconds since 1970-01-01 UTC (index keys)."""
    hit = _US_CACHE.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1]
    off = utc_offset(value)
    if off is None:
        raise DeadlineError(f"{value!r} has no time zone")
    days = _dt.date.toordinal(value) - _EPOCH_ORDINAL
    seconds = days * 86400 + value.hour * 3600 + value.minute * 60 + value.second
    shift = (off.days * 86400 + off.seconds) * 1_000_000 + off.microseconds
    result = seconds * 1_000_000 + value.microsecond - shift
    if len(_US_CACHE) > 4096:
        _US_CACHE.clear()
    _US_CACHE[id(value)] = (value, result)  # keeps value alive, so its id is not reused
    return result


def from_us(value: int, tz: str = "UTC") -> pendulum.DateTime:
    """Return index microseconds as an aware datetime in ``tz``."""
    return in_zone(_EPOCH + _dt.timedelta(microseconds=value), tz)


# -- the per-campaign deadline work ---------------------------------------------------------------


def has_deadline(policy: Policy, stage: Stage) -> bool:
    """Whether ``stage`` has a due time or a ladder under ``policy``."""
    rule = policy.stage(stage)
    return rule.due is not None or bool(rule.ladder)


def fired(case: Case, stage: Stage) -> Mapping[str, Any]:
    """The rung marks of ``stage`` on the case (rung key -> when it fired)."""
    rungs = case.data.get("rungs")
    if not rungs:
        return {}
    marks: Mapping[str, Any] = rungs.get(stage.value) or {}
    return marks


class DeadlineWork:
    """What a campaign's deadline work keeps between calls: caches and the store's index.

    Made by the engine for its policy (a new policy gets a new one).
    """

    __slots__ = ("_bare", "_rung_json", "ctx", "fixed", "ladder_times", "lock",
                 "policy", "tz")

    def __init__(self, ctx: StepContext, policy: Policy) -> None:
        self.ctx = ctx
        self.policy = policy
        self.tz = policy.tz
        #: Stages whose due time is the same for every case (a fixed time), ready to use.
        self.fixed: dict[Stage, pendulum.DateTime] = {}
        for stage in Stage:
            rule = policy.stage(stage)
            if isinstance(rule.due, At):
                self.fixed[stage] = in_zone(rule.due.at, self.tz)
        #: (stage, due_us) -> [(rung, fire time, key)], in firing order.
        self.ladder_times: dict[tuple[Stage, int], list[tuple[Rung, pendulum.DateTime, str]]] = {}
        self.lock = threading.Lock()
        self._rung_json: dict[Rung, dict[str, Any]] = {}
        #: The context of each stage without a case (a rung's fire time needs no case).
        self._bare: dict[Stage, DueContext] = {}

    # -- due times

    def context(self, case: Case | None, stage: Stage) -> DueContext:
        """The context a due-time rule resolves in."""
        return DueContext(case=case, tz=self.tz, calendar=self.ctx.calendar,
                          rules=self.policy.stages, stage=stage)

    def due(self, case: Case, stage: Stage) -> pendulum.DateTime | None:
        """The case's due time for leaving ``stage``, its extension included."""
        if stage.__class__ is not Stage:
            stage = Stage(stage)
        extensions = case.data.get("extensions")
        rule = self.policy.stage(stage)
        if not extensions or stage.value not in extensions:
            fixed = self.fixed.get(stage)
            if fixed is not None:
                return fixed
            if rule.due is None:
                return None
            return rule.due.resolve(self.context(case, stage))
        return effective_due(rule, self.context(case, stage))

    def rung_json(self, rung: Rung) -> dict[str, Any]:
        data = self._rung_json.get(rung)
        if data is None:
            data = self._rung_json[rung] = rung.to_json()
        return data

    def schedule(
        self, stage: Stage, ladder: Sequence[Rung], due: pendulum.DateTime
    ) -> list[tuple[Rung, pendulum.DateTime, str]]:
        """Each rung of ``ladder`` with its fire time and key, for a due time, in firing order."""
        key = (stage, to_us(due))
        cached = self.ladder_times.get(key)
        if cached is None:
            ctx = self._bare.get(stage)
            if ctx is None:
                ctx = self._bare[stage] = self.context(None, stage)
            timed = [(rung.fire_at(due, ctx), i, rung) for i, rung in enumerate(ladder)]
            if any(timed[j][0] > timed[j + 1][0] for j in range(len(timed) - 1)):
                timed.sort(key=lambda t: (t[0], t[1]))  # stable: ties keep the ladder's order
            tag = due_tag(due)  # the rung_key of each rung, its due-time part made once
            cached = [(rung, at, f"{rung.id}@{tag}") for at, _, rung in timed]
            if len(self.ladder_times) > 65536:
                self.ladder_times.clear()
            self.ladder_times[key] = cached
        return cached

    def pending(self, case: Case, stage: Stage, due: pendulum.DateTime
                ) -> list[tuple[Rung, pendulum.DateTime, str]]:
        """The rungs of ``stage`` not fired yet on the case, in firing order."""
        ladder = self.policy.stage(stage).ladder
        if not ladder:
            return []
        marks = fired(case, stage)
        times = self.schedule(stage, ladder, due)
        if not marks:
            return times
        return [t for t in times if t[2] not in marks]

    # -- the index (every store keeps one)

    def schedule_row(self, case: Case, *, force: bool = False) -> RungSchedule | None:
        """The case's index entry (None when it has no due time, unless ``force``)."""
        stage = case.stage
        when = self.due(case, stage)
        if when is None:
            return RungSchedule(campaign_id=self.ctx.campaign_id, case_id=case.case_id,
                                stage=stage.value, due_us=None, next_fire_us=None) if force else None
        pending = self.pending(case, stage, when)
        return RungSchedule(
            campaign_id=self.ctx.campaign_id, case_id=case.case_id, stage=stage.value,
            due_us=to_us(when), next_fire_us=to_us(pending[0][1]) if pending else None,
        )

    def commit_extras(self, case: Case, from_stage: Stage | None) -> tuple[object, ...]:
        """The extra rows a commit of ``case`` (its new snapshot) must carry.

        The engine calls this for every commit that moves the stage (``from_stage`` is the
        stage before the step; None for a new case). It is the case's deadline index entry
        when the stage it is in, or the stage it left, has a due time or a ladder; nothing
        otherwise.
        """
        policy = self.policy
        stage = case.stage
        relevant = has_deadline(policy, stage) or "extensions" in case.data
        if not relevant and from_stage is not None and from_stage != stage:
            relevant = has_deadline(policy, Stage(from_stage))
        if not relevant:
            return ()
        row = self.schedule_row(case, force=True)
        return () if row is None else (row,)

    def rebuild_index(self) -> int:
        """Recompute every case's deadline index entry (after changing a campaign's deadlines).

        Returns the number of cases indexed. The store gets the entries as commits of
        their own (no events, version unchanged), in batches.
        """
        store = self.ctx.store
        commits = []
        for case in store.cases(self.ctx.campaign_id):
            row = self.schedule_row(case, force=True)
            commits.append(self.ctx.step_commit(case, case.version, (), (row,) if row else ()))
        for start in range(0, len(commits), CHUNK):
            store.commit(commits[start:start + CHUNK])
        return len(commits)


# -- telling a fired rung ------------------------------------------------------------------------


def rung_of_record(tz: str, record: EventRecord) -> tuple[Stage, Rung, pendulum.DateTime] | None:
    """Return ``(stage, rung, due)`` for a ``deadline_rung`` event record, else None."""
    if record.event != RUNG_EVENT:
        return None
    data = record.data
    stage = Stage(data["stage"])
    rung = ladder_from_json([data["rung"]], "rung")[0]
    due = in_zone(_dt.datetime.fromisoformat(data["due"]), tz)
    return stage, rung, due


def rung_route(ctx: StepContext, record: EventRecord) -> tuple[str, dict[str, object]] | None:
    """How a fired rung is told: ``reviewflow_deadline_rung`` with its stage, rung and due."""
    found = rung_of_record(ctx.policy.tz, record)
    if found is None:
        return None
    stage, rung, due = found
    return "reviewflow_deadline_rung", {"stage": stage, "rung": rung, "due": due}
