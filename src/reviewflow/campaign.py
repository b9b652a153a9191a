"""The campaign: one year's assessment, its cases, and the one path every step takes.

Every command goes the same way: load the case, check the rules (stage, role,
deadline, data), move the stage on the shared lifecycle, seal an event record
onto the case's hash chain, commit case and event atomically with a version
check, and only then tell the hooks. A refused command changes nothing; it is
kept in the refusal journal and raises :class:`TransitionRefused`.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any

import pendulum

from reviewflow import _ids
from reviewflow._engine import dispatch as _delivery
from reviewflow._engine import extend as _extend
from reviewflow._engine import opening as _opening
from reviewflow._engine import publication
from reviewflow._engine import sweep as _sweep
from reviewflow._engine.deadline_results import DueExplanation, Forecast, SweepResult
from reviewflow._engine.deadline_work import RUNG_EVENT, rung_route
from reviewflow._engine.pipeline import Engine
from reviewflow._engine.results import FireResult, Permission
from reviewflow.anchoring import Anchor
from reviewflow.audit import VerifyReport
from reviewflow.ballots import CloseResult, IssuedToken, PaperCount
from reviewflow.clock import Clock, SystemClock
from reviewflow.exceptions import InputError, PluginError
from reviewflow.model import Actor, Case, EventRecord, Stage
from reviewflow.policy import Policy
from reviewflow.scoring import CaseResult
from reviewflow.store.base import Refusal, Store

__all__ = ["Campaign", "FireResult", "Permission"]


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
        self.id = campaign_id if campaign_id is not None else str(policy.year)
        opened = _open_store(store)
        opened.setup_campaign(self.id, policy.to_json())
        key: bytes | None = None
        if audit_key is not None:
            from reviewflow.anchoring import attach_key

            key = attach_key(opened, audit_key)
        if calendar is not None and not hasattr(calendar, "is_working_day"):
            raise InputError(f"calendar must have is_working_day(date), got {calendar!r}; "
                             "use reviewflow.WorkingCalendar.china(...) or your own")
        self._engine = engine = Engine(
            policy, clock=clock if clock is not None else SystemClock(policy.tz), store=opened,
            campaign_id=self.id, audit_key=key, calendar=calendar, facade=self)
        from reviewflow import _policy_seal

        try:
            _policy_seal.check_on_open(engine)  # sealed on first open; another policy is refused
        except BaseException:
            if isinstance(store, str):
                opened.close()  # opened here from a URL: not left open
            raise
        engine.routes[RUNG_EVENT] = functools.partial(rung_route, engine)
        engine.redeliverers["publish_results"] = (
            "reviewflow_results_published",
            functools.partial(publication.redeliver_published, engine))
        for plugin in plugins:
            self.register(plugin)
        if policy.plugins:
            from reviewflow._plugins import load_named

            for name, plugin in load_named(policy.plugins):
                self.register(plugin, name=name)

    # ------------------------------------------------------------------ the engine's state

    @property
    def policy(self) -> Policy:
        """The policy the campaign runs under."""
        return self._engine.policy

    @property
    def clock(self) -> Clock:
        """The clock every step reads."""
        return self._engine.clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self._engine.clock = clock

    @property
    def store(self) -> Store:
        """Where the campaign's cases, events and journals are kept."""
        return self._engine.store

    @store.setter
    def store(self, store: Store) -> None:
        self._engine.store = store

    @property
    def plugin_errors(self) -> list[PluginError]:
        """Failures of hook implementations, newest last (the steps they heard of stand)."""
        return self._engine.plugin_errors

    @property
    def delivery_backoff(self) -> _delivery.Backoff:
        """When a failed delivery is tried again by :meth:`dispatch_pending`."""
        return self._engine.delivery_backoff

    @delivery_backoff.setter
    def delivery_backoff(self, backoff: _delivery.Backoff) -> None:
        self._engine.delivery_backoff = backoff

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
        self._engine.register(plugin, name)

    def dispatch_pending(self) -> int:
        """Tell the hooks what they have not heard yet: events a crash left in the outbox
        (to every plugin), and failed deliveries whose next try has come (to the plugin
        that failed, alone; see :attr:`delivery_backoff`).

        Delivery is at least once: each record carries ``event_id`` for de-duplication.
        Returns the number of deliveries made.
        """
        return self._engine.dispatch_pending()

    def outbox_status(self) -> _delivery.OutboxStatus:
        """Return what the hooks have not heard yet: the events never offered, and each
        failed delivery (plugin, hook, attempts, last error, next try)."""
        return self._engine.outbox_status()

    def delivery_failures(self) -> tuple[_delivery.DeliveryFailure, ...]:
        """Return the failed deliveries waiting for their next try, soonest first."""
        return self._engine.delivery_failures()

    # ------------------------------------------------------------------ time

    def due(self, case: Case, stage: Stage) -> pendulum.DateTime | None:
        """Return the case's due time for leaving ``stage`` (extensions included), or None."""
        return self._engine.due(case, stage)

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
        return _opening.open_cases(self._engine, self._engine.deadline_work, rows, actor)

    def case(self, case_id: str) -> Case:
        """Return the case (a snapshot bound to the store for its history)."""
        return self._engine.case(case_id)

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

    # ------------------------------------------------------------------ rules and steps

    def allowed(self, case_id: str, actor: Actor) -> list[Permission]:
        """List every event with whether ``actor`` may fire it on the case now, and why not.

        Changes nothing. Data an event needs (a report, a reason) is listed in ``needs``
        and checked only when the event is fired.
        """
        return self._engine.allowed(case_id, actor)

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
        return self._engine.fire(case_id, event, actor, idempotency_key, retries, data)

    def fire_many(
        self, case_ids: Iterable[str], event: str, /, *, actor: Actor, **data: Any,
    ) -> list[FireResult]:
        """Fire one event on many cases (the batch path): all-or-nothing per case.

        Cases that pass their rules are committed together in one write; each case's
        outcome is one :class:`FireResult`, in the order given.
        """
        return self._engine.fire_many(case_ids, event, actor, data)

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

        return vote_work.issue_ballot_tokens(self._engine, case_id, counts, actor=actor,
                                             before_commit=before_commit)

    def cast_ballot(self, case_id: str, token: str, choice: str | None) -> str:
        """Cast one anonymous ballot with a one-time token; return its random ballot id.

        ``choice`` is an option of the policy's scale (``good`` or ``好``, ...), or None
        for a blank ballot. Raises :class:`BallotError` (nothing recorded) for a token
        that is unknown, used, or from another case, or a vote that is closed.
        """
        from reviewflow._engine import vote_work

        return vote_work.cast(self._engine, case_id, token, choice)

    def enter_paper_counts(self, case_id: str, entries: PaperCount | Sequence[PaperCount], *,
                           actor: Actor, replace: bool = False) -> Case:
        """Record the scrutineers' counts of paper ballots (``PaperCount`` per category)."""
        from reviewflow._engine import vote_work

        return vote_work.enter_paper_counts(self._engine, case_id, entries, actor=actor, replace=replace)

    def import_paper_counts(self, source: str | os.PathLike[str] | IO[bytes], *, actor: Actor,
                            case_id: str | None = None) -> list[FireResult]:
        """Import paper-ballot counts from a CSV or XLSX file (all rows checked first)."""
        from reviewflow._engine import vote_work

        return vote_work.import_paper_counts(self._engine, source, actor=actor, case_id=case_id)

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

        return vote_work.close_vote(self._engine, case_id, actor=actor, scrub=scrub)

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

        return vote_work.scrub_ballots(self._engine)

    def revote(self, case_id: str, *, actor: Actor, reason: str | None = None,
               void_reason: str | None = None) -> Case:
        """Open a second round of the vote; the first round is kept."""
        from reviewflow._engine import vote_work

        return vote_work.revote(self._engine, case_id, actor=actor, reason=reason,
                                void_reason=void_reason)

    def record_score(self, case_id: str, channel: str, value: Any, *, actor: Actor) -> Case:
        """Record a number supplied by the host for a scoring channel."""
        from reviewflow._engine import score_inputs

        return score_inputs.record_score(self._engine, case_id, channel, value, actor=actor)

    def flag_condition(self, case_id: str, condition: str, *, actor: Actor, reason: str) -> Case:
        """Record that a veto condition of the policy holds for a case (a grade cap)."""
        from reviewflow._engine import score_inputs

        return score_inputs.flag_condition(self._engine, case_id, condition, actor=actor, reason=reason)

    def results(self, case_ids: Iterable[str] | None = None) -> list[CaseResult]:
        """Return scores, grades and ranks for the campaign's scored cases, each explainable,
        read from the cases' sealed events (never from the stored case rows)."""
        from reviewflow._engine import publication

        return publication.results(self._engine, case_ids)

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

        return publication.publish(self._engine, actor=actor, scope=scope, case_ids=case_ids,
                                   publicity_days=publicity_days,
                                   idempotency_key=idempotency_key, reason=reason)

    def verify_votes(self) -> list[str]:
        """Recount every closed vote from its stored ballots against the tally and digest its
        sealed ``close_vote`` recorded (not the case row); return the problems found."""
        from reviewflow._engine import vote_work

        return vote_work.verify_votes(self._engine)

    # ------------------------------------------------------------------ deadlines

    def sweep(self, now: _dt.datetime | None = None, *, limit: int | None = None) -> SweepResult:
        """Fire every reminder/escalation rung due at ``now`` (default: the clock), once.

        Safe to run twice, from several threads or processes: each rung fires exactly once.
        Returns a ``SweepResult`` (``.fired`` lists the rungs). See ``docs/how-to/deadlines.md``.
        """
        return _sweep.sweep(self._engine, self._engine.deadline_work, now, limit=limit)

    def forecast(self, at: _dt.datetime) -> Forecast:
        """Say which cases will be overdue at ``at`` and which rungs will have fired, if
        nothing changes; changes nothing (the sweep's own code)."""
        return _sweep.forecast(self._engine, self._engine.deadline_work, at)

    def explain_due(self, case_id: str, stage: Stage | str | None = None) -> DueExplanation:
        """Explain step by step how a case's due time for ``stage`` (default: its current
        stage) was derived, where it stands now, and its ladder."""
        return _sweep.explain_due(self._engine, self._engine.deadline_work, case_id, stage)

    def extend(self, case_id: str, stage: Stage | str, until: _dt.datetime, reason: str,
               actor: Actor) -> Case:
        """Extend one case's due time for ``stage`` to ``until`` with a reason (延期).

        The extension is an event in the case's history; its rungs are rescheduled.
        """
        return _extend.extend(self._engine, self._engine.deadline_work, case_id, stage, until,
                              reason, actor)

    def reindex_deadlines(self) -> int:
        """Recompute every case's deadline index entry (after changing the deadlines of a
        campaign that already has cases); return the number of cases."""
        return self._engine.deadline_work.rebuild_index()

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

        return verification.take_anchor(self._engine, save=save)

    def amend_policy(self, policy: Policy, *, reason: str, actor: Actor) -> Campaign:
        """Change the campaign's policy, as an event: an ``amend_policy`` record on the
        campaign's chain with the reason, who, the new digest and the settings that changed;
        the store keeps the new policy, and this campaign runs under it from now on.

        Only the roles the policy permits for ``amend_policy`` (default: the organizer)
        may. Returns this campaign.
        """
        from reviewflow import _policy_seal

        _policy_seal.amend(self._engine, policy, reason=reason, actor=actor)
        self._engine.set_policy(policy)
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

        return verification.verify_campaign(self._engine, anchors)

    def _chains(self) -> Iterable[tuple[str, int, str, Sequence[EventRecord]]]:
        from reviewflow._sealed import histories

        for _case, case_id, version, last_hash, records in histories(self.store, self.id):
            yield case_id, version, last_hash, records

    def __repr__(self) -> str:
        return f"Campaign({self.id!r}, policy={self.policy.name!r})"


def _open_store(store: Store | str | None) -> Store:
    from reviewflow.store import open_store

    return open_store(store)
