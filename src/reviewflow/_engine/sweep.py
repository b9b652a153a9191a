"""The sweep, the forecast and the explanation of a due time.

The sweep fires every rung that is due, exactly once (see
:mod:`reviewflow._engine.deadline_work`). Its steps are built and told by the engine's own
step parts (:meth:`~reviewflow._engine.context.StepContext.seal`, ``step_commit``,
``commit``, ``tell``): one seal, one versioning, one outbox, one delivery path. The
forecast runs the same code without committing.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait

import attrs
import pendulum

from reviewflow._engine.context import StepContext
from reviewflow._engine.deadline_results import (
    DueExplanation,
    FiredRung,
    Forecast,
    OverdueCase,
    SweepResult,
)
from reviewflow._engine.deadline_work import (
    CHUNK,
    RUNG_EVENT,
    SYSTEM_ACTOR,
    SYSTEM_ROLE,
    DeadlineWork,
    fired,
    to_us,
)
from reviewflow.clock import ensure_aware, in_zone_of
from reviewflow.deadlines import Rung, deadline_status, fmt_time
from reviewflow.deadlines import explain_due as _explain_steps
from reviewflow.exceptions import ConflictError, InputError, ReviewflowError
from reviewflow.model import Case, EventRecord, Stage
from reviewflow.store.base import Commit
from reviewflow.store.rows import RungMark, RungSchedule

__all__ = ["explain_due", "forecast", "stage_arg", "sweep"]


@attrs.define(slots=True)
class RungStep:
    """The step that fires a case's due rungs: the commit, and what it fires."""

    case_id: str
    before: Case
    after: Case
    commit: Commit
    fired: list[FiredRung]
    records: list[EventRecord]


def at_time(ctx: StepContext, now: _dt.datetime | None) -> pendulum.DateTime:
    """``now`` in the campaign's zone (default: the clock, read as every step reads it)."""
    tz = ctx.policy.tz
    if now is None:
        return in_zone_of(ctx.clock.now(), pendulum.timezone(tz))
    return ensure_aware(now, what="now", tz=tz)


def stage_arg(stage: Stage | str) -> Stage:
    """A stage given by member or value; InputError for anything else."""
    try:
        return Stage(stage)
    except ValueError:
        raise InputError(f"unknown stage {stage!r}; stages are: "
                         f"{', '.join(s.value for s in Stage)}") from None


def rung_step(ctx: StepContext, work: DeadlineWork, case: Case, now: pendulum.DateTime,
              iso: str | None = None) -> RungStep | None:
    """Build the step that fires every rung of the case that is due at ``now``, or None.

    The sweep commits it; the forecast only reads what it would fire (the same code).
    """
    stage = case.stage
    due = work.due(case, stage)
    if due is None:
        return None
    pending = work.pending(case, stage, due)
    if not pending or pending[0][1] > now:
        return None
    if iso is None:
        iso = now.isoformat()
    after = case.copy()
    rungs_data = dict(after.data.get("rungs") or {})
    marks = dict(rungs_data.get(stage.value) or {})
    records: list[EventRecord] = []
    done: list[FiredRung] = []
    extras: list[object] = []
    due_iso = due.isoformat()
    due_us = to_us(due)
    for rung, fire_at, key in pending:
        if fire_at > now:
            break
        marks[key] = iso
        data = {"stage": stage.value, "rung": work.rung_json(rung), "due": due_iso,
                "fire_at": fire_at.isoformat()}
        record = ctx.seal(after, RUNG_EVENT, SYSTEM_ACTOR.id, SYSTEM_ROLE, iso, None, data)
        records.append(record)
        done.append(FiredRung(case_id=case.case_id, stage=stage, rung=rung, due=due,
                              fire_at=fire_at, seq=record.seq))
        extras.append(RungMark(campaign_id=ctx.campaign_id, case_id=case.case_id,
                               stage=stage.value, rung_id=rung.id, due_us=due_us,
                               fired_at=iso, seq=record.seq))
        if rung.auto == "mark_missed":
            missed = dict(after.data.get("missed") or {})
            missed[stage.value] = {"due": due_iso, "at": iso, "rung": rung.id}
            after.data["missed"] = missed
        elif rung.auto == "return_report" and stage is Stage.APPROVAL:
            rungs_data[stage.value] = marks
            after.data["rungs"] = rungs_data
            records.append(_return_report(ctx, after, due, iso))
            break  # the stage is left: its later rungs no longer apply
    rungs_data[stage.value] = marks
    after.data["rungs"] = rungs_data
    if after.stage is stage:
        # The rungs still pending are those after the ones just fired (firing order).
        rest = pending[len(done):]
        extras.append(RungSchedule(
            campaign_id=ctx.campaign_id, case_id=case.case_id, stage=stage.value,
            due_us=due_us, next_fire_us=to_us(rest[0][1]) if rest else None,
        ))
    else:
        row = work.schedule_row(after, force=True)
        if row is not None:
            extras.append(row)
    commit = ctx.step_commit(after, case.version, records, extras)
    return RungStep(case.case_id, case, after, commit, done, records)


