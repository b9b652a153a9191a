"""The peers of the lifecycle benchmark, on the workload of ``perf-anchors.md``.

Every peer runs the same workload, so its figures compare with the anchors measured
earlier on this kind of machine:

* states research → drafting → submitted → approved → meeting → evaluating → talk →
  report_back → closed; ``send_back`` (approved → drafting) is defined but not driven;
* each case takes the 8 happy-path transitions, in campaign phases (every case does step 1,
  then every case does step 2, ...);
* every driven transition has the deadline guard ``now <= case.deadline``, both pendulum
  datetimes in Asia/Shanghai sharing one tz object, one ``now`` per run;
* every transition has an after-hook appending ``(case_id, trigger, src, dst, now)`` to a list.

"create" is building N cases plus whatever binds them to a machine; "drive" is the 8·N
transitions. After each run (untimed) every case must be ``closed`` with 8·N audit rows.

Variants: ``baseline`` (a plain dict-table state machine: the limit), ``tr_C1`` (one shared
``transitions`` machine, no per-case registration, ``machine.events[name].trigger(case, ...)``),
``tr_A`` (one ``transitions`` Machine per case) and ``psm`` (python-statemachine, one
instance per case bound to the case as its model).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

import attrs
import pendulum

from bench.common import traced_bytes

__all__ = ["PEERS", "STATES", "STEPS", "Peer", "WorkloadError"]

STATES = (
    "research", "drafting", "submitted", "approved", "meeting", "evaluating", "talk",
    "report_back", "closed",
)
#: The 8 happy-path transitions, in the order a campaign drives them.
STEPS: tuple[tuple[str, str, str], ...] = (
    ("finish_research", "research", "drafting"),
    ("submit", "drafting", "submitted"),
    ("approve", "submitted", "approved"),
    ("schedule", "approved", "meeting"),
    ("hold_meeting", "meeting", "evaluating"),
    ("evaluate", "evaluating", "talk"),
    ("hold_talk", "talk", "report_back"),
    ("close", "report_back", "closed"),
)
SEND_BACK = ("send_back", "approved", "drafting")
TRIGGERS = tuple(s[0] for s in STEPS)

TZ = pendulum.timezone("Asia/Shanghai")
NOW = pendulum.datetime(2017, 1, 12, 9, tz=TZ)
DEADLINE = pendulum.datetime(2017, 3, 1, tz=TZ)
assert NOW.tzinfo is DEADLINE.tzinfo, "the guard must compare datetimes sharing one tz object"


class WorkloadError(AssertionError):
    """A run did not end where the workload says (a wrong result, not a slow one)."""


def _check(states: list[str], audit: list[Any], n: int) -> None:
    if len(audit) != len(STEPS) * n:
        raise WorkloadError(f"expected {len(STEPS) * n} audit rows, got {len(audit)}")
    if any(s != "closed" for s in states):
        open_ = sum(s != "closed" for s in states)
        raise WorkloadError(f"{open_} of {n} cases did not reach 'closed'")


def _case_ids(n: int) -> list[str]:
    return [f"case-{i:07d}" for i in range(n)]


class Peer:
    """One way of running the workload: ``create(n)`` builds, ``drive(built)`` runs 8·N steps."""

    name = ""
    description = ""
    #: May run at 1,000,000 cases when the budget allows.
    cheap = False
    transitions_per_case = len(STEPS)

    def setup(self, audit: list[Any]) -> Any:
        """Build what all cases share (a table, a machine), once per run and untimed."""
        return audit

    def create(self, ids: list[str], shared: Any) -> Any:
        """Build the cases (and whatever binds them to a machine) for one run."""
        raise NotImplementedError

    def drive(self, built: Any) -> None:
        """Take every case through the 8 steps, in campaign phases."""
        raise NotImplementedError

    def states(self, built: Any) -> list[str]:
        """Return every case's final state (for the check)."""
        raise NotImplementedError

    def run(self, n: int) -> dict[str, Any]:
        """Time one run at ``n`` cases; check it; return the figures."""
        ids = _case_ids(n)
        audit: list[Any] = []
        shared = self.setup(audit)
        gc.collect()
        t0 = time.perf_counter()
        built = self.create(ids, shared)
        t1 = time.perf_counter()
        self.drive(built)
        t2 = time.perf_counter()
        _check(self.states(built), audit, n)
        return {"create_s": t1 - t0, "drive_s": t2 - t1, "transitions": len(STEPS) * n}

    def memory(self, n: int) -> dict[str, Any]:
        """Return the bytes per case tracemalloc counts after creating ``n`` cases."""
        ids = _case_ids(n)
        shared = self.setup([])
        size, built = traced_bytes(lambda: self.create(ids, shared))
        del built
        return {"bytes_per_case": size / n, "counted": "cases and their machine bindings"}


