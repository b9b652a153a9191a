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
  :func:`deliver_record`); a crash before the commit leaves nothing recorded, and the next
  sweep fires the rung. Nothing double-fires, nothing is skipped.
* The sweep does not scan cases: every commit carries a :class:`RungSchedule` extra row
  (the case's current due time and the fire time of its next unfired rung), and the store
  keeps them in an index ordered by fire time. The sweep reads only the cases whose next
  fire time has come, so its cost grows with the rungs due, not with the cases held.
  The in-memory store gets this index from :func:`attach`; a durable store provides
  ``deadline_due`` and ``deadline_overdue`` (see :class:`DeadlineIndex`). A store with
  neither is scanned (correct, slow).
* A stage left before its rungs came due drops them: the schedule follows the case's
  current stage, and a rung fires only while the case is still in the stage it belongs to.
"""

from __future__ import annotations

import bisect
import datetime as _dt
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs
import pendulum

from reviewflow.calendar import calendar_from_policy, in_zone
from reviewflow.clock import ensure_aware
from reviewflow.deadlines import (
    At,
    DueContext,
    DueState,
    Rung,
    deadline_status,
    effective_due,
    fmt_time,
    ladder_from_json,
    rung_key,
)
from reviewflow.deadlines import (
    explain_due as _explain_steps,
)
from reviewflow.exceptions import (
    ConflictError,
    DeadlineError,
    InputError,
    ReviewflowError,
    TransitionRefused,
)
from reviewflow.model import Actor, Case, EventRecord, Stage
from reviewflow.store.base import Commit

if TYPE_CHECKING:
    from reviewflow.campaign import Campaign


__all__ = [
    "DeadlineIndex",
    "DueExplanation",
    "FiredRung",
    "Forecast",
    "OverdueCase",
    "RungMark",
    "RungSchedule",
    "SweepResult",
    "attach",
    "commit_extras",
    "deliver_record",
    "explain_due",
    "extend",
    "forecast",
    "rebuild_index",
    "resolve_due",
    "sweep",
    "to_us",
]

#: The event name of a fired rung in a case's history.
RUNG_EVENT = "deadline_rung"
#: The event name of an extension in a case's history.
EXTEND_EVENT = "extend"
#: Who fires rungs and automatic actions.
SYSTEM_ACTOR = Actor("reviewflow", "reviewflow deadline sweep", roles={"system"})
_SYSTEM_ROLE = "system"
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
_CHUNK = 1000


#: Recent conversions by object identity: the same due-time objects (fixed dues, cached
#: ladder times) are converted on every commit, and pendulum's utcoffset() is slow.
_US_CACHE: dict[int, tuple[_dt.datetime, int]] = {}


def to_us(value: _dt.datetime) -> int:
    """Return an aware datetime as whole microseconds since 1970-01-01 UTC (index keys)."""
    hit = _US_CACHE.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1]
    off = value.utcoffset()
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


# -- the rows a commit carries ----------------------------------------------------------------


@attrs.frozen(kw_only=True, slots=True)
class RungSchedule:
    """The deadline index entry of one case, written with every commit that may change it.

    One row per case (upsert on ``campaign_id, case_id``): the current stage, its effective
    due time and the fire time of its next unfired rung, as microseconds since the epoch
    (UTC; None when there is none). A row with both None can be deleted.
    """

    campaign_id: str
    case_id: str
    stage: str
    due_us: int | None
    next_fire_us: int | None


@attrs.frozen(kw_only=True, slots=True)
class RungMark:
    """One fired rung (insert-only; unique on campaign, case, stage, rung id, due).

    The mark is also in the case snapshot (``data["rungs"]``); a durable store keeps these
    rows with a unique key so that the database itself refuses a second firing.
    """

    campaign_id: str
    case_id: str
    stage: str
    rung_id: str
    due_us: int
    #: When the sweep recorded it (ISO 8601 with offset).
    fired_at: str
    #: The ``seq`` of the ``deadline_rung`` event record.
    seq: int


@runtime_checkable
class DeadlineIndex(Protocol):
    """What a store offers so that the sweep does not scan (durable stores implement it)."""

    def deadline_due(self, campaign_id: str, until_us: int, limit: int | None = None) -> list[str]:
        """Return ids of cases whose next fire time is at or before ``until_us``, earliest first."""

    def deadline_overdue(self, campaign_id: str, at_us: int, limit: int | None = None) -> list[str]:
        """Return ids of cases whose current due time is before ``at_us``, earliest first."""


# -- results ------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class FiredRung:
    """A rung that fired (in a sweep) or would fire (in a forecast)."""

    case_id: str
    stage: Stage
    rung: Rung
    due: pendulum.DateTime
    fire_at: pendulum.DateTime
    #: The event record's ``seq``; None in a forecast.
    seq: int | None = None

    def __str__(self) -> str:
        return (f"{self.case_id}: {self.stage.value} {self.rung.describe()} "
                f"(due {fmt_time(self.due)}, fires {fmt_time(self.fire_at)})")


@attrs.frozen(kw_only=True)
class SweepResult:
    """What one sweep did: the rungs it fired, and the cases it could not update."""

    now: pendulum.DateTime
    fired: tuple[FiredRung, ...] = ()
    #: Cases whose commit failed for good (after retries), with the error.
    failed: tuple[tuple[str, ReviewflowError], ...] = ()
    #: Commits that lost a race and were retried.
    conflicts: int = 0
    #: Cases the index offered.
    candidates: int = 0

    def __len__(self) -> int:
        return len(self.fired)


@attrs.frozen(kw_only=True)
class OverdueCase:
    """A case that is (or will be) past its current stage's due time."""

    case_id: str
    stage: Stage
    due: pendulum.DateTime
    state: DueState


@attrs.frozen(kw_only=True)
class Forecast:
    """If nothing changes: which cases are overdue at ``at``, which rungs will have fired."""

    at: pendulum.DateTime
    overdue: tuple[OverdueCase, ...] = ()
    rungs: tuple[FiredRung, ...] = ()


@attrs.frozen(kw_only=True)
class DueExplanation:
    """How a case's due time for a stage was derived, where it stands, and its ladder."""

    case_id: str
    stage: Stage
    due: pendulum.DateTime | None
    state: DueState
    steps: tuple[str, ...]
    #: Each rung with its fire time and whether it has fired.
    rungs: tuple[tuple[Rung, pendulum.DateTime, bool], ...] = ()

    @property
    def text(self) -> str:
        """The steps as one line."""
        return "; ".join(self.steps)

    def __str__(self) -> str:
        return self.text


# -- per-campaign state ---------------------------------------------------------------------


class _State:
    """What a campaign's deadline work keeps between calls: calendar, caches, index."""

    __slots__ = ("_rung_json", "calendar", "fixed", "indexed", "ladder_times", "lock", "policy",
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
        self.indexed = False
        self.lock = threading.Lock()
        self._rung_json: dict[Rung, dict[str, Any]] = {}

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
            ctx = self.ctx(None, stage)
            timed = sorted(
                ((rung.fire_at(due, ctx), i, rung) for i, rung in enumerate(ladder)),
                key=lambda t: (t[0], t[1]),
            )
            cached = [(rung, at, rung_key(rung, due)) for at, _, rung in timed]
            if len(self.ladder_times) > 65536:
                self.ladder_times.clear()
            self.ladder_times[key] = cached
        return cached


_STATES: weakref.WeakKeyDictionary[Any, _State] = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def _state(campaign: Campaign) -> _State:
    st = _STATES.get(campaign)
    if st is None or st.policy is not campaign.policy:
        with _STATES_LOCK:
            st = _STATES.get(campaign)
            if st is None or st.policy is not campaign.policy:
                st = _State(campaign)
                _STATES[campaign] = st
                st.indexed = _attach_index(campaign)
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


# -- the in-memory store's index ---------------------------------------------------------------


class _TimeIndex:
    """Case ids by a time (microseconds): buckets of ids per distinct time, and the sorted
    distinct times. Most cases share a few times (a fixed due date, the same ladder), so
    keeping an entry current is a dict update, and a query reads only the due buckets."""

    __slots__ = ("buckets", "cur", "times")

    def __init__(self) -> None:
        self.cur: dict[str, int] = {}
        self.buckets: dict[int, dict[str, None]] = {}
        self.times: list[int] = []

    def set(self, case_id: str, value: int | None) -> None:
        old = self.cur.get(case_id)
        if old == value:
            return
        if old is not None:
            was = self.buckets[old]
            del was[case_id]
            if not was:
                del self.buckets[old]
                del self.times[bisect.bisect_left(self.times, old)]
        if value is None:
            del self.cur[case_id]
            return
        self.cur[case_id] = value
        bucket = self.buckets.get(value)
        if bucket is None:
            bucket = self.buckets[value] = {}
            bisect.insort(self.times, value)
        bucket[case_id] = None

    def upto(self, bound: int, limit: int | None) -> list[str]:
        """Return the ids whose time is <= bound, by time, then id; at most ``limit``."""
        out: list[str] = []
        for time in self.times[: bisect.bisect_right(self.times, bound)]:
            for case_id in sorted(self.buckets[time]):
                out.append(case_id)
                if limit is not None and len(out) >= limit:
                    return out
        return out


class _CampaignIndex:
    """Next fire times and due times of one campaign's cases."""

    __slots__ = ("due", "fire")

    def __init__(self) -> None:
        self.fire = _TimeIndex()
        self.due = _TimeIndex()

    def put(self, case_id: str, due_us: int | None, next_us: int | None) -> None:
        self.fire.set(case_id, next_us)
        self.due.set(case_id, due_us)


class _MemoryIndex:
    """The deadline index of one :class:`~reviewflow.store.memory.MemoryStore`."""

    __slots__ = ("campaigns", "lock")

    def __init__(self) -> None:
        self.campaigns: dict[str, _CampaignIndex] = {}
        self.lock = threading.Lock()

    def apply(self, row: RungSchedule) -> None:
        with self.lock:
            index = self.campaigns.get(row.campaign_id)
            if index is None:
                index = self.campaigns[row.campaign_id] = _CampaignIndex()
            index.put(row.case_id, row.due_us, row.next_fire_us)

    def deadline_due(self, campaign_id: str, until_us: int, limit: int | None = None) -> list[str]:
        with self.lock:
            index = self.campaigns.get(campaign_id)
            if index is None:
                return []
            return index.fire.upto(until_us, limit)

    def deadline_overdue(self, campaign_id: str, at_us: int, limit: int | None = None) -> list[str]:
        with self.lock:
            index = self.campaigns.get(campaign_id)
            if index is None:
                return []
            return index.due.upto(at_us - 1, limit)


_MEMORY_INDEXES: weakref.WeakKeyDictionary[Any, _MemoryIndex] = weakref.WeakKeyDictionary()


def _memory_index(store: Any) -> _MemoryIndex | None:
    return _MEMORY_INDEXES.get(store)


def _attach_index(campaign: Campaign) -> bool:
    """Make sure the store indexes deadlines for the campaign; True when it does."""
    store = campaign.store
    if isinstance(store, DeadlineIndex):
        return True
    from reviewflow.store.memory import MemoryStore

    if not isinstance(store, MemoryStore):
        return False
    index = _MEMORY_INDEXES.get(store)
    if index is None:
        index = _MEMORY_INDEXES[store] = _MemoryIndex()

        def on_schedule(_store: Any, row: RungSchedule) -> None:
            index.apply(row)

        store.extra_handlers[RungSchedule] = on_schedule
        store.extra_handlers[RungMark] = _ignore
    if campaign.id not in index.campaigns:
        index.campaigns[campaign.id] = _CampaignIndex()
        if store.cases(campaign.id):
            _fill(campaign, index)
    return True


def _ignore(_store: Any, _row: Any) -> None:
    """The in-memory store keeps rung marks in the case snapshot only."""


def _fill(campaign: Campaign, index: _MemoryIndex) -> None:
    st = _STATES.get(campaign) or _State(campaign)
    for case in campaign.store.cases(campaign.id):
        row = _schedule_row(campaign, st, case)
        if row is not None:
            index.apply(row)


def rebuild_index(campaign: Campaign) -> int:
    """Recompute every case's deadline index entry (after changing a campaign's deadlines).

    Returns the number of cases indexed. Durable stores get the entries as commits of
    their own (no events, version unchanged), in batches.
    """
    st = _state(campaign)
    store = campaign.store
    mem = _memory_index(store)
    count = 0
    if mem is not None:
        mem.campaigns[campaign.id] = _CampaignIndex()
        _fill(campaign, mem)
        return len(store.cases(campaign.id))
    if not st.indexed:
        return 0
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
    return _state(campaign).due(case, Stage(stage))


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
    if not st.indexed:
        return ()
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


# -- the sweep ----------------------------------------------------------------------------------


@attrs.define(slots=True)
class _RungStep:
    case_id: str
    before: Case
    after: Case
    commit: Commit
    fired: list[FiredRung]
    records: list[EventRecord]


def _now(campaign: Campaign, now: _dt.datetime | None) -> pendulum.DateTime:
    tz = campaign.policy.tz
    if now is None:
        return ensure_aware(campaign.clock.now(), what="the clock's time", tz=tz)
    return ensure_aware(now, what="now", tz=tz)


def _rung_step(campaign: Campaign, st: _State, case: Case, now: pendulum.DateTime) -> _RungStep | None:
    """Build the step that fires every rung of the case that is due at ``now``, or None.

    The sweep commits it; the forecast only reads what it would fire (the same code).
    """
    stage = case.stage
    due = st.due(case, stage)
    if due is None:
        return None
    pending = _pending(st, case, stage, due)
    if not pending or pending[0][1] > now:
        return None
    iso = now.isoformat()
    after = case.copy()
    rungs_data = dict(after.data.get("rungs") or {})
    marks = dict(rungs_data.get(stage.value) or {})
    records: list[EventRecord] = []
    fired: list[FiredRung] = []
    extras: list[Any] = []
    seq = case.version
    prev = case.last_hash
    due_iso = due.isoformat()
    due_us = to_us(due)
    for rung, fire_at, key in pending:
        if fire_at > now:
            break
        seq += 1
        marks[key] = iso
        data: dict[str, Any] = {
            "stage": stage.value, "rung": st.rung_json(rung), "due": due_iso,
            "fire_at": fire_at.isoformat(),
        }
        record = EventRecord.make(
            campaign.id, case.case_id, seq, RUNG_EVENT, SYSTEM_ACTOR.id, _SYSTEM_ROLE, iso,
            stage.value, stage.value, None, data, prev,
        )
        prev = record.hash
        records.append(record)
        fired.append(FiredRung(case_id=case.case_id, stage=stage, rung=rung, due=due,
                               fire_at=fire_at, seq=seq))
        if st.indexed:
            extras.append(RungMark(campaign_id=campaign.id, case_id=case.case_id,
                                   stage=stage.value, rung_id=rung.id, due_us=due_us,
                                   fired_at=iso, seq=seq))
        if rung.auto == "mark_missed":
            missed = dict(after.data.get("missed") or {})
            missed[stage.value] = {"due": due_iso, "at": iso, "rung": rung.id}
            after.data["missed"] = missed
        elif rung.auto == "return_report" and stage is Stage.APPROVAL:
            rungs_data[stage.value] = marks
            after.data["rungs"] = rungs_data
            after.version, after.last_hash = seq, prev
            back = _return_report(campaign, after, due, iso, seq + 1)
            records.append(back)
            seq, prev = back.seq, back.hash
            break  # the stage is left: its later rungs no longer apply
    rungs_data[stage.value] = marks
    after.data["rungs"] = rungs_data
    after.version = seq
    after.last_hash = prev
    if st.indexed:
        same = after.stage is stage
        row = (_schedule_row(campaign, st, after, force=True, due=due) if same
               else _schedule_row(campaign, st, after, force=True))
        if row is not None:
            extras.append(row)
    commit = _commit(after, case.version, tuple(records), tuple(extras), campaign)
    return _RungStep(case.case_id, case, after, commit, fired, records)


def _return_report(campaign: Campaign, case: Case, due: pendulum.DateTime, iso: str,
                   seq: int) -> EventRecord:
    """Send an overdue report back to drafting (the ``return_report`` automatic action)."""
    reason = f"not signed off by the due time {fmt_time(due)}; returned automatically"
    level = len(case.data.get("signatures", ()))
    case.data["signatures"] = []
    case.data["returns"] = case.data.get("returns", 0) + 1
    lifecycle = getattr(campaign, "_lifecycle", None)
    if lifecycle is not None:
        lifecycle.step(case, "return_for_revision")
    else:  # pragma: no cover  # the engine always has its lifecycle
        case.stage = Stage.DRAFTING
    case.data["entered"] = {**case.data.get("entered", {}), case.stage.value: iso}
    return EventRecord.make(
        campaign.id, case.case_id, seq, "return_for_revision", SYSTEM_ACTOR.id, _SYSTEM_ROLE,
        iso, Stage.APPROVAL.value, case.stage.value, reason,
        {"at_level": level + 1, "automatic": True}, case.last_hash,
    )


def _candidates(campaign: Campaign, st: _State, until: pendulum.DateTime, *, overdue: bool,
                limit: int | None = None) -> list[str]:
    store = campaign.store
    mem = _memory_index(store)
    source: Any = mem if mem is not None else (store if isinstance(store, DeadlineIndex) else None)
    bound = to_us(until)
    if source is not None:
        if overdue:
            return list(source.deadline_overdue(campaign.id, bound, limit))
        return list(source.deadline_due(campaign.id, bound, limit))
    # No index: scan every case (correct, slow; durable stores should index).
    out: list[str] = []
    for case in store.cases(campaign.id):
        due = st.due(case, case.stage)
        if due is None:
            continue
        if overdue:
            if due < until:
                out.append(case.case_id)
            continue
        pending = _pending(st, case, case.stage, due)
        if pending and pending[0][1] <= until:
            out.append(case.case_id)
    return out[:limit] if limit is not None else out


def sweep(campaign: Campaign, now: _dt.datetime | None = None, *, limit: int | None = None,
          retries: int = 3) -> SweepResult:
    """Fire every rung that is due at ``now`` (default: the campaign's clock), exactly once.

    Each case's rungs are committed as ``deadline_rung`` events with their marks, under the
    version check; then ``reviewflow_deadline_rung`` is called for each. A case another
    writer changed first is reloaded and tried again (up to ``retries`` times). ``limit``
    caps the number of cases taken in this call (the rest wait for the next sweep).
    """
    at = _now(campaign, now)
    st = _state(campaign)
    ids = _candidates(campaign, st, at, overdue=False, limit=limit)
    store = campaign.store
    fired: list[FiredRung] = []
    failed: list[tuple[str, ReviewflowError]] = []
    conflicts = 0
    todo = ids
    attempt = 0
    get_many = getattr(store, "get_many", None)
    while todo:
        steps: list[_RungStep] = []
        # One query per few hundred cases on a database, not one per case.
        loaded = get_many(campaign.id, todo) if get_many is not None else None
        for case_id in todo:
            case = store.get(campaign.id, case_id) if loaded is None else loaded.get(case_id)
            if case is None:
                continue
            step = _rung_step(campaign, st, case, at)
            if step is not None:
                steps.append(step)
        retry: list[str] = []
        for start in range(0, len(steps), _CHUNK):
            chunk = steps[start:start + _CHUNK]
            errors = store.commit([s.commit for s in chunk])
            done: list[_RungStep] = []
            for step, error in zip(chunk, errors, strict=True):
                if error is None:
                    fired.extend(step.fired)
                    done.append(step)
                elif isinstance(error, ConflictError) and attempt < retries:
                    conflicts += 1
                    retry.append(step.case_id)
                else:
                    failed.append((step.case_id, error if isinstance(error, ReviewflowError)
                                   else ReviewflowError(str(error))))
            _deliver(campaign, done)
        todo = retry
        attempt += 1
    return SweepResult(now=at, fired=tuple(fired), failed=tuple(failed), conflicts=conflicts,
                       candidates=len(ids))


def _deliver(campaign: Campaign, steps: Sequence[_RungStep]) -> None:
    """Tell the hooks of committed rung steps, then mark their events dispatched."""
    if not steps:
        return
    has_hooks = bool(getattr(campaign, "_has_hooks", False))
    call = getattr(campaign, "_call_hook", None)
    dispatched: list[str] = []
    for step in steps:
        case = step.after.bind(campaign.store)
        if has_hooks and call is not None:
            fired = iter(step.fired)
            for record in step.records:
                if record.event == RUNG_EVENT:
                    f = next(fired)
                    call("reviewflow_deadline_rung", campaign=campaign, case=case,
                         stage=f.stage, rung=f.rung, due=f.due)
                else:  # an automatic action's step
                    call("reviewflow_step", campaign=campaign, case=case, record=record)
        dispatched.extend(r.event_id for r in step.records)
    if has_hooks or campaign.store.durable or getattr(campaign, "_outbox", True):
        campaign.store.mark_dispatched(campaign.id, dispatched)


def rung_of_record(campaign: Campaign, record: EventRecord) -> tuple[Stage, Rung, pendulum.DateTime] | None:
    """Return ``(stage, rung, due)`` for a ``deadline_rung`` event record, else None."""
    if record.event != RUNG_EVENT:
        return None
    data = record.data
    stage = Stage(data["stage"])
    rung = ladder_from_json([data["rung"]], "rung")[0]
    due = in_zone(_dt.datetime.fromisoformat(data["due"]), campaign.policy.tz)
    return stage, rung, due


def deliver_record(campaign: Campaign, case: Case, record: EventRecord) -> bool:
    """Call ``reviewflow_deadline_rung`` for a committed ``deadline_rung`` record.

    Returns False (and calls nothing) for any other record: the engine's dispatcher (also
    ``dispatch_pending`` after a crash) calls this first and sends the others to
    ``reviewflow_step``.
    """
    call = getattr(campaign, "_call_hook", None)
    found = rung_of_record(campaign, record)
    if call is None or found is None:
        return False
    stage, rung, due = found
    call("reviewflow_deadline_rung", campaign=campaign, case=case, stage=stage, rung=rung, due=due)
    return True


# -- forecast and explain -------------------------------------------------------------------


def forecast(campaign: Campaign, at: _dt.datetime) -> Forecast:
    """Say, without changing anything, which cases will be overdue at ``at`` and which rungs
    a sweep at ``at`` would fire (the same code as :func:`sweep`)."""
    when = _now(campaign, at)
    st = _state(campaign)
    store = campaign.store
    rungs: list[FiredRung] = []
    for case_id in _candidates(campaign, st, when, overdue=False):
        case = store.get(campaign.id, case_id)
        if case is None:
            continue
        step = _rung_step(campaign, st, case, when)
        if step is not None:
            rungs.extend(attrs.evolve(f, seq=None) for f in step.fired)
    overdue: list[OverdueCase] = []
    for case_id in _candidates(campaign, st, when, overdue=True):
        case = store.get(campaign.id, case_id)
        if case is None:
            continue
        stage = case.stage
        due, state = deadline_status(st.policy.stage(stage), st.ctx(case, stage), when)
        if due is not None and state.is_late:
            overdue.append(OverdueCase(case_id=case_id, stage=stage, due=due, state=state))
    overdue.sort(key=lambda o: (o.due, o.case_id))
    return Forecast(at=when, overdue=tuple(overdue), rungs=tuple(rungs))


def explain_due(campaign: Campaign, case_id: str, stage: Stage | str | None = None) -> DueExplanation:
    """Explain how the case's due time for ``stage`` (default: its current stage) was
    derived, step by step, where it stands now, and its ladder."""
    case = campaign.case(case_id)
    st = _state(campaign)
    which = case.stage if stage is None else _stage_arg(stage)
    rule = st.policy.stage(which)
    ctx = st.ctx(case, which)
    now = _now(campaign, None)
    due, state = deadline_status(rule, ctx, now)
    steps = _explain_steps(rule, ctx)
    if rule.hard and due is not None:
        grace = f" (+ grace {rule.grace.in_words()})" if rule.grace else ""
        steps.append(f"hard deadline{grace}: the step out of {which.value} is refused after it")
    elif due is not None:
        steps.append("soft deadline: a later step is allowed and marked late")
    ladder: list[tuple[Rung, pendulum.DateTime, bool]] = []
    if due is not None and rule.ladder:
        fired = _fired(case, which)
        ladder = [(r, t, k in fired) for r, t, k in st.schedule(which, rule.ladder, due)]
    return DueExplanation(case_id=case_id, stage=which, due=due, state=state,
                          steps=tuple(steps), rungs=tuple(ladder))


def _stage_arg(stage: Stage | str) -> Stage:
    try:
        return Stage(stage)
    except ValueError:
        raise InputError(f"unknown stage {stage!r}; stages are: "
                         f"{', '.join(s.value for s in Stage)}") from None


# -- extensions ---------------------------------------------------------------------------------


def extend(campaign: Campaign, case_id: str, stage: Stage | str, until: _dt.datetime,
           reason: str, actor: Actor) -> Case:
    """Extend one case's due time for ``stage`` to ``until``, with a reason (an event).

    Only the roles the policy permits for ``extend`` (default: the organizer) may. The new
    time must be later than the current one; the stage must not be behind the case.
    Refusals are :class:`TransitionRefused` (``not_permitted``, ``missing_data``,
    ``wrong_stage``, ``no_deadline``, ``not_later``) and change nothing.
    """
    which = _stage_arg(stage)
    when = ensure_aware(until, what="the extended due time", tz=campaign.policy.tz)
    st = _state(campaign)
    _, iso = _campaign_now(campaign)
    case = campaign.case(case_id)

    def refuse(code: str, message: str) -> TransitionRefused:
        error = TransitionRefused(code, message, case_id=case_id, event=EXTEND_EVENT)
        refuse_fn = getattr(campaign, "_refuse", None)
        if refuse_fn is not None:
            refused: TransitionRefused = refuse_fn(case, EXTEND_EVENT, actor, error, iso)
            return refused
        return error

    permitted = campaign.policy.permissions.get(EXTEND_EVENT, frozenset({"organizer"}))
    held = set(actor.roles) & set(permitted)
    if not held:
        names = ", ".join(sorted(permitted)) or "nobody"
        raise refuse("not_permitted",
                     f"{actor.id} may not extend a deadline (延期): it needs the role {names}")
    if not isinstance(reason, str) or not reason.strip():
        raise refuse("missing_data", "an extension needs a reason (延期理由): reason=\"...\"")
    if which.order < case.stage.order or which is Stage.CLOSED:
        raise refuse("wrong_stage",
                     f"the case has left {which.label} ({which.value}); only its current or a "
                     "later stage can be extended")
    current = st.due(case, which)
    if current is None:
        raise refuse("no_deadline",
                     f"{which.label} ({which.value}) has no due time for this case to extend")
    if when <= current:
        raise refuse("not_later",
                     f"{fmt_time(when)} is not later than the current due time "
                     f"{fmt_time(current)}; an extension must move the deadline later")
    after = case.copy()
    extensions = dict(after.data.get("extensions") or {})
    extensions[which.value] = {
        "until": when.isoformat(), "reason": reason, "by": actor.id, "at": iso,
        "previous": current.isoformat(),
    }
    after.data["extensions"] = extensions
    record = EventRecord.make(
        campaign.id, case.case_id, case.version + 1, EXTEND_EVENT, actor.id, min(held), iso,
        case.stage.value, case.stage.value, reason,
        {"stage": which.value, "until": when.isoformat(), "previous_due": current.isoformat()},
        case.last_hash,
    )
    after.version = case.version + 1
    after.last_hash = record.hash
    extras = commit_extras(campaign, after, case.stage)
    error = campaign.store.commit([_commit(after, case.version, (record,), extras, campaign)])[0]
    if error is not None:
        raise error
    result = after.copy().bind(campaign.store)
    after_commit = getattr(campaign, "_after_commit", None)
    if after_commit is not None:
        after_commit((record,), result)
    return result


def _campaign_now(campaign: Campaign) -> tuple[pendulum.DateTime, str]:
    inner = getattr(campaign, "_now", None)
    if inner is not None:
        now, iso = inner()
        return now, iso
    now = _now(campaign, None)
    return now, now.isoformat()

