"""Delivery to the hooks: at least once per plugin, failures kept and retried with back-off.

How an event reaches the plugins
--------------------------------
* Every committed event is in the store's outbox until it has been offered to every
  plugin once. The engine offers it right after the commit; ``dispatch_pending()`` offers
  what a crash left in the outbox.
* Each plugin is called on its own: one that raises does not stop the others. Its failure
  is written to the delivery log, one row per (event, plugin, hook): attempts, the last
  error, when it first failed and when to try again. Only then is the event marked
  offered (taken out of the outbox): the log row carries what is still owed.
* ``dispatch_pending()`` then claims each log row that is due (a compare-and-set lease of
  :data:`LEASE` seconds, so that two dispatchers do not both deliver it) and calls that plugin's hook
  alone: the other plugins do not hear the event again. A success deletes the row; a
  failure counts one more attempt and moves the next try later: exponential back-off
  (:class:`Backoff`: 30 s, 1 min, 2 min, ... up to 1 hour, each with jitter), never given
  up. ``Campaign.outbox_status()`` lists what keeps failing.
* A plugin is known by its registered name (``Campaign.register(plugin, name=...)``;
  without a name, its class's dotted name): the log outlives the process, so a plugin
  should be registered under the same name after a restart. A process where a row's
  plugin is not registered (``reviewflow tick`` without the host's plugins) leaves the
  row as it is, for a process that has it.

The in-memory store keeps its log in this process (:mod:`reviewflow.store._memory_log`); the SQL
store keeps it in ``rf_delivery_log`` (revision 0006, :mod:`reviewflow.store._delivery`).
"""

from __future__ import annotations

import datetime as _dt
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import attrs
import pendulum

from reviewflow._engine.context import HookFailure, Redeliver, Route, StepContext
from reviewflow.model import Case, EventRecord
from reviewflow.store.parts import DeliveryLog
from reviewflow.store.rows import LogRow

__all__ = [
    "Backoff",
    "DeliveryFailure",
    "OutboxStatus",
]

#: The hook that tells a publication (several cases at once).
PUBLISHED = "reviewflow_results_published"
#: The hook that tells a refusal; its log rows are keyed by the refusal's place in the
#: case's refusal journal, as ``seq = -n`` (the n-th refusal of the case).
REFUSED = "reviewflow_refused"
#: A failure: (plugin name, hook name, the exception).
Failed = HookFailure
_LONGEST_ERROR = 2000
_PAGE = 500
#: How long a dispatcher holds the failed deliveries it is retrying (seconds): another
#: dispatcher leaves them alone meanwhile; one that died mid-way lets them come due again.
LEASE = 600.0