def _return_report(ctx: StepContext, case: Case, due: pendulum.DateTime, iso: str) -> EventRecord:
    """Send an overdue report back to drafting (the ``return_report`` automatic action)."""
    reason = f"not signed off by the due time {fmt_time(due)}; returned automatically"
    level = len(case.data.get("signatures", ()))
    case.data["signatures"] = []
    case.data["returns"] = case.data.get("returns", 0) + 1
    ctx.move(case, "return_for_revision")
    case.data["entered"] = {**case.data.get("entered", {}), case.stage.value: iso}
    return ctx.seal(case, "return_for_revision", SYSTEM_ACTOR.id, SYSTEM_ROLE, iso, reason,
                    {"at_level": level + 1, "automatic": True}, source=Stage.APPROVAL)


def candidates(ctx: StepContext, work: DeadlineWork, until: pendulum.DateTime, *,
               overdue: bool, limit: int | None = None) -> list[str]:
    """The ids of cases with a rung due (or, ``overdue``, past their due time) at ``until``."""
    store = ctx.store
    bound = to_us(until)
    if overdue:
        return store.deadline_overdue(ctx.campaign_id, bound, limit)
    return store.deadline_due(ctx.campaign_id, bound, limit)


# -- the sweep ----------------------------------------------------------------------------------


def sweep(ctx: StepContext, work: DeadlineWork, now: _dt.datetime | None = None, *,
          limit: int | None = None, retries: int = 3) -> SweepResult:
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
    at = at_time(ctx, now)
    ids = candidates(ctx, work, at, overdue=False, limit=limit)
    run = _Run(ctx, retries)
    todo = ids
    # On a database server the next batch is built while one commits; SQLite's own work
    # runs in this process, under the same interpreter lock: nothing would overlap.
    pipelined = ctx.store.server and len(ids) > CHUNK
    while todo:
        run.retry = []
        if pipelined:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reviewflow-sweep") as pool:
                _pipeline(run, work, todo, at, pool)
        else:
            for start in range(0, len(todo), CHUNK):
                steps = _build(ctx, work, todo[start:start + CHUNK], at)
                if steps:
                    run.finish(steps, ctx.commit([s.commit for s in steps], tell=False))
        todo = run.retry
        run.attempt += 1
    return SweepResult(now=at, fired=tuple(run.fired), failed=tuple(run.failed),
                       conflicts=run.conflicts, candidates=len(ids))


class _Run:
    """What one sweep has done so far: rungs fired, cases failed, cases to retry."""

    __slots__ = ("attempt", "conflicts", "ctx", "failed", "fired", "retries", "retry")

    def __init__(self, ctx: StepContext, retries: int) -> None:
        self.ctx = ctx
        self.retries = retries
        self.attempt = 0
        self.conflicts = 0
        self.fired: list[FiredRung] = []
        self.failed: list[tuple[str, ReviewflowError]] = []
        self.retry: list[str] = []

    def finish(self, steps: Sequence[RungStep], errors: Sequence[Exception | None]) -> None:
        """Sort a committed batch's outcomes; tell the hooks of the steps that committed."""
        done: list[tuple[Sequence[EventRecord], Case]] = []
        store = self.ctx.store
        for step, error in zip(steps, errors, strict=True):
            if error is None:
                self.fired.extend(step.fired)
                done.append((step.records, step.after.bind(store)))
            elif isinstance(error, ConflictError) and self.attempt < self.retries:
                self.conflicts += 1
                self.retry.append(step.case_id)
            else:
                self.failed.append((step.case_id, error if isinstance(error, ReviewflowError)
                                    else ReviewflowError(str(error))))
        if done:
            self.ctx.tell(done)


