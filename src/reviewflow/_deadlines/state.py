"""Per-campaign deadline state: calendar, caches, due times and the index rows of a commit.

Also rebuilds the store's deadline index of a campaign (every store keeps one).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pendulum

from reviewflow._deadlines.rows import _CHUNK, to_us
from reviewflow.calendar import calendar_from_policy, in_zone
from reviewflow.deadlines import At, DueContext, Rung, due_tag, effective_due
from reviewflow.exceptions import DeadlineError
from reviewflow.model import Case, EventRecord, Stage
from reviewflow.store.base import Commit
from reviewflow.store.rows import RungSchedule

if TYPE_CHECKING:
    from reviewflow.campaign import Campaign


# -- per-campaign state ---------------------------------------------------------------------


class _State:
    """What a campaign's deadline work keeps between calls: calendar, caches, index."""

    __slots__ = ("_bare", "_rung_json", "calendar", "fixed", "ladder_times", "lock", "policy",
                 "tz")

    def __init__(self, campaign: Campaign) -> None:
        policy = campaign.policy
        self.policy = policy
        self.tz = policy.tz
        cal = getattr(campaign, "_calendar", None)
        if cal is None:
            cal = calendar_from_policy(policy.calendar)
        self.calendar = cal
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

    def ctx(self, case: Case | None, stage: Stage) -> DueContext:
        return DueContext(case=case, tz=self.tz, calendar=self.calendar,
                          rules=self.policy.stages, stage=stage)

    def due(self, case: Case, stage: Stage) -> pendulum.DateTime | None:
        extensions = case.data.get("extensions")
        rule = self.policy.stage(stage)
        if not extensions or stage.value not in extensions:
            fixed = self.fixed.get(stage)
            if fixed is not None:
                return fixed
            if rule.due is None:
                return None
            return rule.due.resolve(self.ctx(case, stage))
        return effective_due(rule, self.ctx(case, stage))

    def rung_json(self, rung: Rung) -> dict[str, Any]:
        data = self._rung_json.get(rung)
        if data is None:
            data = self._rung_json[rung] = rung.to_json()
        return data

    def schedule(
        self, stage: Stage, ladder: Sequence[Rung], due: pendulum.DateTime
    ) -> list[tuple[Rung, pendulum.DateTime, str]]:
        key = (stage, to_us(due))
        cached = self.ladder_times.get(key)
        if cached is None:
            ctx = self._bare.get(stage)
            if ctx is None:
                ctx = self._bare[stage] = self.ctx(None, stage)
            timed = [(rung.fire_at(due, ctx), i, rung) for i, rung in enumerate(ladder)]
            if any(timed[j][0] > timed[j + 1][0] for j in range(len(timed) - 1)):
                timed.sort(key=lambda t: (t[0], t[1]))  # stable: ties keep the ladder's order
            tag = due_tag(due)  # the rung_key of each rung, its due-time part made once
            cached = [(rung, at, f"{rung.id}@{tag}") for at, _, rung in timed]
            if len(self.ladder_times) > 65536:
                self.ladder_times.clear()
            self.ladder_times[key] = cached
        return cached


_STATES: weakref.WeakKeyDictionary[Any, _State] = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def _state(campaign: Campaign) -> _State:
    # The state rides on the campaign too: a weak-key lookup on every step costs more.
    st: _State | None = getattr(campaign, "_deadline_state", None)
    if st is not None and st.policy is campaign.policy:
        return st
    st = _STATES.get(campaign)
    if st is None or st.policy is not campaign.policy:
        with _STATES_LOCK:
            st = _STATES.get(campaign)
            if st is None or st.policy is not campaign.policy:
                st = _State(campaign)
                _STATES[campaign] = st
    with contextlib.suppress(AttributeError):  # a host's campaign stand-in may refuse it
        campaign._deadline_state = st
    return st


def attach(campaign: Campaign) -> None:
    """Prepare deadline work for ``campaign``: its calendar, caches and the store's index."""
    _state(campaign)


