"""THE step path: guard → handler → machine → seal → commit → outbox → hooks.

Every step of a campaign goes through :class:`Engine`: ``fire`` and ``fire_many`` (steps
that move the stage, checked by the guard and an event handler), and ``side_step`` /
``side_step_many`` (steps that keep the stage: extensions, rungs, ballots, publication),
which the features call through the :class:`~reviewflow._engine.context.StepContext`
the engine implements. A refused step changes nothing; it is journaled and raises
:class:`TransitionRefused`. Hooks are told only after the commit (see
:mod:`reviewflow._engine.dispatch`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pendulum
import pluggy

from reviewflow import _corrections, _ids
from reviewflow import hooks as _hooks
from reviewflow import permissions as _permissions
from reviewflow._chain import seal as _seal
from reviewflow._engine import dispatch as _dispatch
from reviewflow._engine.context import HookFailure, Redeliver, Route, SideStep
from reviewflow._engine.deadline_work import DeadlineWork
from reviewflow._engine.machine import Lifecycle
from reviewflow._engine.results import FireResult, Permission
from reviewflow._lifecycle import FIRED
from reviewflow._steps import HANDLERS
from reviewflow.calendar import WorkdayCalendar, calendar_from_policy
from reviewflow.clock import Clock, in_zone_of
from reviewflow.exceptions import (
    ConflictError,
    IdempotencyKeyReused,
    InputError,
    PluginError,
    ReviewflowError,
    TransitionRefused,
    UnknownCaseError,
)
from reviewflow.model import Actor, Case, EventRecord, Stage
from reviewflow.policy import Policy
from reviewflow.store.base import Commit, Refusal, Store

__all__ = ["Engine", "fingerprint"]

log = logging.getLogger("reviewflow")

#: The events fire takes (the lifecycle table's), in order.
_FIRED = {e.name: e for e in FIRED}
_VALUE = {stage: stage.value for stage in Stage}
_LIFECYCLE: Lifecycle | None = None


def _lifecycle() -> Lifecycle:
    global _LIFECYCLE  # one shared machine for every campaign
    if _LIFECYCLE is None:
        _LIFECYCLE = Lifecycle()
    return _LIFECYCLE


class Engine:
    """One campaign's step path; implements :class:`~reviewflow._engine.context.StepContext`.

    ``facade`` is the public object hooks receive as ``campaign=`` (the engine never
    calls it).
    """

    def __init__(self, policy: Policy, *, clock: Clock, store: Store, campaign_id: str,
                 audit_key: bytes | None, calendar: WorkdayCalendar | None,
                 facade: object) -> None:
        self.campaign_id = campaign_id
        self.store = store
        self.clock = clock
        self.audit_key = audit_key
        #: A host's working-day calendar; None: the policy's [calendar].
        self.host_calendar = calendar
        self.facade = facade
        self._last_now: pendulum.DateTime | None = None
        self._last_iso = ""
        self._lifecycle = _lifecycle()
        self.pm = pluggy.PluginManager(_hooks.PROJECT)
        self.pm.add_hookspecs(_hooks)
        self.has_hooks = False
        #: Failures of hook implementations, newest last (the steps they heard of stand).
        self.plugin_errors: list[PluginError] = []
        #: When a failed delivery is tried again by dispatch_pending().
        self.delivery_backoff = _dispatch.Backoff()
        #: Event name -> how its records are told (registered by features).
        self.routes: dict[str, Route] = {}
        #: Event name -> (hook, redeliver): records their feature tells after the commit.
        self.redeliverers: dict[str, tuple[str, Redeliver]] = {}
        self.set_policy(policy)

    def set_policy(self, policy: Policy) -> None:
        """Run under ``policy`` from now on (a new campaign, or an amendment)."""
        self.policy = policy
        self._policy_calendar: WorkdayCalendar | None = None
        self._tz = pendulum.timezone(policy.tz)
        self._last_now = None
        opens = policy.stage(Stage.MEETING).opens
        self.meeting_opens: _dt.date | None = (
            None if opens is None else opens.in_timezone(self._tz).date())
        #: Due times, caches and the index rows of a commit: this campaign's, under this policy.
        self.deadline_work = DeadlineWork(self, policy)

    @property
    def calendar(self) -> WorkdayCalendar:
        """The working-day calendar: the host's, or the policy's ``[calendar]``."""
        if self.host_calendar is not None:
            return self.host_calendar
        if self._policy_calendar is None:
            self._policy_calendar = calendar_from_policy(self.policy.calendar)
        return self._policy_calendar

    # ------------------------------------------------------------------ plugins and hooks

    def register(self, plugin: object, name: str | None) -> None:
        """Register an object carrying ``reviewflow_*`` hook implementations."""
        from reviewflow._plugins import check_plugin

        name = check_plugin(self.pm, plugin, name)
        try:
            self.pm.register(plugin, name=name)
        except ValueError as exc:
            raise PluginError(name or repr(plugin), "register", exc) from exc
        except pluggy.PluginValidationError as exc:
            raise PluginError(name or repr(plugin), "register", exc) from exc
        self.has_hooks = True

    def plugin_names(self) -> frozenset[str]:
        """The registered plugins' names."""
        return frozenset(name for name, _ in self.pm.list_name_plugin())

    @property
    def _outbox(self) -> bool:
        """Whether committed events go through the outbox (durable store, or someone listens)."""
        return self.has_hooks or self.store.durable

    def call_hook(self, hook: str, only: frozenset[str] | None = None, /,
                  **kwargs: object) -> list[HookFailure]:
        """Call each implementation of ``hook`` on its own (of the plugins named in
        ``only``, if given), with ``campaign=`` the public campaign; return the failures
        as ``(plugin, hook, error)``."""
        kwargs["campaign"] = self.facade
        caller = getattr(self.pm.hook, hook)
        failed: list[HookFailure] = []
        for impl in reversed(caller.get_hookimpls()):
            if only is not None and impl.plugin_name not in only:
                continue
            try:
                impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception as exc:
                error = PluginError(impl.plugin_name, hook, exc)
                error.__cause__ = exc
                log.exception("reviewflow: %s", error)
                self.plugin_errors.append(error)
                failed.append((impl.plugin_name, hook, exc))
        return failed

    def tell_held(self, event: str, cases: Sequence[Case], /, **kwargs: object) -> None:
        """Tell what the commits of ``event`` held back (:meth:`tell` leaves the records of
        an event with a redeliverer to its feature), once for all ``cases``, each just
        after its ``event`` step: the redeliverer's hook with ``kwargs``; failures held
        for dispatch_pending() with those records; then the records out of the outbox."""
        if not cases or not (self.has_hooks or self.store.durable):
            return
        if self.has_hooks:
            failed = self.call_hook(self.redeliverers[event][0], **kwargs)
            if failed:
                records = []
                for case in cases:
                    history = self.store.history(self.campaign_id, case.case_id)
                    if len(history) >= case.version and history[case.version - 1].event == event:
                        records.append(history[case.version - 1])
                _dispatch.hold(self, [(r, f) for r in records for f in failed], records)
        self.store.mark_dispatched(
            self.campaign_id, [f"{self.campaign_id}/{case.case_id}/{case.version}" for case in cases])

    def after_commit(self, records: Sequence[EventRecord], case: Case) -> None:
        """Tell the hooks of one committed step; take its records out of the outbox."""
        if self.has_hooks or self.store.durable:
            self.tell(((records, case),))

    def tell(self, committed: Sequence[tuple[Sequence[EventRecord], Case]]) -> None:
        """Tell the hooks of committed steps (records, case after), through the one
        delivery path; hold the failures; take the records out of the outbox."""
        if not (self.has_hooks or self.store.durable):
            return
        later = self.redeliverers
        failed: list[tuple[EventRecord, HookFailure]] = []
        offered: list[EventRecord] = []
        for records, case in committed:
            if self.has_hooks:
                failed += [(r, f) for r in records for f in _dispatch.deliver(self, case, r)]
            # Records a feature tells itself after the commit (a publication) are marked
            # by that feature, once its hook has run.
            if records and records[0].event not in later:
                offered.extend(records)
        if failed:  # kept for dispatch_pending(), as (or before) the events are marked
            _dispatch.hold(self, failed, offered)
        if offered:
            self.store.mark_dispatched(self.campaign_id, [r.event_id for r in offered])

    # ------------------------------------------------------------------ time and cases

    def now(self) -> tuple[pendulum.DateTime, str]:
        """The clock's time in the campaign's zone, and its ISO text."""
        now = self.clock.now()
        if now is self._last_now:
            return now, self._last_iso
        if now.tzinfo is not self._tz:
            now = in_zone_of(now, self._tz)
        self._last_now = now
        self._last_iso = now.isoformat()
        return now, self._last_iso

    def due(self, case: Case, stage: Stage) -> pendulum.DateTime | None:
        """The case's due time for leaving ``stage`` (extensions included), or None."""
        return self.deadline_work.due(case, stage)

    def case(self, case_id: str) -> Case:
        """The case (a snapshot bound to the store for its history)."""
        case_id = _ids.lookup(case_id)
        case = self.store.get(self.campaign_id, case_id)
        if case is None:
            raise UnknownCaseError(
                f"no case {case_id!r} in campaign {self.campaign_id!r}; open it first with "
                "open_case()"
            )
        return case

    def load_many(self, case_ids: Sequence[str]) -> dict[str, Case]:
        """Load many cases in few reads."""
        return self.store.get_many(self.campaign_id, case_ids)

    def _loaded(self, loaded: dict[str, Case], case_id: str) -> Case:
        # A batch may name a case twice: each later step needs the state after the
        # earlier one, so the second occurrence reloads through the ordinary path.
        case = loaded.pop(case_id, None)
        return case if case is not None else self.case(case_id)

    # ------------------------------------------------------------------ rules

    def roles_for(self, case: Case, actor: Actor) -> frozenset[str]:
        """The roles an actor holds for this case: ``secretary`` only for their own case."""
        return _permissions.roles_for(case, actor)

    # ------------------------------------------------------------------ the step path

    def allowed(self, case_id: str, actor: Actor) -> list[Permission]:
        """Every event with whether ``actor`` may fire it on the case now, and why not."""
        _ids.check_command(actor, None, 0)  # as fire: an Actor, or InputError
        case = self.case(case_id)
        now, iso = self.now()
        last = case.data.get("last_at")
        stale = last if last is not None and _corrections.backwards(iso, last) else None
        out = []
        for event, refusals in _permissions.allowed(self.policy, case, actor, now, self.due):
            if stale is not None:  # every step would be refused: time_backwards first
                refusals.insert(0, _corrections.time_backwards(case, event.name, iso, stale))
            out.append(Permission(
                event=event.name,
                allowed=not refusals,
                reasons=tuple(r.reason for r in refusals),
                messages=tuple(str(r) for r in refusals),
                needs=event.needs,
            ))
        return out

    def fire(self, case_id: str, event: str, actor: Actor, idempotency_key: str | None,
             retries: int, data: dict[str, Any]) -> Case:
        """Fire ``event`` on a case (see :meth:`reviewflow.Campaign.fire`)."""
        case_id = _ids.lookup(case_id)
        idempotency_key = _ids.check_command(actor, idempotency_key, retries)
        if event not in _FIRED:
            raise TransitionRefused(
                "unknown_event",
                f"unknown event {event!r}; events are: {', '.join(_FIRED)}",
                case_id=case_id, event=event,
            )
        if idempotency_key is None and not retries:  # the common path: one attempt
            case = self.store.get(self.campaign_id, case_id)
            if case is None:
                case = self.case(case_id)  # raises UnknownCaseError
            step = self.prepare(case, event, actor, data)
            error = self._commit_one(step)
            if error is not None:
                raise error
            return step.case
        fp = None
        if idempotency_key is not None:
            fp = fingerprint(event, actor, data)
            replay = self._replay(case_id, idempotency_key, fp)
            if replay is not None:
                return replay
        return self._step_with_retries(
            case_id, lambda case: self.prepare(case, event, actor, data), retries,
            idempotency_key, fp,
        )

    def _step_with_retries(
        self, case_id: str, build: Callable[[Case], Commit], retries: int,
        idempotency_key: str | None, fingerprint: str | None,
    ) -> Case:
        """Build a step on the current case and commit it; on a conflict, reload and build
        again (every rule re-checked), up to ``retries`` times."""
        attempt = 0
        while True:
            step = build(self.case(case_id))
            if idempotency_key is not None:
                step = step._replace(idempotency_key=idempotency_key, fingerprint=fingerprint)
            error = self._commit_one(step)
            if error is None:
                return step.case
            if not isinstance(error, ConflictError) or attempt >= retries:
                raise error
            attempt += 1
            if idempotency_key is not None:
                replay = self._replay(case_id, idempotency_key, fingerprint)
                if replay is not None:
                    return replay

    def _replay(self, case_id: str, key: str, fingerprint: str | None) -> Case | None:
        found = self.store.find_idempotent(self.campaign_id, key)
        if found is None:
            return None
        stored_fingerprint, stored_case, _version = found
        if stored_fingerprint != fingerprint or stored_case != case_id:
            raise IdempotencyKeyReused(
                f"idempotency key {key!r} was first used for another command "
                f"(case {stored_case!r}); use a new key for a new command"
            )
        return self.case(case_id)

    def fire_many(self, case_ids: Iterable[str], event: str, actor: Actor,
                  data: dict[str, Any]) -> list[FireResult]:
        """Fire one event on many cases (see :meth:`reviewflow.Campaign.fire_many`)."""
        _ids.check_command(actor, None, 0)
        ids = list(case_ids)
        results: dict[int, FireResult] = {}
        steps: list[tuple[int, Commit]] = []
        loaded = self.load_many(ids)
        for i, case_id in enumerate(ids):
            try:
                if event not in _FIRED:
                    raise TransitionRefused("unknown_event", f"unknown event {event!r}",
                                            case_id=case_id, event=event)
                steps.append((i, self.prepare(self._loaded(loaded, case_id), event, actor,
                                              data)))
            except ReviewflowError as exc:
                results[i] = FireResult(case_id, error=exc)
        self._commit_chunks(ids, steps, results)
        return [results[i] for i in range(len(ids))]

    def _commit_chunks(self, ids: Sequence[str], steps: Sequence[tuple[int, Commit]],
                       results: dict[int, FireResult]) -> None:
        for chunk_start in range(0, len(steps), 1000):
            chunk = steps[chunk_start:chunk_start + 1000]
            errors = self.commit([s for _, s in chunk])
            for (i, step), error in zip(chunk, errors, strict=True):
                if error is None:
                    results[i] = FireResult(ids[i], case=step.case)
                elif isinstance(error, ReviewflowError):
                    results[i] = FireResult(ids[i], error=error)
                else:  # pragma: no cover  # stores raise reviewflow errors only
                    raise error

    def commit(self, steps: Sequence[Commit], *, tell: bool = True) -> list[Exception | None]:
        """Commit steps in one write; tell the hooks of those committed (unless ``tell``
        is False: the caller tells them, with :meth:`tell`)."""
        errors = self.store.commit(steps)
        if tell and (self.has_hooks or self.store.durable):
            self.tell([(step.events, step.case) for step, error in zip(steps, errors, strict=True)
                       if error is None])
        return errors

    def step_commit(self, case: Case, expected: int, records: Sequence[EventRecord],
                    extras: Sequence[object]) -> Commit:
        """The commit of a step built on ``case`` (its new snapshot) from version ``expected``."""
        return Commit(case, expected, tuple(records), None, None, tuple(extras),
                      self.has_hooks or self.store.durable)

    def seal(self, case: Case, event: str, actor_id: str, role: str, iso: str,
             reason: str | None, data: dict[str, Any], *, source: Stage | None = None
             ) -> EventRecord:
        """Seal the next record of ``case`` (a copy being built) and move its version and
        head hash on: the one sealing and versioning of every step. The record goes from
        ``source`` (default: the case's stage) to the case's stage."""
        dest = _VALUE[case.stage]
        seq = case.version + 1
        record = _seal(
            self.campaign_id, case.case_id, seq, event, actor_id, role, iso,
            dest if source is None else _VALUE[source], dest, reason,
            _corrections.mark(data, self.clock), case.last_hash,
        )
        case.version = seq
        case.last_hash = record.hash
        return record

    def move(self, case: Case, event: str, **kwargs: Any) -> None:
        """Move ``case`` on the lifecycle by ``event`` (the caller has checked the rules)."""
        self._lifecycle.step(case, event, **kwargs)

    def _commit_one(self, step: Commit) -> Exception | None:
        """Commit one step: :meth:`commit` for a single command, without its lists."""
        error = self.store.commit([step])[0]
        if error is None and step.outbox:
            self.after_commit(step.events, step.case)
        return error

    def refuse(self, case: Case, event: str, actor: Actor, error: TransitionRefused,
               iso: str) -> TransitionRefused:
        """Journal a refusal and tell ``reviewflow_refused``; return the error to raise."""
        self.store.record_refusals([Refusal(
            campaign_id=self.campaign_id, case_id=case.case_id, event=event, actor_id=actor.id,
            roles=tuple(sorted(actor.roles)), at=iso, stage=case.stage.value,
            reason=error.reason, message=_ids.storable(str(error)),
        )])
        if self.has_hooks:  # a failure is held and retried as any other delivery
            _dispatch.hold_refusal(self, case.case_id, event, self.call_hook(
                "reviewflow_refused", case_id=case.case_id, event=event,
                actor=actor, error=error))
        return error

    def prepare(self, case: Case, event: str, actor: Actor, data: dict[str, Any]) -> Commit:
        """Check every rule and build the step on a copy of the case (its commit, with the
        new snapshot and record); raise on refusal."""
        now, iso = self.now()
        last = case.data.get("last_at")
        if last is not None and _corrections.backwards(iso, last):
            raise self.refuse(case, event, actor,
                              _corrections.time_backwards(case, event, iso, last), iso)
        role, refusals = _permissions.guard(self.policy, case, event, actor, now, self.due)
        if refusals:
            raise self.refuse(case, event, actor, refusals[0], iso)
        handler = HANDLERS[event]
        try:
            record_data, reason, machine_kwargs = handler(self, case, actor, role, data, now)
        except TransitionRefused as exc:
            raise self.refuse(case, event, actor, exc, iso) from None
        source = case.stage
        expected = case.version
        self._lifecycle.step(case, event, **machine_kwargs)
        stage = case.stage
        extras: tuple[object, ...] = ()
        if stage is not source:
            if self._late(case, source, now):
                record_data["late"] = True
                if reason is None:
                    reason = "late"
            entered = case.data.get("entered")
            case.data["entered"] = ({**entered, _VALUE[stage]: iso} if entered
                                    else {_VALUE[stage]: iso})
        case.data["last_at"] = iso
        record = self.seal(case, event, actor.id, role, iso, reason, record_data, source=source)
        if stage is not source:
            # A case's deadline index entry depends on its stage (and on extensions and
            # fired rungs, whose own steps write it): only a step that moves the stage
            # rewrites it.
            extras = self.deadline_work.commit_extras(case, source)
        return Commit(case, expected, (record,), None, None, extras,
                      self.has_hooks or self.store.durable)

    def _late(self, case: Case, stage: Stage, now: pendulum.DateTime) -> bool:
        rule = self.policy.stage(stage)
        if rule.due is None or rule.hard:
            return False
        due = self.due(case, stage)
        return due is not None and now > (due + rule.grace if rule.grace else due)

    # ------------------------------------------------------------------ side steps

    def side_step(
        self,
        case_id: str,
        event: str,
        *,
        actor: Actor,
        role: str,
        apply: SideStep,
        retries: int = 3,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> Case:
        """Record a step that does not move the stage (an extension, a ballot batch, a rung,
        a publication) on the case's chain, atomically, with the same version check.

        ``apply(case, now)`` checks and changes ``case.data`` (a copy) and returns
        ``(record data, reason, extras)``; it raises :class:`TransitionRefused` to refuse,
        which is journaled and changes nothing. ``extras`` are rows the store writes in
        the same transaction (see :class:`~reviewflow.store.Commit`). A conflict reloads
        the case and calls ``apply`` again, up to ``retries`` times.
        """
        return self._step_with_retries(
            case_id, lambda case: self.build_side_step(case, event, actor, role, apply),
            retries, idempotency_key, fingerprint,
        )

    def side_step_many(
        self, case_ids: Iterable[str], event: str, *, actor: Actor, role: str, apply: SideStep,
    ) -> list[FireResult]:
        """Record one side step on many cases, committed in batches; one result per case."""
        ids = list(case_ids)
        results: dict[int, FireResult] = {}
        steps: list[tuple[int, Commit]] = []
        loaded = self.load_many(ids)
        for i, case_id in enumerate(ids):
            try:
                steps.append((i, self.build_side_step(self._loaded(loaded, case_id), event,
                                                      actor, role, apply)))
            except ReviewflowError as exc:
                results[i] = FireResult(case_id, error=exc)
        self._commit_chunks(ids, steps, results)
        return [results[i] for i in range(len(ids))]

    def build_side_step(self, case: Case, event: str, actor: Actor, role: str,
                        apply: SideStep) -> Commit:
        """Build (not commit) a side step on ``case`` (a copy): the one seal and version."""
        now, iso = self.now()
        last = case.data.get("last_at")
        try:
            if last is not None and _corrections.backwards(iso, last):
                raise _corrections.time_backwards(case, event, iso, last)
            record_data, reason, extras = apply(case, now)
        except TransitionRefused as exc:
            raise self.refuse(case, event, actor, exc, iso) from None
        expected = case.version
        case.data["last_at"] = iso
        record = self.seal(case, event, actor.id, role, iso, reason, record_data)
        return Commit(case, expected, (record,), None, None, tuple(extras),
                      self.has_hooks or self.store.durable)

    # ------------------------------------------------------------------ delivery

    def dispatch_pending(self) -> int:
        """Tell the hooks what they have not heard yet (see Campaign.dispatch_pending)."""
        return _dispatch.dispatch_pending(self)

    def outbox_status(self) -> _dispatch.OutboxStatus:
        return _dispatch.status(self)

    def delivery_failures(self) -> tuple[_dispatch.DeliveryFailure, ...]:
        return _dispatch.failures(self)

    def __repr__(self) -> str:
        return f"Engine({self.campaign_id!r})"


def fingerprint(event: str, actor: Actor, data: Mapping[str, Any]) -> str:
    """The digest of a command an idempotency key stands for (event, actor, data)."""
    def default(value: Any) -> Any:
        to_json = getattr(value, "to_json", None)
        return to_json() if to_json is not None else str(value)

    try:
        text = json.dumps([event, actor.id, data], sort_keys=True, default=default,
                          ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()
    except (TypeError, ValueError, RecursionError) as exc:  # as _seal would refuse it
        raise InputError(
            f"{event}: the data cannot be recorded ({exc}); use plain JSON data: text, whole "
            "numbers of at most 4,300 digits, lists and tables; nothing was changed",
            reason="invalid_data") from None
