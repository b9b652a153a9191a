"""The lifecycle of a case: one table, one row per event.

Each row says where the event starts (``source``), where it leads (``dest``; None: the
case keeps its stage), its Chinese label, the data it takes and the data it needs, the
roles that may fire it by default, and whether it is a side step (recorded by a method
of its own, not fired with ``Campaign.fire``). Everything else that is keyed by event
name is derived from this table: ``policy.EVENTS``, ``SIDE_EVENTS``, ``EVENT_NAMES``
and the default ``[permissions]``, the data a handler accepts, ``Permission.needs``,
and the transitions of the shared machine (:mod:`reviewflow._engine.machine`).

:func:`check` checks a policy's permissions against the table when the policy is built:
an event nobody may fire, a stage nobody can reach, a stage without a way out are
:class:`~reviewflow.exceptions.PolicyError` naming the setting (``permissions.sign_off``).

>>> [e.name for e in LIFECYCLE if e.side]
['extend']
>>> BY_NAME["submit_report"].dest
<Stage.APPROVAL: 'approval'>
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import attrs

from reviewflow.exceptions import PolicyError
from reviewflow.model import Stage

__all__ = ["BY_NAME", "FIRED", "LIFECYCLE", "SIDE", "LifecycleEvent", "check"]

_SECRETARY = "secretary"


def _needs_are_taken(row: LifecycleEvent, _attribute: object, needs: tuple[str, ...]) -> None:
    if not set(needs) <= row.takes:
        raise ValueError(f"{row.name}: needs {sorted(set(needs) - row.takes)} but does not take it")


@attrs.frozen(kw_only=True)
class LifecycleEvent:
    """One event of the lifecycle (one row of :data:`LIFECYCLE`)."""

    name: str
    #: The stage the case must be in; None for a side step that may happen in any stage.
    source: Stage | None
    #: The stage the event leads to; None: the case keeps its stage.
    dest: Stage | None
    label: str
    #: The data keys the event accepts (anything else is refused, ``invalid_data``).
    takes: frozenset[str] = frozenset()
    #: The data keys it cannot do without (listed in ``Permission.needs``).
    needs: tuple[str, ...] = attrs.field(default=(), validator=_needs_are_taken)
    #: The roles that may fire it when a policy does not say (the default ``[permissions]``).
    roles: frozenset[str] = frozenset()
    #: Recorded by a method of its own (not ``fire``); it never moves the stage.
    side: bool = False
    #: The event reviews the secretary's own report: the case's secretary never fires it.
    review: bool = False
    #: It moves the case only at the last approval level; before that it keeps the stage.
    per_level: bool = False

    def __attrs_post_init__(self) -> None:
        if self.side and (self.dest is not None or self.source is not None):
            raise ValueError(f"{self.name}: a side step has no source and no destination")
        if not self.side and self.source is None:
            raise ValueError(f"{self.name}: an event fired on a case needs a source stage")
        if self.dest is not None and self.dest is self.source:
            raise ValueError(f"{self.name}: a step that keeps the stage has dest=None")


def _e(name: str, source: Stage | None, dest: Stage | None, label: str, takes: Iterable[str],
       needs: tuple[str, ...], roles: Iterable[str], **flags: bool) -> LifecycleEvent:
    return LifecycleEvent(name=name, source=source, dest=dest, label=label,
                          takes=frozenset(takes), needs=needs, roles=frozenset(roles), **flags)


S = Stage
#: Every event, in the lifecycle's order (the order of ``allowed()``, the policy file's
#: ``[permissions]`` and the diagrams).
LIFECYCLE: tuple[LifecycleEvent, ...] = (
    _e("finish_research", S.RESEARCH, S.DRAFTING, "完成调研", {"problems"}, ("problems",),
       {"organizer"}),
    _e("submit_report", S.DRAFTING, S.APPROVAL, "提交述职报告", {"report"}, ("report",),
       {"secretary"}),
    _e("sign_off", S.APPROVAL, S.MEETING, "审阅签字", {"comment"}, (),
       {"guidance_group", "organizer"}, review=True, per_level=True),
    _e("return_for_revision", S.APPROVAL, S.DRAFTING, "退回修改", {"reason"}, ("reason",),
       {"guidance_group", "organizer"}, review=True),
    _e("hold_meeting", S.MEETING, S.EVALUATION, "召开述职评议会", {"date", "attendance"},
       ("attendance",), {"organizer", "secretary"}),
    _e("comment", S.EVALUATION, None, "点评", {"text", "rating", "reason"}, ("text",),
       {"superior_secretary", "department_delegate"}),
    _e("record_vote", S.EVALUATION, None, "录入测评票数", {"vote"}, ("vote",),
       {"organizer", "scrutineer"}),
    _e("finish_evaluation", S.EVALUATION, S.GROUP_TALK, "完成三评", {"vote"}, (),
       {"organizer"}),
    _e("hold_talk", S.GROUP_TALK, S.REPORT_BACK, "集体约谈", {"notes"}, (),
       {"superior_secretary", "organizer"}),
    _e("submit_special_report", S.REPORT_BACK, S.CLOSED, "报送专题报告", {"text"}, ("text",),
       {"secretary", "party_office"}),
    _e("extend", None, None, "延期", (), (), {"organizer"}, side=True),
)
del S

BY_NAME: Mapping[str, LifecycleEvent] = {e.name: e for e in LIFECYCLE}
#: The events ``Campaign.fire`` takes (and ``allowed`` lists), in order.
FIRED: tuple[LifecycleEvent, ...] = tuple(e for e in LIFECYCLE if not e.side)
#: The side steps, which have a permission of their own but are not fired.
SIDE: tuple[LifecycleEvent, ...] = tuple(e for e in LIFECYCLE if e.side)


class _Level(Protocol):
    """An approval level, as :func:`check` reads it (``reviewflow.policy.ApprovalLevel``)."""

    @property
    def name(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def roles(self) -> frozenset[str]: ...


def usable_roles(event: LifecycleEvent, permitted: frozenset[str]) -> frozenset[str]:
    """The permitted roles through which someone can fire ``event`` on some case: for a
    review, not ``secretary`` (the case's own secretary never reviews their report, and
    nobody else acts as its secretary)."""
    if event.review and _SECRETARY in permitted:
        return permitted - {_SECRETARY}
    return permitted


def _stages(stages: Iterable[Stage]) -> str:
    return ", ".join(f"{s.value} ({s.label})" for s in sorted(stages, key=lambda s: s.order))


def _problems(permissions: Mapping[str, frozenset[str]], levels: Sequence[_Level],
              table: Sequence[LifecycleEvent]) -> list[tuple[LifecycleEvent, str, str, str]]:
    """Each event that cannot be fired: (row, field, why, what to do)."""
    out: list[tuple[LifecycleEvent, str, str, str]] = []
    for event in table:
        field = f"permissions.{event.name}"
        permitted = frozenset(permissions.get(event.name, ()))
        usable = usable_roles(event, permitted)
        hint = ", ".join(f'"{r}"' for r in sorted(event.roles))
        fix = f"give it a role that can act, e.g. {event.name} = [{hint}]"
        if not permitted:
            out.append((event, field, f"no role may {event.name} ({event.label})", fix))
        elif not usable:
            out.append((event, field, f"only secretary may {event.name} ({event.label}), and the "
                        "case's secretary never reviews their own report", fix))
        elif event.per_level:
            for i, level in enumerate(levels):
                if not level.roles & usable:
                    out.append((event, field, (
                        f"approval level {i + 1} ({level.label or level.name}) is signed by "
                        f"{', '.join(sorted(level.roles))}, and {event.name} allows none of "
                        "these roles: nobody can sign that level"),
                        f"add one of its roles to {event.name}, or change the level's roles"))
                    break
    return out


def reachable(blocked: Iterable[str], table: Sequence[LifecycleEvent] = LIFECYCLE) -> set[Stage]:
    """The stages a case can reach from research when the ``blocked`` events never fire."""
    shut = set(blocked)
    seen = {Stage.RESEARCH}
    grew = True
    while grew:
        grew = False
        for event in table:
            if (event.name not in shut and event.dest is not None and event.source in seen
                    and event.dest not in seen):
                seen.add(event.dest)
                grew = True
    return seen


def check(permissions: Mapping[str, frozenset[str]], levels: Sequence[_Level],
          table: Sequence[LifecycleEvent] = LIFECYCLE) -> None:
    """Check a policy's permissions (and approval levels) against the lifecycle ``table``.

    Raises :class:`PolicyError` naming the setting for the first event nobody may fire
    (every event needs a role that someone can act through, and every approval level a
    role that may ``sign_off``), saying which stages it leaves unreachable or without a
    way out; then for a stage nobody can reach, and a stage (other than ``closed``)
    without a way out, should the table itself have one.
    """
    problems = _problems(permissions, levels, table)
    if problems:
        event, field, why, fix = problems[0]
        consequences = []
        if event.source is not None and event.dest is not None and not _exits(
                event.source, {event.name}, table):
            consequences.append(f"a case in {_stages((event.source,))} has no way out")
        lost = set(Stage) - reachable((event.name,), table)
        if lost:
            consequences.append(f"{_stages(lost)} cannot be reached")
        consequence = " and ".join(consequences) or "it can never happen"
        raise PolicyError(f"{why}, so {consequence}; {fix}", field=field)
    unreachable = set(Stage) - reachable((), table)
    if unreachable:
        raise PolicyError(f"{_stages(unreachable)} cannot be reached from research: no event "
                          "leads there", field="permissions")
    for stage in Stage:
        if stage is not Stage.CLOSED and not _exits(stage, (), table):
            raise PolicyError(f"a case in {_stages((stage,))} has no way out: no event leads "
                              "from it to another stage", field="permissions")


def _exits(stage: Stage, blocked: Iterable[str], table: Sequence[LifecycleEvent]) -> bool:
    shut = set(blocked)
    return any(e.source is stage and e.dest is not None and e.name not in shut for e in table)


def _check_table() -> None:
    """The table is a definition too: checked when the module is built."""
    names = [e.name for e in LIFECYCLE]
    if len(set(names)) != len(names):
        raise AssertionError(f"event names repeat in the lifecycle: {names}")
    check({e.name: e.roles for e in LIFECYCLE}, ())


_check_table()