@attrs.frozen
class Backoff:
    """When a failed delivery is tried again: ``base * factor ** (attempts - 1)`` seconds,
    at most ``cap``, each delay drawn between ``(1 - jitter)`` and 1 times that (so that
    many failed deliveries do not all come back at once)."""

    base: float = 30.0
    factor: float = 2.0
    cap: float = 3600.0
    jitter: float = 0.5

    def __attrs_post_init__(self) -> None:
        from reviewflow.exceptions import InputError

        for name in ("base", "factor", "cap", "jitter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"Backoff: {name} must be a number (seconds for base and "
                                 f"cap), not {value!r}", reason="bad_backoff")
        if not (self.base > 0 and self.factor >= 1 and self.cap >= self.base
                and 0 <= self.jitter < 1):
            raise InputError(f"{self!r}: need base > 0, factor >= 1, cap >= base and "
                             "0 <= jitter < 1", reason="bad_backoff")

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        """Return the seconds to wait after the ``attempts``-th failed try (1 or more)."""
        full = min(self.cap, self.base * self.factor ** min(max(attempts, 1) - 1, 64))
        draw = (rng or random).random()
        return full * (1 - self.jitter * draw)


@attrs.frozen
class DeliveryFailure:
    """A delivery that failed and waits to be tried again (one plugin, one hook, one event)."""

    #: ``campaign/case/seq``; for a refusal ``campaign/case/refusal-n`` (its journal place).
    event_id: str
    case_id: str
    #: The event's seq; -n for the n-th refusal of the case (``reviewflow_refused``).
    seq: int
    #: The event's name (``finish_research``, ``deadline_rung``, ...).
    event: str
    #: The plugin's registered name.
    plugin: str
    hook: str
    #: Failed tries so far.
    attempts: int
    #: The last try's error, as ``Type: message``.
    last_error: str
    first_failed_at: pendulum.DateTime
    #: When ``dispatch_pending()`` will try again (not before).
    next_try_at: pendulum.DateTime

    def __str__(self) -> str:
        return (f"{self.event_id} ({self.event}) to {self.plugin}.{self.hook}: "
                f"{self.attempts} failed, last: {self.last_error}; next try "
                f"{self.next_try_at.isoformat()}")

    def to_json(self) -> dict[str, Any]:
        """Return plain JSON data (times as ISO 8601 text)."""
        out: dict[str, Any] = attrs.asdict(self)
        out["first_failed_at"] = self.first_failed_at.isoformat()
        out["next_try_at"] = self.next_try_at.isoformat()
        return out


@attrs.frozen
class OutboxStatus:
    """What the hooks have not heard yet: events never offered, and failed deliveries."""

    #: Committed events not yet offered to the plugins (a crash, or a delivery in progress).
    undelivered: int
    #: Failed deliveries waiting for their next try, soonest first.
    failures: tuple[DeliveryFailure, ...]

    @property
    def ok(self) -> bool:
        """True when every event was delivered to every plugin."""
        return not self.undelivered and not self.failures

    def to_json(self) -> dict[str, Any]:
        """Return plain JSON data."""
        return {"undelivered": self.undelivered,
                "failures": [f.to_json() for f in self.failures]}


class Dispatcher(StepContext, Protocol):
    """What delivery needs of the engine besides the step context: the back-off, the
    registered plugins' names, and how features' records are told (registered by the
    features, so that delivery knows no feature)."""

    @property
    def delivery_backoff(self) -> Backoff: ...
    @property
    def routes(self) -> Mapping[str, Route]:
        """Event name -> how its records are told (e.g. a fired rung's own hook)."""
    @property
    def redeliverers(self) -> Mapping[str, tuple[str, Redeliver]]:
        """Event name -> (hook, how its records are told again together): events told
        by their feature after the commit (a publication), not by the step path."""
    def plugin_names(self) -> frozenset[str]: ...


def delivery_log(c: Dispatcher) -> DeliveryLog:
    """Return the campaign's delivery log (the store keeps it)."""
    return c.store.delivery_log(c.campaign_id)


# -- times -----------------------------------------------------------------------------------


def utc_key(at: _dt.datetime) -> str:
    """A fixed-width UTC text for ``at`` whose text order is time order."""
    utc = at.astimezone(_dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _from_key(c: Dispatcher, key: str) -> pendulum.DateTime:
    at = _dt.datetime.strptime(key, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_dt.UTC)
    return pendulum.instance(at).in_timezone(c.policy.tz)


def _error_text(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= _LONGEST_ERROR else text[:_LONGEST_ERROR - 1] + "…"


# -- calling the plugins ---------------------------------------------------------------------


def deliver(c: Dispatcher, case: Case, record: EventRecord,
            only: frozenset[str] | None = None) -> list[Failed]:
    """Call the hook a committed record is told through (opened, rung or step); return
    the failures. ``only`` limits the call to those plugins."""
    event = record.event
    if event == "open":
        return c.call_hook("reviewflow_case_opened", only, case=case)
    route = c.routes.get(event)
    if route is not None:
        found = route(record)
        if found is not None:
            hook, kwargs = found
            return c.call_hook(hook, only, case=case, record=record, **kwargs)
    return c.call_hook("reviewflow_step", only, case=case, record=record)


def hold(c: Dispatcher, failures: Iterable[tuple[EventRecord, Failed]],
         offered: Sequence[EventRecord]) -> None:
    """Write first failures to the log; the ``offered`` events (told to every plugin once)
    leave the outbox in the same transaction on a durable store, so that a crash after it
    neither loses the failure nor tells the other plugins again."""
    now = c.now()[0]
    first = utc_key(now)
    rows = [
        LogRow(record.case_id, record.seq, plugin, hook, record.event, 1,
               _error_text(error), first, first)
        for record, (plugin, hook, error) in failures
    ]
    if not rows:
        return
    backoff = c.delivery_backoff
    delivery_log(c).fail(rows, lambda attempts: utc_key(
        now + _dt.timedelta(seconds=backoff.delay(attempts))),
        [(r.case_id, r.seq) for r in offered])


def hold_refusal(c: Dispatcher, case_id: str, event: str, failed: Sequence[Failed]) -> None:
    """Write the failures of a ``reviewflow_refused`` call to the log, keyed by the
    refusal's place in the case's refusal journal (just recorded: the last one)."""
    if not failed:
        return
    n = len(c.store.refusals(c.campaign_id, case_id))
    now = c.now()[0]
    first = utc_key(now)
    rows = [LogRow(case_id, -n, plugin, hook, event, 1, _error_text(error), first, first)
            for plugin, hook, error in failed]
    backoff = c.delivery_backoff
    delivery_log(c).fail(rows, lambda attempts: utc_key(
        now + _dt.timedelta(seconds=backoff.delay(attempts))), ())


def _redeliver_refusal(c: Dispatcher, row: LogRow,
                       journals: dict[str, list[Any]]) -> list[Failed] | None:
    """Call ``reviewflow_refused`` again for a log row, from the refusal journal (None:
    the refusal is not there any more). The hook gets the journal's account: an actor
    with its id and roles, and a TransitionRefused with the reason and the message."""
    from reviewflow.exceptions import TransitionRefused
    from reviewflow.model import Actor

    journal = journals.get(row.case_id)
    if journal is None:
        journal = journals[row.case_id] = c.store.refusals(c.campaign_id, row.case_id)
    if not 0 < -row.seq <= len(journal):
        return None
    refusal = journal[-row.seq - 1]
    error = TransitionRefused(refusal.reason, refusal.message, case_id=refusal.case_id,
                              event=refusal.event)
    error.args = (refusal.message,)  # as it was told the first time
    actor = Actor(refusal.actor_id, roles=refusal.roles)
    return c.call_hook(REFUSED, frozenset({row.plugin}), case_id=refusal.case_id,
                        event=refusal.event, actor=actor, error=error)


def dispatch_pending(c: Dispatcher) -> int:
    """Offer what the outbox holds to every plugin, then try again each failed delivery
    that is due; return the number of deliveries made (events offered, plus retries)."""
    delivered = _offer_outbox(c)
    return delivered + _retry_due(c)


def _offer_outbox(c: Dispatcher) -> int:
    delivered = 0
    store = c.store
    while True:
        pending = store.pending_outbox(c.campaign_id, limit=_PAGE)
        if not pending:
            return delivered
        failures: list[tuple[EventRecord, Failed]] = []
        together: dict[str, list[EventRecord]] = {}
        later = c.redeliverers
        for record in pending:
            case = store.get(c.campaign_id, record.case_id)
            if case is not None and c.has_hooks:
                failures += [(record, f) for f in deliver(c, case, record)]
            delivered += 1
            if record.event in later:
                together.setdefault(record.event, []).append(record)
        if together and c.has_hooks:
            for event, records in together.items():
                for group, failed in later[event][1](records, None):
                    failures += [(record, f) for record in group for f in failed]
        hold(c, failures, pending)
        store.mark_dispatched(c.campaign_id, [r.event_id for r in pending])


def _retry_due(c: Dispatcher) -> int:
    log = delivery_log(c)
    retried = 0
    names = c.plugin_names()
    again = dict(c.redeliverers.values())
    if not names:
        return 0
    while True:
        now = c.now()[0]
        rows = log.due(utc_key(now), names, _PAGE)
        if not rows:
            return retried
        # Claim before calling: a row another dispatcher took meanwhile is its to deliver.
        rows = log.claim(rows, utc_key(now + _dt.timedelta(seconds=LEASE)))
        if not rows:
            continue
        failed: list[LogRow] = []
        done: list[tuple[str, int, str, str]] = []
        together: dict[tuple[str, str], list[tuple[LogRow, EventRecord]]] = {}
        histories: dict[str, list[EventRecord]] = {}
        journals: dict[str, list[Any]] = {}
        for row in rows:
            if row.hook == REFUSED and row.seq < 0:
                told = _redeliver_refusal(c, row, journals)
                retried += told is not None
                if told:
                    failed.append(_again(c, row, now, _error_text(told[0][2])))
                else:
                    done.append(row.key)
                continue
            record = _record_of(c, row, histories)
            case = None if record is None else c.store.get(c.campaign_id, row.case_id)
            if record is None or case is None:
                done.append(row.key)  # the case is gone: nothing is owed any more
                continue
            if row.hook in again:  # told together with the records of its group
                together.setdefault((row.hook, row.plugin), []).append((row, record))
                continue
            errors = deliver(c, case, record, frozenset({row.plugin}))
            retried += 1
            if errors:
                failed.append(_again(c, row, now, _error_text(errors[0][2])))
            else:
                done.append(row.key)
        for (hook, plugin), group in together.items():
            rows_of = {(record.case_id, record.seq): row for row, record in group}
            outcome = again[hook]([record for _, record in group], frozenset({plugin}))
            retried += len(group)
            for records, errors in outcome:
                for record in records:
                    row = rows_of.pop((record.case_id, record.seq))
                    if errors:
                        failed.append(_again(c, row, now, _error_text(errors[0][2])))
                    else:
                        done.append(row.key)
            done.extend(row.key for row in rows_of.values())  # nothing left to tell
        log.settle(failed, done)


def _again(c: Dispatcher, row: LogRow, now: pendulum.DateTime, error: str) -> LogRow:
    attempts = row.attempts + 1
    wait = c.delivery_backoff.delay(attempts)
    return attrs.evolve(row, attempts=attempts, last_error=error,
                        next_try_at=utc_key(now + _dt.timedelta(seconds=wait)))


def _record_of(c: Dispatcher, row: LogRow, histories: dict[str, list[EventRecord]]
               ) -> EventRecord | None:
    history = histories.get(row.case_id)
    if history is None:
        history = histories[row.case_id] = c.store.history(c.campaign_id, row.case_id)
    if 0 < row.seq <= len(history) and history[row.seq - 1].seq == row.seq:
        return history[row.seq - 1]
    return next((r for r in history if r.seq == row.seq), None)


# -- what is still owed ----------------------------------------------------------------------


def failures(c: Dispatcher, limit: int = 10_000) -> tuple[DeliveryFailure, ...]:
    """Return the campaign's failed deliveries, soonest next try first."""
    return tuple(
        DeliveryFailure(
            event_id=(f"{c.campaign_id}/{r.case_id}/{r.seq}" if r.seq >= 0
                      else f"{c.campaign_id}/{r.case_id}/refusal-{-r.seq}"), case_id=r.case_id, seq=r.seq,
            event=r.event, plugin=r.plugin, hook=r.hook, attempts=r.attempts,
            last_error=r.last_error, first_failed_at=_from_key(c, r.first_failed_at),
            next_try_at=_from_key(c, r.next_try_at),
        )
        for r in delivery_log(c).rows(limit)
    )


def status(c: Dispatcher, limit: int = 10_000) -> OutboxStatus:
    """Return what the hooks have not heard yet."""
    c.store.flush()
    undelivered = len(c.store.pending_outbox(c.campaign_id, limit=limit))
    return OutboxStatus(undelivered, failures(c, limit))