def set_calendar(campaign: Campaign, calendar: Any) -> None:
    """Count the campaign's working days with a host's own calendar object."""
    if not hasattr(calendar, "is_working_day"):
        raise DeadlineError(f"{calendar!r} is not a working-day calendar: it needs is_working_day(date)")
    campaign._calendar = calendar
    _STATES.pop(campaign, None)
    campaign._deadline_state = None

def rebuild_index(campaign: Campaign) -> int:
    """Recompute every case's deadline index entry (after changing a campaign's deadlines).

    Returns the number of cases indexed. The store gets the entries as commits of
    their own (no events, version unchanged), in batches.
    """
    st = _state(campaign)
    store = campaign.store
    count = 0
    commits = []
    for case in store.cases(campaign.id):
        row = _schedule_row(campaign, st, case, force=True)
        commits.append(_commit(case, case.version, (), (row,) if row else (), campaign))
        count += 1
    for start in range(0, len(commits), _CHUNK):
        store.commit(commits[start:start + _CHUNK])
    return count

# -- due times and schedules --------------------------------------------------------------------


def resolve_due(campaign: Campaign, case: Case, stage: Stage) -> pendulum.DateTime | None:
    """Return the case's due time for leaving ``stage``, its extension included."""
    return _state(campaign).due(case, stage if stage.__class__ is Stage else Stage(stage))


def _has_deadline(policy: Any, stage: Stage) -> bool:
    rule = policy.stage(stage)
    return rule.due is not None or bool(rule.ladder)


def _fired(case: Case, stage: Stage) -> Mapping[str, Any]:
    rungs = case.data.get("rungs")
    if not rungs:
        return {}
    marks: Mapping[str, Any] = rungs.get(stage.value) or {}
    return marks


def _pending(
    st: _State, case: Case, stage: Stage, due: pendulum.DateTime
) -> list[tuple[Rung, pendulum.DateTime, str]]:
    ladder = st.policy.stage(stage).ladder
    if not ladder:
        return []
    fired = _fired(case, stage)
    times = st.schedule(stage, ladder, due)
    if not fired:
        return times
    return [t for t in times if t[2] not in fired]


_UNSET: Any = object()


def _schedule_row(
    campaign: Campaign, st: _State, case: Case, *, force: bool = False,
    due: pendulum.DateTime | None = _UNSET,
) -> RungSchedule | None:
    stage = case.stage
    if due is _UNSET:
        due = st.due(case, stage)
    if due is None:
        return RungSchedule(campaign_id=campaign.id, case_id=case.case_id, stage=stage.value,
                            due_us=None, next_fire_us=None) if force else None
    pending = _pending(st, case, stage, due)
    return RungSchedule(
        campaign_id=campaign.id, case_id=case.case_id, stage=stage.value, due_us=to_us(due),
        next_fire_us=to_us(pending[0][1]) if pending else None,
    )


def commit_extras(campaign: Campaign, case: Case,
                  from_stage: Stage | str | None = None) -> tuple[Any, ...]:
    """Return the extra rows a commit of ``case`` (its new snapshot) must carry.

    The engine calls this for every commit (``from_stage`` is the stage before the step;
    None for a new case). It is the case's deadline index entry when the stage it is in,
    or the stage it left, has a due time or a ladder; nothing otherwise.
    """
    st = _state(campaign)
    policy = st.policy
    stage = case.stage
    relevant = _has_deadline(policy, stage) or "extensions" in case.data
    if not relevant and from_stage is not None and from_stage != stage:
        relevant = _has_deadline(policy, Stage(from_stage))
    if not relevant:
        return ()
    row = _schedule_row(campaign, st, case, force=True)
    return () if row is None else (row,)


def _commit(case: Case, expected: int, events: tuple[EventRecord, ...], extras: tuple[Any, ...],
            campaign: Campaign) -> Commit:
    more: dict[str, Any] = {}
    if "outbox" in getattr(Commit, "_fields", ()):
        more["outbox"] = bool(getattr(campaign, "_outbox", True))
    return Commit(case=case, expected_version=expected, events=events, extras=extras, **more)
