"""The sweep: fire every rung that is due, exactly once, and tell the hooks."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

import attrs
import pendulum

from reviewflow import _corrections
from reviewflow._chain import seal
from reviewflow._deadlines.results import FiredRung, SweepResult
from reviewflow._deadlines.rows import (
    _CHUNK,
    _SYSTEM_ROLE,
    RUNG_EVENT,
    SYSTEM_ACTOR,
    to_us,
)
from reviewflow._deadlines.state import _commit, _pending, _schedule_row, _State, _state
from reviewflow.calendar import in_zone
from reviewflow.clock import ensure_aware, in_zone_of
from reviewflow.deadlines import Rung, fmt_time, ladder_from_json
from reviewflow.exceptions import ConflictError, ReviewflowError
from reviewflow.model import Case, EventRecord, Stage
from reviewflow.store.base import Commit
from reviewflow.store.rows import RungMark, RungSchedule

if TYPE_CHECKING:
    from reviewflow.campaign import Campaign


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
    if now is None:  # the clock's answer, read as every step reads it (clock.in_zone_of)
        return in_zone_of(campaign.clock.now(), pendulum.timezone(tz))
    return ensure_aware(now, what="now", tz=tz)


def _rung_step(campaign: Campaign, st: _State, case: Case, now: pendulum.DateTime,
               iso: str | None = None) -> _RungStep | None:
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
    if iso is None:
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
        record = seal(
            campaign.id, case.case_id, seq, RUNG_EVENT, SYSTEM_ACTOR.id, _SYSTEM_ROLE, iso,
            stage.value, stage.value, None, _corrections.mark(data, campaign.clock), prev,
        )
        prev = record.hash
        records.append(record)
        fired.append(FiredRung(case_id=case.case_id, stage=stage, rung=rung, due=due,
                               fire_at=fire_at, seq=seq))
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
    if after.stage is stage:
        # The rungs still pending are those after the ones just fired (firing order).
        rest = pending[len(fired):]
        extras.append(RungSchedule(
            campaign_id=campaign.id, case_id=case.case_id, stage=stage.value,
            due_us=due_us, next_fire_us=to_us(rest[0][1]) if rest else None,
        ))
    else:
        row = _schedule_row(campaign, st, after, force=True)
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
    return seal(
        campaign.id, case.case_id, seq, "return_for_revision", SYSTEM_ACTOR.id, _SYSTEM_ROLE,
        iso, Stage.APPROVAL.value, case.stage.value, reason,
        _corrections.mark({"at_level": level + 1, "automatic": True}, campaign.clock),
        case.last_hash,
    )


def _candidates(campaign: Campaign, st: _State, until: pendulum.DateTime, *, overdue: bool,
                limit: int | None = None) -> list[str]:
    store = campaign.store
    bound = to_us(until)
    if overdue:
        return store.deadline_overdue(campaign.id, bound, limit)
    return store.deadline_due(campaign.id, bound, limit)


def sweep(campaign: Campaign, now: _dt.datetime | None = None, *, limit: int | None = None,
          retries: int = 3) -> SweepResult:
    """Fire every rung that is due at ``now`` (default: the campaign's clock), exactly once.

    Each case's rungs are committed as ``deadline_rung`` events with their marks, under the
    version check; then ``reviewflow_deadline_rung`` is called for each. A case another
    writer changed first is reloaded and tried again (up to ``retries`` times). ``limit``
    caps the number of cases taken in this call (the rest wait for the next sweep).

    The cases go in batches of a thousand, each committed in one transaction. On a
    database server (PostgreSQL, MySQL) the next batch is loaded and built while the
    previous one commits (in a worker thread: the server's work and the sweep's Python
    work overlap); hooks are always called from the calling thread, batch by batch, after
    each commit.
    """
    at = _now(campaign, now)
    st = _state(campaign)
    ids = _candidates(campaign, st, at, overdue=False, limit=limit)
    store = campaign.store
    run = _Run(campaign, retries)
    todo = ids
    # On a database server the next batch is built while one commits; SQLite's own work
    # runs in this process, under the same interpreter lock: nothing would overlap.
    pipelined = store.server and len(ids) > _CHUNK
    while todo:
        run.retry = []
        if pipelined:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reviewflow-sweep") as pool:
                _pipeline(run, st, todo, at, pool)
        else:
            for start in range(0, len(todo), _CHUNK):
                steps = _build(campaign, st, todo[start:start + _CHUNK], at)
                if steps:
                    run.finish(steps, store.commit([s.commit for s in steps]))
        todo = run.retry
        run.attempt += 1
    return SweepResult(now=at, fired=tuple(run.fired), failed=tuple(run.failed),
                       conflicts=run.conflicts, candidates=len(ids))


class _Run:
    """What one sweep has done so far: rungs fired, cases failed, cases to retry."""

    __slots__ = ("attempt", "campaign", "conflicts", "failed", "fired", "retries", "retry")

    def __init__(self, campaign: Campaign, retries: int) -> None:
        self.campaign = campaign
        self.retries = retries
        self.attempt = 0
        self.conflicts = 0
        self.fired: list[FiredRung] = []
        self.failed: list[tuple[str, ReviewflowError]] = []
        self.retry: list[str] = []

    def finish(self, steps: Sequence[_RungStep], errors: Sequence[Exception | None]) -> None:
        """Sort a committed batch's outcomes; tell the hooks of the steps that committed."""
        done: list[_RungStep] = []
        for step, error in zip(steps, errors, strict=True):
            if error is None:
                self.fired.extend(step.fired)
                done.append(step)
            elif isinstance(error, ConflictError) and self.attempt < self.retries:
                self.conflicts += 1
                self.retry.append(step.case_id)
            else:
                self.failed.append((step.case_id, error if isinstance(error, ReviewflowError)
                                    else ReviewflowError(str(error))))
        _deliver(self.campaign, done)


def _build(campaign: Campaign, st: _State, ids: Sequence[str], at: pendulum.DateTime
           ) -> list[_RungStep]:
    """Load a batch of cases (one query on a database) and build their rung steps."""
    store = campaign.store
    loaded = store.get_many(campaign.id, ids)
    steps: list[_RungStep] = []
    iso = at.isoformat()  # the same for every case of the sweep
    for case_id in ids:
        case = loaded.get(case_id)
        if case is None:
            continue
        step = _rung_step(campaign, st, case, at, iso)
        if step is not None:
            steps.append(step)
    return steps


def _pipeline(run: _Run, st: _State, todo: Sequence[str], at: pendulum.DateTime,
              pool: ThreadPoolExecutor) -> None:
    """Build batch n+1 while batch n commits in ``pool``; finish batches in order."""
    store = run.campaign.store
    flight: tuple[list[_RungStep], Future[list[Exception | None]]] | None = None
    try:
        for start in range(0, len(todo), _CHUNK):
            steps = _build(run.campaign, st, todo[start:start + _CHUNK], at)
            landed = flight
            flight = None
            errors = landed[1].result() if landed is not None else None
            if steps:
                flight = (steps, pool.submit(store.commit, [s.commit for s in steps]))
            if landed is not None and errors is not None:
                run.finish(landed[0], errors)
        if flight is not None:
            landed, flight = flight, None
            run.finish(landed[0], landed[1].result())
    finally:
        if flight is not None:
            # Something failed while a batch was committing: let it land (or not) before
            # the error goes up; hooks of what it committed stay in the outbox for
            # dispatch_pending().
            wait([flight[1]])


def _deliver(campaign: Campaign, steps: Sequence[_RungStep]) -> None:
    """Tell the hooks of committed rung steps (through the one delivery path,
    :func:`reviewflow._delivery.deliver`), hold the failures, then mark the events dispatched."""
    if not steps:
        return
    from reviewflow._engine import dispatch as _delivery

    engine = campaign._engine
    has_hooks = bool(getattr(campaign, "_has_hooks", False))
    dispatched: list[str] = []
    offered: list[EventRecord] = []
    failed: list[tuple[EventRecord, Any]] = []
    for step in steps:
        if has_hooks:
            case = step.after.bind(campaign.store)
            for record in step.records:
                failed += [(record, f) for f in _delivery.deliver(engine, case, record)]
        dispatched.extend(r.event_id for r in step.records)
        offered.extend(step.records)
    if failed:  # kept for dispatch_pending() to try again, as the events are marked
        _delivery.hold(engine, failed, offered)
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
