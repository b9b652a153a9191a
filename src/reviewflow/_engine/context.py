"""What a feature may ask of the engine: the :class:`StepContext`.

Features (deadline work, the sweep, vote work, publication, verify and anchors) are
functions that take a :class:`StepContext`; they never see :class:`reviewflow.Campaign`.
The engine (:class:`reviewflow._engine.pipeline.Engine`) implements it. Hook
implementations still receive ``campaign=`` (the public Campaign): :meth:`StepContext.call_hook`
adds it, so a feature never names it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import pendulum

from reviewflow.model import Actor, Case, EventRecord, Stage

if TYPE_CHECKING:
    from reviewflow._engine.results import FireResult
    from reviewflow.calendar import WorkdayCalendar
    from reviewflow.clock import Clock
    from reviewflow.exceptions import TransitionRefused
    from reviewflow.policy import Policy
    from reviewflow.store.base import Commit, Store

__all__ = ["HookFailure", "Redeliver", "Route", "SideStep", "StepContext"]

#: A side step: ``apply(case, now) -> (record data, reason, extras)``. It checks and
#: changes ``case.data`` (a copy) and raises :class:`TransitionRefused` to refuse;
#: ``extras`` are rows the store writes in the same transaction.
SideStep = Callable[[Case, pendulum.DateTime], tuple[dict[str, Any], str | None, Sequence[object]]]

#: A hook implementation that failed: (plugin name, hook name, the exception).
HookFailure = tuple[str, str, BaseException]

#: How a feature's committed record is told to the hooks: ``(hook, its arguments)``
#: (besides ``campaign`` and ``case``), or None for the ordinary ``reviewflow_step``.
Route = Callable[[EventRecord], "tuple[str, dict[str, object]] | None"]

#: Tell again the records of one event that are told together (a publication):
#: ``redeliver(records, only) -> [(records told together, failures)]``.
Redeliver = Callable[[Sequence[EventRecord], "frozenset[str] | None"],
                     "list[tuple[list[EventRecord], list[HookFailure]]]"]


class StepContext(Protocol):
    """What a feature may ask of the engine; features never see Campaign."""

    @property
    def campaign_id(self) -> str: ...
    @property
    def policy(self) -> Policy: ...
    @property
    def store(self) -> Store: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def audit_key(self) -> bytes | None: ...
    @property
    def calendar(self) -> WorkdayCalendar:
        """The working-day calendar: the host's, or the policy's ``[calendar]``."""
    @property
    def has_hooks(self) -> bool: ...
    @property
    def meeting_opens(self) -> _dt.date | None:
        """The first day a 述职评议会 may be held (the meeting stage's opening), or None."""

    def now(self) -> tuple[pendulum.DateTime, str]:
        """The clock's time in the campaign's zone, and its ISO text."""
    def case(self, case_id: str) -> Case:
        """The case (raises :class:`~reviewflow.exceptions.UnknownCaseError`)."""
    def load_many(self, case_ids: Sequence[str]) -> dict[str, Case]: ...
    def due(self, case: Case, stage: Stage) -> pendulum.DateTime | None: ...
    def roles_for(self, case: Case, actor: Actor) -> frozenset[str]: ...
    def refuse(self, case: Case, event: str, actor: Actor, error: TransitionRefused,
               iso: str) -> TransitionRefused:
        """Journal a refusal and tell ``reviewflow_refused``; return the error to raise."""
    def side_step(self, case_id: str, event: str, *, actor: Actor, role: str, apply: SideStep,
                  retries: int = 3, idempotency_key: str | None = None,
                  fingerprint: str | None = None) -> Case:
        """The one path for a step that does not move the stage (see Engine.side_step)."""
    def side_step_many(self, case_ids: Iterable[str], event: str, *, actor: Actor, role: str,
                       apply: SideStep) -> list[FireResult]: ...
    def seal(self, case: Case, event: str, actor_id: str, role: str, iso: str,
             reason: str | None, data: dict[str, Any], *, source: Stage | None = None
             ) -> EventRecord:
        """Seal the next record of ``case`` (a copy being built); move its version and head."""
    def move(self, case: Case, event: str, **kwargs: Any) -> None:
        """Move ``case`` on the lifecycle by ``event`` (the caller checked the rules)."""
    def step_commit(self, case: Case, expected: int, records: Sequence[EventRecord],
                    extras: Sequence[object]) -> Commit:
        """The commit of a step built on ``case`` from version ``expected``."""
    def commit(self, steps: Sequence[Commit], *, tell: bool = True) -> list[Exception | None]:
        """Commit steps (store, then outbox and hooks for each committed one, unless
        ``tell`` is False and the caller calls :meth:`tell`)."""
    def tell(self, committed: Sequence[tuple[Sequence[EventRecord], Case]]) -> None:
        """Tell the hooks of committed steps (outbox, delivery, failures held)."""
    def after_commit(self, records: Sequence[EventRecord], case: Case) -> None:
        """:meth:`tell` for one committed step."""
    def call_hook(self, hook: str, only: frozenset[str] | None = None, /,
                  **kwargs: object) -> list[HookFailure]:
        """Call each implementation of ``hook`` on its own (``campaign=`` is added)."""
    def tell_held(self, event: str, cases: Sequence[Case], /, **kwargs: object) -> None:
        """Tell what the commits of ``event`` (an event with a redeliverer: a publication)
        held back, once for all ``cases`` (each just after its ``event`` step): the
        redeliverer's hook with ``kwargs``, its failures held for dispatch_pending(), then
        those records out of the outbox."""