# ---------------------------------------------------------------- baseline (the limit)


@attrs.define(slots=True, eq=False)
class SlotCase:
    """A case for the baseline and the shared-machine peer: id, deadline, state."""

    case_id: str
    deadline: pendulum.DateTime
    state: str = "research"


class StepRefused(Exception):
    """The baseline machine's refusal: no such step from this state."""


def _in_time(case: SlotCase, now: pendulum.DateTime) -> bool:
    return now <= case.deadline


Table = dict[tuple[str, str], tuple[str, Callable[..., bool], Callable[..., None]]]


def _baseline_table(audit: list[Any]) -> Table:
    def hook(case: SlotCase, trigger: str, src: str, dst: str, now: pendulum.DateTime) -> None:
        audit.append((case.case_id, trigger, src, dst, now))

    table: Table = {}
    for trigger, src, dst in (*STEPS, SEND_BACK):
        table[(src, trigger)] = (dst, _in_time, hook)
    return table


def _fire(table: Table, case: SlotCase, trigger: str, now: pendulum.DateTime) -> bool:
    try:
        dst, guard, hook = table[(case.state, trigger)]
    except KeyError:
        raise StepRefused(f"{trigger} is not allowed from {case.state}") from None
    if not guard(case, now):
        return False
    src = case.state
    case.state = dst
    hook(case, trigger, src, dst, now)
    return True


class Baseline(Peer):
    """A dict table ``(state, trigger) -> (dest, guard, hook)`` and one generic ``fire()``."""

    name = "baseline"
    description = "plain dict-table state machine (the limit)"
    cheap = True

    def setup(self, audit: list[Any]) -> Any:
        """Build the transition table."""
        return _baseline_table(audit)

    def create(self, ids: list[str], shared: Any) -> Any:
        """Build slotted attrs cases."""
        return shared, [SlotCase(i, DEADLINE) for i in ids]

    def drive(self, built: Any) -> None:
        """Fire each step through the table."""
        table, cases = built
        now = NOW
        fire = _fire
        for trigger in TRIGGERS:
            for case in cases:
                fire(table, case, trigger, now)

    def states(self, built: Any) -> list[str]:
        """Return the cases' states."""
        return [c.state for c in built[1]]


# ---------------------------------------------------------------- transitions


def _transitions_machine(audit: list[Any]) -> Any:
    from transitions import Machine

    def in_time(ev: Any) -> bool:
        return bool(ev.kwargs["now"] <= ev.model.deadline)

    def record(ev: Any) -> None:
        t = ev.transition
        audit.append((ev.model.case_id, ev.event.name, t.source, t.dest, ev.kwargs["now"]))

    machine = Machine(
        model=None, states=list(STATES), initial="research", auto_transitions=False,
        send_event=True,
    )
    for trigger, src, dst in STEPS:
        machine.add_transition(trigger, src, dst, conditions=[in_time], after=[record])
    machine.add_transition(SEND_BACK[0], SEND_BACK[1], SEND_BACK[2])
    return machine


class TrSharedMachine(Peer):
    """transitions, one shared machine and no per-case registration (``tr_C1``)."""

    name = "tr_C1"
    description = "bare transitions shared machine, machine.events[name].trigger(case, ...)"
    cheap = True

    def setup(self, audit: list[Any]) -> Any:
        """Build the one shared machine."""
        return _transitions_machine(audit)

    def create(self, ids: list[str], shared: Any) -> Any:
        """Build slotted attrs cases; the shared machine costs nothing per case."""
        return shared, [SlotCase(i, DEADLINE) for i in ids]

    def drive(self, built: Any) -> None:
        """Trigger each event on each case through the shared machine."""
        machine, cases = built
        now = NOW
        for trigger in TRIGGERS:
            fire = machine.events[trigger].trigger
            for case in cases:
                fire(case, now=now)

    def states(self, built: Any) -> list[str]:
        """Return the cases' states."""
        return [c.state for c in built[1]]