def _build(ctx: StepContext, work: DeadlineWork, ids: Sequence[str], at: pendulum.DateTime
           ) -> list[RungStep]:
    """Load a batch of cases (one query on a database) and build their rung steps."""
    loaded = ctx.load_many(ids)
    steps: list[RungStep] = []
    iso = at.isoformat()  # the same for every case of the sweep
    for case_id in ids:
        case = loaded.get(case_id)
        if case is None:
            continue
        step = rung_step(ctx, work, case, at, iso)
        if step is not None:
            steps.append(step)
    return steps


def _pipeline(run: _Run, work: DeadlineWork, todo: Sequence[str], at: pendulum.DateTime,
              pool: ThreadPoolExecutor) -> None:
    """Build batch n+1 while batch n commits in ``pool``; finish batches in order."""
    ctx = run.ctx
    flight: tuple[list[RungStep], Future[list[Exception | None]]] | None = None
    try:
        for start in range(0, len(todo), CHUNK):
            steps = _build(ctx, work, todo[start:start + CHUNK], at)
            landed = flight
            flight = None
            errors = landed[1].result() if landed is not None else None
            if steps:
                flight = (steps, pool.submit(ctx.commit, [s.commit for s in steps], tell=False))
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


# -- forecast and explain -------------------------------------------------------------------


def forecast(ctx: StepContext, work: DeadlineWork, at: _dt.datetime) -> Forecast:
    """Say, without changing anything, which cases will be overdue at ``at`` and which rungs
    a sweep at ``at`` would fire (the same code as :func:`sweep`)."""
    when = at_time(ctx, at)
    store = ctx.store
    rungs: list[FiredRung] = []
    for case_id in candidates(ctx, work, when, overdue=False):
        case = store.get(ctx.campaign_id, case_id)
        if case is None:
            continue
        step = rung_step(ctx, work, case, when)
        if step is not None:
            rungs.extend(attrs.evolve(f, seq=None) for f in step.fired)
    overdue: list[OverdueCase] = []
    for case_id in candidates(ctx, work, when, overdue=True):
        case = store.get(ctx.campaign_id, case_id)
        if case is None:
            continue
        stage = case.stage
        due, state = deadline_status(work.policy.stage(stage), work.context(case, stage), when)
        if due is not None and state.is_late:
            overdue.append(OverdueCase(case_id=case_id, stage=stage, due=due, state=state))
    overdue.sort(key=lambda o: (o.due, o.case_id))
    return Forecast(at=when, overdue=tuple(overdue), rungs=tuple(rungs))


def explain_due(ctx: StepContext, work: DeadlineWork, case_id: str,
                stage: Stage | str | None = None) -> DueExplanation:
    """Explain how the case's due time for ``stage`` (default: its current stage) was
    derived, step by step (the pure rule, :func:`reviewflow.deadlines.explain_due`), where
    it stands now, and its ladder."""
    case = ctx.case(case_id)
    which = case.stage if stage is None else stage_arg(stage)
    rule = work.policy.stage(which)
    context = work.context(case, which)
    now = at_time(ctx, None)
    due, state = deadline_status(rule, context, now)
    steps = _explain_steps(rule, context)
    if rule.hard and due is not None:
        grace = f" (+ grace {rule.grace.in_words()})" if rule.grace else ""
        steps.append(f"hard deadline{grace}: the step out of {which.value} is refused after it")
    elif due is not None:
        steps.append("soft deadline: a later step is allowed and marked late")
    ladder: list[tuple[Rung, pendulum.DateTime, bool]] = []
    if due is not None and rule.ladder:
        marks = fired(case, which)
        ladder = [(r, t, k in marks) for r, t, k in work.schedule(which, rule.ladder, due)]
    return DueExplanation(case_id=case_id, stage=which, due=due, state=state,
                          steps=tuple(steps), rungs=tuple(ladder))
