"""The adapter around ``transitions``: the only module that imports it.

One shared machine per lifecycle definition drives every case: cases are never
registered with the machine (no ``add_model``); a step calls the event's
``trigger`` with the case as the model, so a case costs no memory in the machine.
"""

from __future__ import annotations

from typing import Any

from transitions import Machine

from reviewflow._lifecycle import FIRED
from reviewflow.model import Case, Stage

__all__ = ["Lifecycle"]


_STAGES: dict[str, Stage] = {
    **{stage.name: stage for stage in Stage}, **{stage.value: stage for stage in Stage},
}
_NAMES: dict[Stage, str] = {stage: stage.name for stage in Stage}


def _is_last_level(event_data: Any) -> bool:
    return bool(event_data.kwargs.get("last_level"))


class Lifecycle:
    """The stage graph of a case, on one shared ``transitions`` machine."""

    __slots__ = ("_machine", "_triggers", "sources")

    def __init__(self) -> None:
        transitions: list[dict[str, Any]] = []
        sources: dict[str, Stage] = {}
        for event in FIRED:  # the lifecycle table: one transition per event (two per level)
            name, source, dest = event.name, event.source, event.dest
            assert source is not None  # every fired event has a source stage
            sources[name] = source
            src = source.name
            dst = None if dest is None else dest.name
            if event.per_level:  # moves at the last level only
                transitions.append({
                    "trigger": name, "source": src, "dest": dst,
                    "conditions": [_is_last_level],
                })
                transitions.append({"trigger": name, "source": src, "dest": None})
            else:
                transitions.append({"trigger": name, "source": src, "dest": dst})
        # Plain string states named like the Stage members: transitions resolves enum
        # states through extra property lookups on every step, while it looks up a
        # case's Stage member by its name; the step puts the enum member back.
        self._machine = Machine(
            model=None,
            states=[stage.name for stage in Stage],
            transitions=transitions,
            initial=Stage.RESEARCH.name,
            auto_transitions=False,
            send_event=True,
            model_attribute="stage",
        )
        self._triggers = {name: event.trigger for name, event in self._machine.events.items()}
        #: The stage each event starts from.
        self.sources = sources

    def step(self, case: Case, event: str, **kwargs: Any) -> None:
        """Move ``case`` by ``event`` (the caller has checked every rule)."""
        source = case.stage
        # The machine reads the state by name: hand it the name (a Stage member would cost
        # it an enum ``.name`` lookup per read), and put the member back afterwards.
        case.stage = _NAMES[source]  # type: ignore[assignment]  # the machine's own state name
        try:
            moved = self._triggers[event](case, **kwargs)
        finally:
            case.stage = _STAGES[case.stage]
        if not moved:  # pragma: no cover  # guarded by callers
            raise RuntimeError(f"lifecycle refused {event} from {source}")

    def edges(self) -> list[tuple[str, str, str]]:
        """Return ``(source, event, destination)`` for every edge, for diagrams."""
        out = []
        for name, event in self._machine.events.items():
            for source, transitions in event.transitions.items():
                for t in transitions:
                    out.append((_STAGES[source].value, name, _STAGES[t.dest or source].value))
        return out