def _plain_case_class(audit: list[Any]) -> type:
    class PlainCase:
        """A case with the guard and hook as methods, named by string in the machine."""

        def __init__(self, case_id: str, deadline: pendulum.DateTime) -> None:
            self.case_id = case_id
            self.deadline = deadline

        def in_time(self, ev: Any) -> bool:
            return bool(ev.kwargs["now"] <= self.deadline)

        def audit(self, ev: Any) -> None:
            t = ev.transition
            audit.append((self.case_id, ev.event.name, t.source, t.dest, ev.kwargs["now"]))

    return PlainCase


_TR_A_TRANSITIONS = [
    {"trigger": t, "source": s, "dest": d, "conditions": "in_time", "after": "audit"}
    for t, s, d in STEPS
] + [{"trigger": SEND_BACK[0], "source": SEND_BACK[1], "dest": SEND_BACK[2]}]


class TrMachinePerCase(Peer):
    """transitions, one ``Machine(model=case)`` per case, library defaults (``tr_A``)."""

    name = "tr_A"
    description = "transitions, one Machine per case"

    def setup(self, audit: list[Any]) -> Any:
        """Make the case class (its hook appends to this run's audit list)."""
        return _plain_case_class(audit)

    def create(self, ids: list[str], shared: Any) -> Any:
        """Build one machine per case, bound to it."""
        from transitions import Machine

        cls = shared
        cases = []
        for i in ids:
            case = cls(i, DEADLINE)
            Machine(model=case, states=list(STATES), transitions=_TR_A_TRANSITIONS,
                    initial="research", send_event=True)
            cases.append(case)
        return cases

    def drive(self, built: Any) -> None:
        """Call the trigger methods the machines bound onto the cases."""
        now = NOW
        for trigger in TRIGGERS:
            for case in built:
                getattr(case, trigger)(now=now)

    def states(self, built: Any) -> list[str]:
        """Return the cases' states."""
        return [c.state for c in built]


# ---------------------------------------------------------------- python-statemachine


def _psm_classes(audit: list[Any]) -> tuple[type, type]:
    from statemachine import State, StateMachine

    class PsmCase:
        """A domain model the machine writes ``state`` into; guard and hook resolve on it."""

        def __init__(self, case_id: str, deadline: pendulum.DateTime) -> None:
            self.case_id = case_id
            self.deadline = deadline
            self.state: str | None = None

        def in_time(self, now: pendulum.DateTime) -> bool:
            return bool(now <= self.deadline)

        def audit(self, event: Any, source: Any, target: Any, now: pendulum.DateTime) -> None:
            audit.append((self.case_id, event.id, source.id, target.id, now))

    class ReviewSM(StateMachine):  # type: ignore[misc]
        research = State(initial=True)
        drafting = State()
        submitted = State()
        approved = State()
        meeting = State()
        evaluating = State()
        talk = State()
        report_back = State()
        closed = State(final=True)

        finish_research = research.to(drafting, cond="in_time", after="audit")
        submit = drafting.to(submitted, cond="in_time", after="audit")
        approve = submitted.to(approved, cond="in_time", after="audit")
        schedule = approved.to(meeting, cond="in_time", after="audit")
        hold_meeting = meeting.to(evaluating, cond="in_time", after="audit")
        evaluate = evaluating.to(talk, cond="in_time", after="audit")
        hold_talk = talk.to(report_back, cond="in_time", after="audit")
        close = report_back.to(closed, cond="in_time", after="audit")
        send_back = approved.to(drafting)

    return PsmCase, ReviewSM


class Psm(Peer):
    """python-statemachine, one machine instance per case with the case as its model."""

    name = "psm"
    description = "python-statemachine, one instance per case"

    def setup(self, audit: list[Any]) -> Any:
        """Make the model and machine classes (the hook appends to this run's audit list)."""
        return _psm_classes(audit)

    def create(self, ids: list[str], shared: Any) -> Any:
        """Build one machine per case, bound to the case as its model."""
        case_cls, sm_cls = shared
        return [sm_cls(model=case_cls(i, DEADLINE)) for i in ids]

    def drive(self, built: Any) -> None:
        """Send each event to each case's machine."""
        now = NOW
        for trigger in TRIGGERS:
            for sm in built:
                getattr(sm, trigger)(now=now)

    def states(self, built: Any) -> list[str]:
        """Return the cases' states (what the machines wrote onto the models)."""
        return [sm.model.state for sm in built]


PEERS: dict[str, Peer] = {
    p.name: p for p in (Baseline(), TrSharedMachine(), TrMachinePerCase(), Psm())
}
