"""The adapter around ``transitions``: the only module that imports it.

One shared machine per lifecycle definition drives every case: cases are never
registered with the machine (no ``add_model``); a step calls the event's
``trigger`` with the case as the model, so a case costs no memory in the machine.
"""

from __future__ import annotations

from typing import Any

from transitions import Machine

from reviewflow.model import Case, Stage
from reviewflow.policy import EVENTS

__all__ = ["Lifecycle"]


def _is_last_level(event_data: Any) -> bool:
    return bool(event_data.kwargs.get("last_level"))


class Lifecycle:
    """The stage graph of a case, on one shared ``transitions`` machine."""

    __slots__ = ("_machine", "_triggers", "sources")

    def __init__(self) -> None:
        transitions: list[dict[str, Any]] = []
        sources: dict[str, Stage] = {}
        for name, source, dest, _label in EVENTS:
            assert source is not None  # every event has a source stage
            sources[name] = source
            if name == "sign_off":
                transitions.append({
                    "trigger": name, "source": source, "dest": dest,
                    "conditions": [_is_last_level],
                })
                transitions.append({"trigger": name, "source": source, "dest": None})
            else:
                transitions.append({"trigger": name, "source": source, "dest": dest})
        self._machine = Machine(
            model=None,
            states=list(Stage),
            transitions=transitions,
            initial=Stage.RESEARCH,
            auto_transitions=False,
            send_event=True,
            model_attribute="stage",
        )
        self._triggers = {name: event.trigger for name, event in self._machine.events.items()}
        #: The stage each event starts from.
        self.sources = sources

    def step(self, case: Case, event: str, **kwargs: Any) -> None:
        """Move ``case`` by ``event`` (the caller has checked every rule)."""
        if not self._triggers[event](case, **kwargs):  # pragma: no cover  # guarded by callers
            raise RuntimeError(f"lifecycle refused {event} from {case.stage}")

    def edges(self) -> list[tuple[str, str, str]]:
        """Return ``(source, event, destination)`` for every edge, for diagrams."""
        out = []
        for name, event in self._machine.events.items():
            for source, transitions in event.transitions.items():
                for t in transitions:
                    out.append((source, name, t.dest or source))
        return out
