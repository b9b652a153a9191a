"""The campaign: one year's assessment, its cases, and the one path every step takes.

Every command goes the same way: load the case, check the rules (stage, role,
deadline, data), move the stage on the shared lifecycle, seal an event record
onto the case's hash chain, commit case and event atomically with a version
check, and only then tell the hooks. A refused command changes nothing; it is
kept in the refusal journal and raises :class:`TransitionRefused`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any

import attrs
import pendulum
import pluggy

from reviewflow import _corrections, _delivery, _ids
from reviewflow import hooks as _hooks
from reviewflow import permissions as _permissions
from reviewflow._chain import seal as _seal
from reviewflow._lifecycle import FIRED
from reviewflow._machine import Lifecycle
from reviewflow._steps import HANDLERS
from reviewflow.anchoring import Anchor
from reviewflow.audit import VerifyReport
from reviewflow.ballots import CloseResult, IssuedToken, PaperCount
from reviewflow.clock import Clock, SystemClock, in_zone_of
from reviewflow.exceptions import (
    ConflictError,
    IdempotencyKeyReused,
    InputError,
    PluginError,
    ReviewflowError,
    TransitionRefused,
    UnknownCaseError,
)
from reviewflow.model import GENESIS_HASH, Actor, Case, EventRecord, Stage
from reviewflow.policy import Policy
from reviewflow.scoring import CaseResult
from reviewflow.store.base import Commit, Refusal, Store

__all__ = ["Campaign", "FireResult", "Permission"]

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


@attrs.frozen
class Permission:
    """Whether an actor may fire an event on a case now, and if not, every reason why."""

    event: str
    allowed: bool
    reasons: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    #: Data the event will ask for when fired (not checked by :meth:`Campaign.allowed`).
    needs: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.allowed:
            return f"{self.event}: allowed"
        return f"{self.event}: refused ({'; '.join(self.messages)})"


@attrs.frozen
class FireResult:
    """The outcome of one case in a batch: the case after the step, or the error."""

    case_id: str
    case: Case | None = None
    error: ReviewflowError | None = None

    @property
    def ok(self) -> bool:
        """True when the step was committed."""
        return self.error is None


#: A side step: ``apply(case, now) -> (record data, reason, extras)``; see Campaign._record.
SideStep = Callable[[Case, pendulum.DateTime], tuple[dict[str, Any], str | None, Sequence[Any]]]


class Campaign:
    """One year's assessment (一轮述职评议考核): a policy, a clock, a store and hooks.

    ``store`` is a :class:`~reviewflow.store.Store`, a database URL
    (``sqlite:///reviewflow.db``, ``postgresql+psycopg://...``, ``mysql+pymysql://...``)
    or None for memory. ``campaign_id`` tells campaigns in one store apart
    (default: the policy's year). ``audit_key`` (bytes or text, kept outside the
    database: see :func:`reviewflow.audit_key_from_env`) seals a keyed MAC on every event
    and anchor, which :meth:`verify` checks.
    """

    def __init__(
        self,
        policy: Policy,
        *,
        clock: Clock | None = None,
        store: Store | str | None = None,
        campaign_id: str | None = None,
        plugins: Iterable[object] = (),
        calendar: Any = None,
        audit_key: bytes | str | None = None,
    ) -> None:
        if not isinstance(policy, Policy):
            raise InputError(f"policy must be a reviewflow.Policy, got {type(policy).__name__}; "
                             "use Policy.default(year=...) or load_policy(path)")
        self.policy = policy
        self.clock: Clock = clock if clock is not None else SystemClock(policy.tz)
        self.id = campaign_id if campaign_id is not None else str(policy.year)
        self.store: Store = _open_store(store)
        self.store.setup_campaign(self.id, policy.to_json())
        #: The audit key (kept outside the database) every commit seals event MACs with.
        self._audit_key: bytes | None = None
        if audit_key is not None:
            from reviewflow.anchoring import attach_key

            self._audit_key = attach_key(self.store, audit_key)
        self._last_now: pendulum.DateTime | None = None
        self._last_iso = ""
        self._tz = pendulum.timezone(policy.tz)
        from reviewflow import _policy_seal

        try:
            _policy_seal.check_on_open(self)  # sealed on first open; another policy is refused
        except BaseException:
            if isinstance(store, str):
                self.store.close()  # opened here from a URL: not left open
            raise
        self._lifecycle = _lifecycle()
        self._pm = pluggy.PluginManager(_hooks.PROJECT)
        self._pm.add_hookspecs(_hooks)
        self._has_hooks = False
        #: Failures of hook implementations, newest last (the steps they heard of stand).
        self.plugin_errors: list[PluginError] = []
        #: When a failed delivery is tried again by :meth:`dispatch_pending`.
        self.delivery_backoff = _delivery.Backoff()
        if calendar is not None and not hasattr(calendar, "is_working_day"):
            raise InputError(f"calendar must have is_working_day(date), got {calendar!r}; "
                             "use reviewflow.WorkingCalendar.china(...) or your own")
        #: A host's working-day calendar; None: the policy's [calendar] (China by default).
        self._calendar: Any = calendar
        #: The deadline work's per-campaign state (calendar, caches), made when first needed.
        self._deadline_state: Any = None
        opens = policy.stage(Stage.MEETING).opens
        self._meeting_opens = None if opens is None else opens.in_timezone(self._tz).date()
        from reviewflow import _deadline_ops

        # Due times (fixed or relative, with extensions) come from the deadline module.
        self._resolve_due = _deadline_ops.resolve_due
        # Deadline index rows ride on every commit; see reviewflow._deadline_ops.
        self._deadline_extras = _deadline_ops.commit_extras
        for plugin in plugins:
            self.register(plugin)
        if policy.plugins:
            from reviewflow._plugins import load_named

            for name, plugin in load_named(policy.plugins):
                self.register(plugin, name=name)

    # ------------------------------------------------------------------ plugins and hooks

    def register(self, plugin: object, *, name: str | None = None) -> None:
        """Register an object carrying ``reviewflow_*`` hook implementations.

        ``name`` identifies the plugin in the delivery log, which outlives the process:
        give the same name after a restart (default: the dotted name of the plugin's class,
        or of the module; ``#2``, ``#3`` for more of the same class). Wrappers
        (``hookimpl(wrapper=True)`` or ``hookwrapper=True``) are refused with a
        :class:`PluginError`: each implementation is called on its own, so that one that
        fails is retried alone, and a wrapper would not run around the others.
        """
        from reviewflow._plugins import check_plugin

        name = check_plugin(self._pm, plugin, name)
        try:
            self._pm.register(plugin, name=name)
        except ValueError as exc:
            raise PluginError(name or repr(plugin), "register", exc) from exc
        except pluggy.PluginValidationError as exc:
            raise PluginError(name or repr(plugin), "register", exc) from exc
        self._has_hooks = True

    @property
    def _outbox(self) -> bool:
        """Whether committed events go through the outbox (durable store, or someone listens)."""
        return self._has_hooks or self.store.durable

    def _call_hook(self, hook: str, only: frozenset[str] | None = None, /,
                   **kwargs: Any) -> list[tuple[str, str, BaseException]]:
        """Call each implementation of ``hook`` on its own (of the plugins named in
        ``only``, if given); return the failures as ``(plugin, hook, error)``."""
        caller = getattr(self._pm.hook, hook)
        failed: list[tuple[str, str, BaseException]] = []
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

    def _after_commit(self, records: Sequence[EventRecord], case: Case) -> None:
        if not self._outbox:
            return
        held = records[0].event == "publish_results"  # marked by the publication, once
        # reviewflow_results_published has run
        if self._has_hooks:
            failed = [(r, f) for r in records for f in _delivery.deliver(self, case, r)]
            if failed:  # kept for dispatch_pending(), as (or before) the events are marked
                _delivery.hold(self, failed, () if held else records)
        if not held:
            self.store.mark_dispatched(self.id, [r.event_id for r in records])

    def dispatch_pending(self) -> int:
        """Tell the hooks what they have not heard yet: events a crash left in the outbox
        (to every plugin), and failed deliveries whose next try has come (to the plugin
        that failed, alone; see :attr:`delivery_backoff`).

        Delivery is at least once: each record carries ``event_id`` for de-duplication.
        Returns the number of deliveries made.
        """
        return _delivery.dispatch_pending(self)

    def outbox_status(self) -> _delivery.OutboxStatus:
        """Return what the hooks have not heard yet: the events never offered, and each
        failed delivery (plugin, hook, attempts, last error, next try)."""
        return _delivery.status(self)

    def delivery_failures(self) -> tuple[_delivery.DeliveryFailure, ...]:
        """Return the failed deliveries waiting for their next try, soonest first."""
        return _delivery.failures(self)

    # ------------------------------------------------------------------ time

    def _now(self) -> tuple[pendulum.DateTime, str]:
        now = self.clock.now()
        if now is self._last_now:
            return now, self._last_iso
        if now.tzinfo is not self._tz:
            now = in_zone_of(now, self._tz)
        self._last_now = now
        self._last_iso = now.isoformat()
        return now, self._last_iso

    def due(self, case: Case, stage: Stage) -> pendulum.DateTime | None:
        """Return the case's due time for leaving ``stage`` (extensions included), or None."""
        return self._resolve_due(self, case, stage)

    # ------------------------------------------------------------------ cases

    def open_case(
        self,
        case_id: str,
        *,
        organization: str,
        secretary: Actor,
        guidance_group: str | None = None,
        previous_case_id: str | None = None,
        carried_over: Sequence[str] = (),
        actor: Actor | None = None,
    ) -> Case:
        """Open a case for one organisation and its secretary; return it (in research).

        ``carried_over`` lists last year's problems that this year's report must address;
        with ``previous_case_id`` (a case of an earlier campaign in the same store) they
        are taken from that case's report when not given.
        """
        return self.open_cases([{
            "case_id": case_id, "organization": organization, "secretary": secretary,
            "guidance_group": guidance_group, "previous_case_id": previous_case_id,
            "carried_over": carried_over,
        }], actor=actor)[0]

    def open_cases(self, rows: Iterable[Mapping[str, Any]], *, actor: Actor | None = None) -> list[Case]:
        """Open many cases in one write (all or none); each row has :meth:`open_case`'s arguments."""
        _now, iso = self._now()
        if actor is not None:
            _ids.check_command(actor, None, 0)
        opener = actor or Actor("system", "reviewflow", roles={"organizer"})
        commits: list[Commit] = []
        for i, row in enumerate(rows):
            commits.append(self._opening(row, i, opener, iso))
        self.store.insert_cases(commits)
        cases = []
        outbox = self._has_hooks or self.store.durable
        for c in commits:
            # The store keeps its own snapshot (as for every commit): the caller gets ours.
            case = c.case.bind(self.store)
            if outbox:
                self._after_commit(c.events, case)
            cases.append(case)
        return cases

    def _opening(self, row: Mapping[str, Any], index: int, opener: Actor, iso: str) -> Commit:
        case_id = row.get("case_id")
        if not isinstance(case_id, str) or not case_id.strip() or len(case_id) > 200:
            raise InputError(f"row {index + 1}: case_id must be a non-empty string of at most "
                             f"200 characters, got {case_id!r}")
        case_id = _ids.identifier(case_id, f"row {index + 1}: case_id")
        organization = row.get("organization")
        if not isinstance(organization, str) or not organization.strip():
            raise InputError(f"case {case_id!r}: organization must be a non-empty string")
        organization = _ids.name(organization, f"row {index + 1}: organization")
        secretary = row.get("secretary")
        if not isinstance(secretary, Actor):
            raise InputError(f"case {case_id!r}: secretary must be a reviewflow.Actor, "
                             f"got {type(secretary).__name__}")
        group = (_ids.optional_identifier(row.get("guidance_group") or None,
                                          f"case {case_id!r}: guidance_group")
                 or self.policy.assignments.get(case_id))
        if group is not None and group not in self.policy.guidance_groups:
            raise InputError(f"case {case_id!r}: unknown guidance group {group!r}; the policy "
                             f"has: {', '.join(sorted(self.policy.guidance_groups)) or 'none'}")
        previous = _ids.optional_identifier(row.get("previous_case_id") or None,
                                            f"case {case_id!r}: previous_case_id")
        carried = row.get("carried_over") or ()
        if isinstance(carried, str) or not isinstance(carried, list | tuple) or not all(
                isinstance(p, str) for p in carried):
            raise InputError(f"case {case_id!r}: carried_over must be a list of last year's "
                             f"problems (texts), got {carried!r:.60}", reason="invalid_argument")
        carried = list(carried)
        if previous and not carried:
            carried = self._carry_over(previous)
        data: dict[str, Any] = {"entered": {Stage.RESEARCH.value: iso}, "last_at": iso}
        if group:
            data["guidance_group"] = group
        if carried:
            data["carried_over"] = [str(p) for p in carried]
        record_data: dict[str, Any] = {
            "organization": organization, "secretary": secretary.to_json(),
        }
        if group:
            record_data["guidance_group"] = group
        if previous:
            record_data["previous_case_id"] = previous
        if carried:
            record_data["carried_over"] = data["carried_over"]
        record = _seal(
            self.id, case_id, 1, "open", opener.id, _first_role(opener), iso, None,
            Stage.RESEARCH.value, None, _corrections.mark(record_data, self.clock), GENESIS_HASH,
        )
        case = Case(self.id, case_id, organization, secretary, Stage.RESEARCH, 1, record.hash,
                    data, previous)
        return Commit(case=case, expected_version=0, events=(record,), outbox=self._outbox,
                      extras=self._deadline_extras(self, case, None))

    def _carry_over(self, previous_case_id: str) -> list[str]:
        """Return last year's problems from a case of another campaign in the same store."""
        if "/" in previous_case_id:
            campaign_id, case_id = previous_case_id.split("/", 1)
        else:
            campaign_id, case_id = str(self.policy.year - 1), previous_case_id
        previous = self.store.get(campaign_id, case_id)
        if previous is None:
            return []
        report = previous.data.get("report") or {}
        return [p["description"] for p in report.get("problems", [])]

    def case(self, case_id: str) -> Case:
        """Return the case (a snapshot bound to the store for its history)."""
        case_id = _ids.lookup(case_id)
        case = self.store.get(self.id, case_id)
        if case is None:
            raise UnknownCaseError(
                f"no case {case_id!r} in campaign {self.id!r}; open it first with open_case()"
            )
        return case

    def _load_many(self, ids: Sequence[str]) -> dict[str, Case]:
        """Load many cases in few reads."""
        return self.store.get_many(self.id, ids)

    def _loaded(self, loaded: dict[str, Case], case_id: str) -> Case:
        # A batch may name a case twice: each later step needs the state after the
        # earlier one, so the second occurrence reloads through the ordinary path.
        case = loaded.pop(case_id, None)
        return case if case is not None else self.case(case_id)

    def cases(self, stage: Stage | str | None = None) -> list[Case]:
        """Return the campaign's cases, in one stage if given, ordered by case id."""
        if stage is not None:
            try:
                stage = Stage(stage)
            except ValueError:
                raise InputError(f"unknown stage {stage!r}; stages are: "
                                 f"{', '.join(s.value for s in Stage)}") from None
        return self.store.cases(self.id, None if stage is None else stage.value)

    def refusals(self, case_id: str | None = None) -> list[Refusal]:
        """Return the refusal journal (every refused command, with its reason), oldest first."""
        return self.store.refusals(self.id, None if case_id is None else _ids.lookup(case_id))

    # ------------------------------------------------------------------ rules

    def _roles_for(self, case: Case, actor: Actor) -> frozenset[str]:
        """The roles an actor holds for this case: ``secretary`` only for their own case."""
        return _permissions.roles_for(case, actor)

    def allowed(self, case_id: str, actor: Actor) -> list[Permission]:
        """List every event with whether ``actor`` may fire it on the case now, and why not.

        Changes nothing. Data an event needs (a report, a reason) is listed in ``needs``
        and checked only when the event is fired.
        """
        case = self.case(case_id)
        now, iso = self._now()
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

    # ------------------------------------------------------------------ steps

    def fire(
        self,
        case_id: str,
        event: str,
        /,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
        retries: int = 0,
        **data: Any,
    ) -> Case:
        """Fire ``event`` on a case as ``actor`` and return the case after the step.

        Raises :class:`TransitionRefused` (nothing changed) when a rule refuses it,
        :class:`ConflictError` when another writer changed the case first and
        ``retries`` reloads did not help. With ``idempotency_key``, replaying the same
        command returns the case without a second step.

        ``case_id`` and ``event`` are positional, so that every other name is the event's
        data (a data key ``case_id`` is refused as unknown data, ``invalid_data``).
        """
        case_id = _ids.lookup(case_id)
        idempotency_key = _ids.check_command(actor, idempotency_key, retries)
        if event not in _FIRED:
            raise TransitionRefused(
                "unknown_event",
                f"unknown event {event!r}; events are: {', '.join(_FIRED)}",
                case_id=case_id, event=event,
            )
        if idempotency_key is None and not retries:  # the common path: one attempt
            case = self.store.get(self.id, case_id)
            if case is None:
                case = self.case(case_id)  # raises UnknownCaseError
            step = self._prepare(case, event, actor, data)
            error = self._commit_one(step)
            if error is not None:
                raise error
            return step.case
        fingerprint = None
        if idempotency_key is not None:
            fingerprint = _fingerprint(event, actor, data)
            replay = self._replay(case_id, idempotency_key, fingerprint)
            if replay is not None:
                return replay
        return self._step_with_retries(
            case_id, lambda case: self._prepare(case, event, actor, data), retries,
            idempotency_key, fingerprint,
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
        found = self.store.find_idempotent(self.id, key)
        if found is None:
            return None
        stored_fingerprint, stored_case, _version = found
        if stored_fingerprint != fingerprint or stored_case != case_id:
            raise IdempotencyKeyReused(
                f"idempotency key {key!r} was first used for another command "
                f"(case {stored_case!r}); use a new key for a new command"
            )
        return self.case(case_id)

    def fire_many(
        self, case_ids: Iterable[str], event: str, /, *, actor: Actor, **data: Any,
    ) -> list[FireResult]:
        """Fire one event on many cases (the batch path): all-or-nothing per case.

        Cases that pass their rules are committed together in one write; each case's
        outcome is one :class:`FireResult`, in the order given.
        """
        _ids.check_command(actor, None, 0)
        ids = list(case_ids)
        results: dict[int, FireResult] = {}
        steps: list[tuple[int, Commit]] = []
        loaded = self._load_many(ids)
        for i, case_id in enumerate(ids):
            try:
                if event not in _FIRED:
                    raise TransitionRefused("unknown_event", f"unknown event {event!r}",
                                            case_id=case_id, event=event)
                steps.append((i, self._prepare(self._loaded(loaded, case_id), event, actor,
                                               data)))
            except ReviewflowError as exc:
                results[i] = FireResult(case_id, error=exc)
        self._commit_chunks(ids, steps, results)
        return [results[i] for i in range(len(ids))]

    def _commit_chunks(self, ids: Sequence[str], steps: Sequence[tuple[int, Commit]],
                       results: dict[int, FireResult]) -> None:
        for chunk_start in range(0, len(steps), 1000):
            chunk = steps[chunk_start:chunk_start + 1000]
            errors = self._commit([s for _, s in chunk])
            for (i, step), error in zip(chunk, errors, strict=True):
                if error is None:
                    results[i] = FireResult(ids[i], case=step.case)
                elif isinstance(error, ReviewflowError):
                    results[i] = FireResult(ids[i], error=error)
                else:  # pragma: no cover  # stores raise reviewflow errors only
                    raise error

    def _commit(self, steps: Sequence[Commit]) -> list[Exception | None]:
        errors = self.store.commit(steps)
        if self._has_hooks or self.store.durable:
            for step, error in zip(steps, errors, strict=True):
                if error is None:
                    self._after_commit(step.events, step.case)
        return errors

    def _commit_one(self, step: Commit) -> Exception | None:
        """Commit one step: :meth:`_commit` for a single command, without its lists."""
        error = self.store.commit([step])[0]
        if error is None and step.outbox:
            self._after_commit(step.events, step.case)
        return error

    def _refuse(self, case: Case, event: str, actor: Actor, error: TransitionRefused,
                iso: str) -> TransitionRefused:
        self.store.record_refusals([Refusal(
            campaign_id=self.id, case_id=case.case_id, event=event, actor_id=actor.id,
            roles=tuple(sorted(actor.roles)), at=iso, stage=case.stage.value,
            reason=error.reason, message=_ids.storable(str(error)),
        )])
        if self._has_hooks:  # a failure is held and retried as any other delivery
            _delivery.hold_refusal(self, case.case_id, event, self._call_hook(
                "reviewflow_refused", campaign=self, case_id=case.case_id, event=event,
                actor=actor, error=error))
        return error

    def _prepare(self, case: Case, event: str, actor: Actor, data: dict[str, Any]) -> Commit:
        """Check every rule and build the step on a copy of the case (its commit, with the
        new snapshot and record); raise on refusal."""
        now, iso = self._now()
        last = case.data.get("last_at")
        if last is not None and _corrections.backwards(iso, last):
            raise self._refuse(case, event, actor,
                               _corrections.time_backwards(case, event, iso, last), iso)
        role, refusals = _permissions.guard(self.policy, case, event, actor, now, self.due)
        if refusals:
            raise self._refuse(case, event, actor, refusals[0], iso)
        handler = HANDLERS[event]
        try:
            record_data, reason, machine_kwargs = handler(self, case, actor, role, data, now)
        except TransitionRefused as exc:
            raise self._refuse(case, event, actor, exc, iso) from None
        source = case.stage
        expected = case.version
        self._lifecycle.step(case, event, **machine_kwargs)
        stage = case.stage
        extras: tuple[Any, ...] = ()
        if stage is not source:
            if self._late(case, source, now):
                record_data["late"] = True
                if reason is None:
                    reason = "late"
            entered = case.data.get("entered")
            case.data["entered"] = ({**entered, _VALUE[stage]: iso} if entered
                                    else {_VALUE[stage]: iso})
        case.data["last_at"] = iso
        record = _seal(
            self.id, case.case_id, expected + 1, event, actor.id, role, iso, _VALUE[source],
            _VALUE[stage], reason, _corrections.mark(record_data, self.clock), case.last_hash,
        )
        case.version = expected + 1
        case.last_hash = record.hash
        if stage is not source:
            # A case's deadline index entry depends on its stage (and on extensions and
            # fired rungs, whose own steps write it): only a step that moves the stage
            # rewrites it.
            extras = self._deadline_extras(self, case, source)
        return Commit(case, expected, (record,), None, None, extras,
                      self._has_hooks or self.store.durable)

    # ------------------------------------------------------------------ side steps

    def _record(
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
            case_id, lambda case: self._side_step(case, event, actor, role, apply), retries,
            idempotency_key, fingerprint,
        )

    def _record_many(
        self, case_ids: Iterable[str], event: str, *, actor: Actor, role: str, apply: SideStep,
    ) -> list[FireResult]:
        """Record one side step on many cases, committed in batches; one result per case."""
        ids = list(case_ids)
        results: dict[int, FireResult] = {}
        steps: list[tuple[int, Commit]] = []
        loaded = self._load_many(ids)
        for i, case_id in enumerate(ids):
            try:
                steps.append((i, self._side_step(self._loaded(loaded, case_id), event, actor,
                                                 role, apply)))
            except ReviewflowError as exc:
                results[i] = FireResult(case_id, error=exc)
        self._commit_chunks(ids, steps, results)
        return [results[i] for i in range(len(ids))]

    def _side_step(self, case: Case, event: str, actor: Actor, role: str,
                   apply: SideStep) -> Commit:
        now, iso = self._now()
        last = case.data.get("last_at")
        try:
            if last is not None and _corrections.backwards(iso, last):
                raise _corrections.time_backwards(case, event, iso, last)
            record_data, reason, extras = apply(case, now)
        except TransitionRefused as exc:
            raise self._refuse(case, event, actor, exc, iso) from None
        stage = _VALUE[case.stage]
        expected = case.version
        case.data["last_at"] = iso
        record = _seal(
            self.id, case.case_id, expected + 1, event, actor.id, role, iso, stage, stage,
            reason, _corrections.mark(record_data, self.clock), case.last_hash,
        )
        case.version = expected + 1
        case.last_hash = record.hash
        return Commit(case, expected, (record,), None, None, tuple(extras),
                      self._has_hooks or self.store.durable)

    def _late(self, case: Case, stage: Stage, now: pendulum.DateTime) -> bool:
        rule = self.policy.stage(stage)
        if rule.due is None or rule.hard:
            return False
        due = self.due(case, stage)
        return due is not None and now > (due + rule.grace if rule.grace else due)

    # ------------------------------------------------------------------ the vote and results (三评)

    def issue_ballot_tokens(self, case_id: str, counts: Mapping[str, int], *,
                            actor: Actor,
                            before_commit: Callable[[Sequence[IssuedToken]], object] | None = None,
                            ) -> list[IssuedToken]:
        """Issue one-time ballot tokens for a case's on-site vote, per attendee category.

        ``counts`` maps a category (party_members, cadres, public, parents_teachers, ...)
        to the number of eligible attendees. The tokens are returned once, to be handed
        out; the case's history records only the counts.

        ``before_commit(tokens)`` makes the tokens and the caller's copy of them one
        step: it is called with the drawn tokens (``IssuedToken``) after every rule has
        passed and before the tokens are committed, so that the caller can write them
        out (and flush them) first. If it raises, nothing is committed and the error
        propagates. If the case changed meanwhile (a conflict), the step is built again
        with new tokens and ``before_commit`` is called again with those: only the
        last call's tokens are committed. If the commit then fails, the error
        propagates and the caller should discard what it wrote.
        """
        from reviewflow._engine import vote_work

        return vote_work.issue_ballot_tokens(self, case_id, counts, actor=actor,
                                             before_commit=before_commit)

    def cast_ballot(self, case_id: str, token: str, choice: str | None) -> str:
        """Cast one anonymous ballot with a one-time token; return its random ballot id.

        ``choice`` is an option of the policy's scale (``good`` or ``好``, ...), or None
        for a blank ballot. Raises :class:`BallotError` (nothing recorded) for a token
        that is unknown, used, or from another case, or a vote that is closed.
        """
        from reviewflow._engine import vote_work

        return vote_work.cast(self, case_id, token, choice)

    def enter_paper_counts(self, case_id: str, entries: PaperCount | Sequence[PaperCount], *,
                           actor: Actor, replace: bool = False) -> Case:
        """Record the scrutineers' counts of paper ballots (``PaperCount`` per category)."""
        from reviewflow._engine import vote_work

        return vote_work.enter_paper_counts(self, case_id, entries, actor=actor, replace=replace)

    def import_paper_counts(self, source: str | os.PathLike[str] | IO[bytes], *, actor: Actor,
                            case_id: str | None = None) -> list[FireResult]:
        """Import paper-ballot counts from a CSV or XLSX file (all rows checked first)."""
        from reviewflow._engine import vote_work

        return vote_work.import_paper_counts(self, source, actor=actor, case_id=case_id)

    def close_vote(self, case_id: str, *, actor: Actor, scrub: bool = False) -> CloseResult:
        """Close the vote's current round: reconcile, check the quorum, freeze the tally.

        Closing does not remove the old copies of the ballot rows that the casts left in
        the database's files (from which the casting order can be read): pass
        ``scrub=True`` to scrub the ballot table right after the closing commit, or call
        :meth:`scrub_ballots` afterwards (``reviewflow ballots close`` scrubs). A scrub
        that fails (another connection open on the database) raises
        :class:`~reviewflow.exceptions.ScrubIncomplete`: the vote *is* closed (its result
        is the error's ``result``); run :meth:`scrub_ballots` again later.
        """
        from reviewflow._engine import vote_work

        return vote_work.close_vote(self, case_id, actor=actor, scrub=scrub)

    def scrub_ballots(self) -> bool:
        """Remove the old copies of the campaign's ballot rows from the database's files.

        Run it after closing votes (or use ``close_vote(..., scrub=True)``), when no other
        connection to the database is open: ``VACUUM FULL`` on PostgreSQL, ``OPTIMIZE
        TABLE`` on MySQL/MariaDB, a truncating checkpoint of SQLite's write-ahead log (see
        ``docs/reliability.md``). Returns False when the ballots are kept in memory
        (nothing to scrub). Raises :class:`~reviewflow.exceptions.ScrubIncomplete` when
        the database did not do it; running it again is harmless.
        """
        from reviewflow._engine import vote_work

        return vote_work.scrub_ballots(self)

    def revote(self, case_id: str, *, actor: Actor, reason: str | None = None,
               void_reason: str | None = None) -> Case:
        """Open a second round of the vote; the first round is kept."""
        from reviewflow._engine import vote_work

        return vote_work.revote(self, case_id, actor=actor, reason=reason,
                                void_reason=void_reason)

    def record_score(self, case_id: str, channel: str, value: Any, *, actor: Actor) -> Case:
        """Record a number supplied by the host for a scoring channel."""
        from reviewflow._engine import score_inputs

        return score_inputs.record_score(self, case_id, channel, value, actor=actor)

    def flag_condition(self, case_id: str, condition: str, *, actor: Actor, reason: str) -> Case:
        """Record that a veto condition of the policy holds for a case (a grade cap)."""
        from reviewflow._engine import score_inputs

        return score_inputs.flag_condition(self, case_id, condition, actor=actor, reason=reason)

    def results(self, case_ids: Iterable[str] | None = None) -> list[CaseResult]:
        """Return scores, grades and ranks for the campaign's scored cases, each explainable,
        read from the cases' sealed events (never from the stored case rows)."""
        from reviewflow._engine import publication

        return publication.results(self, case_ids)

    def publish(self, *, actor: Actor, scope: str | None = None,
                case_ids: Iterable[str] | None = None,
                publicity_days: int | None = None, idempotency_key: str | None = None,
                reason: str | None = None) -> list[CaseResult]:
        """Publish results to a scope (在一定范围内公布) with a publicity period, and feed them
        back to each secretary (反馈).

        With ``idempotency_key`` a publication run again publishes nothing twice; a case
        published already is published again only with a ``reason`` (what it supersedes
        is recorded), else refused with ``already_published``."""
        from reviewflow._engine import publication

        return publication.publish(self, actor=actor, scope=scope, case_ids=case_ids,
                                   publicity_days=publicity_days,
                                   idempotency_key=idempotency_key, reason=reason)

    def verify_votes(self) -> list[str]:
        """Recount every closed vote from its stored ballots against the tally and digest its
        sealed ``close_vote`` recorded (not the case row); return the problems found."""
        from reviewflow._engine import vote_work

        return vote_work.verify_votes(self)

    # ------------------------------------------------------------------ deadlines

    def sweep(self, now: _dt.datetime | None = None, *, limit: int | None = None) -> Any:
        """Fire every reminder/escalation rung due at ``now`` (default: the clock), once.

        Safe to run twice, from several threads or processes: each rung fires exactly once.
        Returns a ``SweepResult`` (``.fired`` lists the rungs). See ``docs/how-to/deadlines.md``.
        """
        from reviewflow import _deadline_ops

        return _deadline_ops.sweep(self, now, limit=limit)

    def forecast(self, at: _dt.datetime) -> Any:
        """Say which cases will be overdue at ``at`` and which rungs will have fired, if
        nothing changes; changes nothing (the sweep's own code)."""
        from reviewflow import _deadline_ops

        return _deadline_ops.forecast(self, at)

    def explain_due(self, case_id: str, stage: Stage | str | None = None) -> Any:
        """Explain step by step how a case's due time for ``stage`` (default: its current
        stage) was derived, where it stands now, and its ladder."""
        from reviewflow import _deadline_ops

        return _deadline_ops.explain_due(self, case_id, stage)

    def extend(self, case_id: str, stage: Stage | str, until: _dt.datetime, reason: str,
               actor: Actor) -> Case:
        """Extend one case's due time for ``stage`` to ``until`` with a reason (延期).

        The extension is an event in the case's history; its rungs are rescheduled.
        """
        from reviewflow import _deadline_ops

        return _deadline_ops.extend(self, case_id, stage, until, reason, actor)

    def reindex_deadlines(self) -> int:
        """Recompute every case's deadline index entry (after changing the deadlines of a
        campaign that already has cases); return the number of cases."""
        from reviewflow import _deadline_ops

        return _deadline_ops.rebuild_index(self)

    # ------------------------------------------------------------------ audit

    def anchor(self, *, save: bool = True) -> Anchor:
        """Take a checkpoint of the whole record now: every case's (id, version, head hash),
        the refusal journal's count and digest and the policy's digest, under one digest
        (with a MAC, given an audit key); kept in the store unless ``save`` is False.

        Keep its file (``anchor.to_text()``, ``reviewflow anchor --out``) and print its
        digest (the 公示 notice does): :meth:`verify` then detects deleted or re-chained
        events, deleted cases and a deleted refusal journal. See docs/reliability.md.
        """
        from reviewflow._engine import verification

        return verification.take_anchor(self, save=save)

    def amend_policy(self, policy: Policy, *, reason: str, actor: Actor) -> Campaign:
        """Change the campaign's policy, as an event: an ``amend_policy`` record on the
        campaign's chain with the reason, who, the new digest and the settings that changed;
        the store keeps the new policy, and this campaign runs under it from now on.

        Only the roles the policy permits for ``amend_policy`` (default: the organizer)
        may. Returns this campaign.
        """
        from reviewflow import _policy_seal

        _policy_seal.amend(self, policy, reason=reason, actor=actor)
        self.policy = policy
        self._tz = pendulum.timezone(policy.tz)
        self._last_now = None
        opens = policy.stage(Stage.MEETING).opens
        self._meeting_opens = None if opens is None else opens.in_timezone(self._tz).date()
        return self

    def verify(self, anchors: Iterable[Anchor] = ()) -> VerifyReport:
        """Check the whole record, case by case (streamed): recompute each case's hash
        chain, replay its events and compare the result with the stored case field by
        field, recount each closed ballot box against its sealed ``close_vote``, and check
        the campaign's policy against its sealed digest; report every difference by case
        and field (see ``reviewflow._engine.verification``).

        The record must also extend every anchor given (``anchors``, e.g. read with
        :func:`reviewflow.read_anchor`) and every anchor kept in the store, and, with an
        audit key, every event must carry its MAC. ``report.notes`` says what could not
        be checked (no anchor, no key).
        """
        from reviewflow._engine import verification

        return verification.verify_campaign(self, anchors)

    def _chains(self) -> Iterable[tuple[str, int, str, Sequence[EventRecord]]]:
        from reviewflow._sealed import histories

        for _case, case_id, version, last_hash, records in histories(self.store, self.id):
            yield case_id, version, last_hash, records

    def __repr__(self) -> str:
        return f"Campaign({self.id!r}, policy={self.policy.name!r})"


def _first_role(actor: Actor) -> str:
    return min(actor.roles) if actor.roles else ""


def _fingerprint(event: str, actor: Actor, data: Mapping[str, Any]) -> str:
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


def _open_store(store: Store | str | None) -> Store:
    if store is None:
        from reviewflow.store.memory import MemoryStore

        return MemoryStore()
    if isinstance(store, str):
        from reviewflow import store as _store_pkg

        opener = getattr(_store_pkg, "open_store", None)
        if opener is None:
            raise InputError(f"cannot open store {store!r}: SQL stores are not available")
        opened: Store = opener(store)
        return opened
    return store
