"""Due rules and ladders from policy-file data, and the check of a policy's due rules."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from typing import Any

from reviewflow._due.anchors import At, Entered, MeetingDate, OnDay, StageDue
from reviewflow._due.base import DAY_TIMES, Anchor, DayTime, DueRule
from reviewflow._due.ladder import RUNG_UNITS, Rung, RungUnit
from reviewflow._due.rules import After, EarlierOf, LaterOf, Unit
from reviewflow._due.status import due_rule_of
from reviewflow.exceptions import DeadlineError, PolicyError
from reviewflow.model import Stage


def ladder_from_json(items: Any, field: str) -> tuple[Rung, ...]:
    """Build a ladder from policy-file data; raise :class:`PolicyError` naming ``field``.

    Each item is a table with exactly one of ``working_days``, ``days`` or ``hours`` (the
    offset from the due time, negative before it), ``action`` (remind, escalate, auto),
    and optionally ``to``, ``auto``, ``time`` and ``id``.
    """
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise PolicyError(
            f"a ladder is a list of rungs, got {items!r}; write e.g. "
            "[{ working_days = -3, action = \"remind\", to = \"secretary\" }]",
            field=field,
        )
    rungs: list[Rung] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        if not isinstance(item, Mapping):
            raise PolicyError(f"a rung is a table, got {item!r}", field=where)
        allowed = {"id", "action", "to", "auto", "time", *RUNG_UNITS}
        extra = sorted(set(item) - allowed)
        if extra:
            raise PolicyError(
                f"unknown key {extra[0]!r}; a rung takes: {', '.join(sorted(allowed))}",
                field=f"{where}.{extra[0]}",
            )
        units = [u for u in RUNG_UNITS if u in item]
        if len(units) != 1:
            raise PolicyError(
                "give exactly one of working_days, days or hours (the offset from the due "
                "time, negative before it)", field=where,
            )
        unit: RungUnit = units[0]  # type: ignore[assignment]  # one of RUNG_UNITS
        offset = item[unit]
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise PolicyError(f"{offset!r} is not a whole number", field=f"{where}.{unit}")
        try:
            kwargs = {k: item[k] for k in ("to", "auto", "time", "id") if k in item}
            rung = Rung(offset=offset, unit=unit, action=item.get("action", "remind"), **kwargs)
        except DeadlineError as exc:
            raise PolicyError(str(exc), field=where) from None
        if rung.id in seen:
            raise PolicyError(
                f"rung id {rung.id!r} is used twice; give each rung its own id",
                field=f"{where}.id",
            )
        seen.add(rung.id)
        rungs.append(rung)
    return tuple(rungs)


# -- reading rules from policy files ---------------------------------------------------------


def _parse_aware(value: Any, field: str) -> _dt.datetime:
    if isinstance(value, str):
        try:  # not pendulum.parse: it would take a time without an offset as UTC
            value = _dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise PolicyError(
                f"{value!r} is not a date-time; write e.g. 2016-01-18T00:00:00+08:00",
                field=field,
            ) from None
    if not isinstance(value, _dt.datetime) or value.tzinfo is None:
        raise PolicyError(
            f"{value!r} needs a date, a time and an offset, e.g. 2016-01-18T00:00:00+08:00",
            field=field,
        )
    return value


def _parse_day(value: Any, field: str) -> _dt.date:
    if isinstance(value, _dt.datetime):
        raise PolicyError(f"{value!r} is a date-time; give a day such as 2016-01-17", field=field)
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise PolicyError(f"{value!r} is not a day; write e.g. 2016-01-17", field=field)


def _parse_time(data: Mapping[str, Any], field: str, default: DayTime) -> DayTime:
    value = data.get("time", default)
    if value not in DAY_TIMES:
        raise PolicyError(
            f"{value!r} is not a time of day rule; write \"end\" (23:59:59), \"start\" (00:00) "
            "or \"keep\" (the anchor's time)", field=f"{field}.time",
        )
    return value  # type: ignore[no-any-return]  # checked against DAY_TIMES


def _anchor_from_json(value: Any, field: str) -> Anchor:
    if isinstance(value, str):
        text = value.strip()
        if text == "meeting":
            return MeetingDate()
        kind, _, stage = text.partition(":")
        if kind in ("entered", "due") and stage:
            try:
                return Entered(stage) if kind == "entered" else StageDue(stage)
            except DeadlineError as exc:
                raise PolicyError(str(exc), field=field) from None
    elif isinstance(value, Mapping):
        rule = due_rule_from_json(value, field)
        if isinstance(rule, (At, OnDay)):
            return rule
        raise PolicyError("a table anchor must be { at = ... } or { on = ... }", field=field)
    raise PolicyError(
        f"cannot read an anchor from {value!r}; write \"entered:<stage>\", \"due:<stage>\", "
        "\"meeting\", or { at = 2016-01-11T00:00:00+08:00 }",
        field=field,
    )


_RULE_KEYS = {
    "at": {"at"},
    "on": {"on", "time"},
    "after": {"after", "working_days", "days", "time"},
    "earliest": {"earliest"},
    "latest": {"latest"},
}


def due_rule_from_json(data: Any, field: str) -> DueRule:
    """Build a due rule from policy-file data; raise :class:`PolicyError` naming ``field``.

    Accepts ``{at = 2016-01-18T00:00:00+08:00}`` (an aware ISO time or a TOML datetime),
    ``{on = 2016-01-17, time = "end"}``, ``{after = "meeting", working_days = 5}``
    (anchors: ``"entered:<stage>"``, ``"due:<stage>"``, ``"meeting"``, or a table
    ``{at = ...}``; ``days`` for calendar days; ``time`` "end" by default, "start" or
    "keep"), ``{earliest = [rule, rule]}`` and ``{latest = [rule, rule]}``.
    """
    if not isinstance(data, Mapping):
        raise PolicyError(
            f"cannot read a due rule from {data!r}; write e.g. {{ at = 2016-01-18T00:00:00+08:00 }}",
            field=field,
        )
    kinds = [k for k in _RULE_KEYS if k in data]
    if len(kinds) != 1:
        raise PolicyError(
            f"cannot read a due rule from {dict(data)!r}; give exactly one of at, on, after, "
            "earliest, latest, e.g. { at = 2016-01-18T00:00:00+08:00 } or "
            "{ after = \"meeting\", working_days = 5 }",
            field=field,
        )
    kind = kinds[0]
    extra = sorted(set(data) - _RULE_KEYS[kind])
    if extra:
        raise PolicyError(
            f"{extra[0]!r} does not go with {kind!r}; this rule takes: "
            f"{', '.join(sorted(_RULE_KEYS[kind]))}",
            field=f"{field}.{extra[0]}",
        )
    if kind == "at":
        return At(_parse_aware(data["at"], f"{field}.at"))
    if kind == "on":
        return OnDay(day=_parse_day(data["on"], f"{field}.on"),
                     time=_parse_time(data, field, "end"))
    if kind == "after":
        units = [u for u in ("working_days", "days") if u in data]
        if len(units) != 1:
            raise PolicyError(
                "give exactly one of working_days or days with after", field=field
            )
        unit: Unit = units[0]  # type: ignore[assignment]  # working_days or days
        n = data[unit]
        if not isinstance(n, int) or isinstance(n, bool) or abs(n) > 3660:
            raise PolicyError(f"{n!r} is not a sensible whole number of days", field=f"{field}.{unit}")
        anchor = _anchor_from_json(data["after"], f"{field}.after")
        return After(anchor=anchor, n=n, unit=unit, time=_parse_time(data, field, "end"))
    parts = data[kind]
    if isinstance(parts, (str, bytes, Mapping)) or not isinstance(parts, Iterable):
        raise PolicyError(f"{kind} takes a list of two or more rules", field=f"{field}.{kind}")
    rules = [due_rule_from_json(p, f"{field}.{kind}[{i}]") for i, p in enumerate(parts)]
    if len(rules) < 2:
        raise PolicyError(f"{kind} takes a list of two or more rules", field=f"{field}.{kind}")
    return EarlierOf(rules) if kind == "earliest" else LaterOf(rules)


def _stage_refs(rule: Any) -> Iterable[tuple[str, Stage]]:
    if isinstance(rule, After):
        anchor = rule.anchor
        if isinstance(anchor, StageDue):
            yield "due", anchor.stage
        elif isinstance(anchor, Entered):
            yield "entered", anchor.stage
        else:
            yield from _stage_refs(anchor)
    elif isinstance(rule, (EarlierOf, LaterOf)):
        for part in rule.rules:
            yield from _stage_refs(part)


def check_due_rules(stages: Mapping[Any, Any], field: str = "stages") -> None:
    """Refuse stage due rules that refer to each other in a loop, or to a stage's own due.

    ``stages`` maps each stage to its :class:`~reviewflow.policy.StageRule` (or due rule).
    Raises :class:`PolicyError` naming the field.
    """
    graph: dict[Stage, set[Stage]] = {}
    for stage, rule in stages.items():
        due = due_rule_of(rule)
        graph[Stage(stage)] = {s for kind, s in _stage_refs(due) if kind == "due"}
    state: dict[Stage, int] = {}

    def visit(node: Stage, path: list[Stage]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ()), key=lambda s: s.order):
            if state.get(nxt) == 1:
                loop = " -> ".join(s.value for s in [*path[path.index(nxt):], nxt])
                raise PolicyError(
                    f"due rules refer to each other in a loop ({loop}); anchor one of them on "
                    "a fixed time, a stage entry or the meeting",
                    field=f"{field}.{node.value}.due",
                )
            if state.get(nxt) is None:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph, key=lambda s: s.order):
        if state.get(node) is None:
            visit(node, [node])
