"""Replay: fold a case's sealed event records into the case state they imply.

A case row is a snapshot kept for speed; the events are the record. :func:`replay` is a
pure function (no store, no clock, no policy) that starts from nothing and applies each
record in order, the way the step that sealed it changed ``case.data``; ``verify``
compares its result with the stored case field by field, so an edit of the row that
the chain does not show (vote counts, a score, a swapped secretary) is found.

Each event has one fold in :data:`FOLDS`. A step that changes ``case.data`` must seal
what the change needs in its record, and its event must have a fold here (a test
replays every event of a full lifecycle and compares): register one with
:func:`fold`. A record whose event has no fold is reported by ``verify``, never
guessed at.

>>> from reviewflow.model import EventRecord, GENESIS_HASH
>>> first = EventRecord.make("2016", "c1", 1, "open", "bureau", "organizer",
...     "2016-01-04T09:00:00+08:00", None, "research", None,
...     {"organization": "一中", "secretary": {"id": "li", "name": "李", "roles": ["secretary"]}},
...     GENESIS_HASH)
>>> state = replay([first])
>>> state.stage, state.version, state.organization, state.data["entered"]
('research', 1, '一中', {'research': '2016-01-04T09:00:00+08:00'})
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from reviewflow.model import GENESIS_HASH, EventRecord

__all__ = ["FOLDS", "Replayed", "UnknownEvent", "fold", "replay"]


@attrs.define(slots=True, eq=False)
class Replayed:
    """The state of one case as its events say it is (the shape of a stored case)."""

    case_id: str = ""
    stage: str = ""
    version: int = 0
    last_hash: str = GENESIS_HASH
    organization: str = ""
    secretary: dict[str, Any] = attrs.field(factory=dict)
    previous_case_id: str | None = None
    data: dict[str, Any] = attrs.field(factory=dict)
    #: The event (seq, name) that last set each top-level ``data`` key and case field.
    set_by: dict[str, tuple[int, str]] = attrs.field(factory=dict)

    def fields(self) -> dict[str, Any]:
        """The compared fields, named as :func:`reviewflow.audit.compare_case` names them."""
        return {
            "stage": self.stage, "version": self.version, "last_hash": self.last_hash,
            "organization": self.organization, "secretary": self.secretary,
            "previous_case_id": self.previous_case_id,
        }


class UnknownEvent(Exception):
    """A record whose event has no fold: the replay cannot say what it changed."""

    def __init__(self, record: EventRecord) -> None:
        super().__init__(f"event {record.seq} ({record.event}) has no replay fold")
        self.record = record


Fold = Callable[[Replayed, EventRecord], None]
#: The fold of each event: ``fold(state, record)`` applies the record to ``state.data``.
FOLDS: dict[str, Fold] = {}


def fold(*events: str) -> Callable[[Fold], Fold]:
    """Register a fold for one or more events (decorator)."""
    def register(fn: Fold) -> Fold:
        for event in events:
            FOLDS[event] = fn
        return fn
    return register


def replay(records: Iterable[EventRecord]) -> Replayed:
    """Fold ``records`` (one case's, in order) into the state they imply.

    Raises :class:`UnknownEvent` for an event without a fold. The records are not
    checked here (that is :func:`reviewflow.audit.verify_chain`'s work).
    """
    state = Replayed()
    for record in records:
        fn = FOLDS.get(record.event)
        if fn is None:
            raise UnknownEvent(record)
        before = dict(state.data)
        fn(state, record)
        if record.event != "deadline_rung" and not (
                record.event == "return_for_revision" and record.data.get("automatic")):
            state.data["last_at"] = record.at  # every step but the sweep's says when it was
        if record.to_stage != record.from_stage:
            entered = dict(state.data.get("entered") or {})
            entered[record.to_stage] = record.at
            state.data["entered"] = entered
        mark = (record.seq, record.event)
        for key, value in state.data.items():
            if before.get(key) is not value:
                state.set_by[key] = mark
        for key in before.keys() - state.data.keys():
            state.set_by[key] = mark
        if record.event == "open":
            for key in ("organization", "secretary", "previous_case_id"):
                state.set_by[key] = mark
        state.set_by["stage"] = state.set_by["version"] = state.set_by["last_hash"] = mark
        state.case_id = record.case_id
        state.version = record.seq
        state.last_hash = record.hash
        state.stage = record.to_stage
    return state


def _json(value: Any) -> Any:
    """A copy of record data that the state may keep (records stay as they were sealed)."""
    kind = type(value)
    if kind is dict:
        return {k: _json(v) if type(v) in _NESTED else v for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_json(v) if type(v) in _NESTED else v for v in value]
    if isinstance(value, Mapping):
        return {k: _json(v) for k, v in value.items()}
    return value


_NESTED = frozenset({dict, list, tuple})


def _d(record: EventRecord) -> Mapping[str, Any]:
    return record.data


# --------------------------------------------------------------------------- the lifecycle


@fold("open")
def _open(s: Replayed, r: EventRecord) -> None:
    d = _d(r)
    s.organization = str(d.get("organization", ""))
    s.secretary = _json(d.get("secretary") or {})
    s.previous_case_id = d.get("previous_case_id")
    s.data = {}
    if d.get("guidance_group"):
        s.data["guidance_group"] = d["guidance_group"]
    if d.get("carried_over"):
        s.data["carried_over"] = _json(d["carried_over"])


@fold("finish_research")
def _finish_research(s: Replayed, r: EventRecord) -> None:
    s.data["problems"] = _json(_d(r)["problems"])


@fold("submit_report")
def _submit_report(s: Replayed, r: EventRecord) -> None:
    s.data["report"] = _json(_d(r)["report"])
    s.data["signatures"] = []


@fold("sign_off")
def _sign_off(s: Replayed, r: EventRecord) -> None:
    d = _d(r)
    signatures = list(s.data.get("signatures", ()))
    signatures.append({"level": d["level"], "actor": r.actor_id, "comment": d.get("comment", "")})
    s.data["signatures"] = signatures


@fold("return_for_revision")
def _return_for_revision(s: Replayed, r: EventRecord) -> None:
    s.data["signatures"] = []
    s.data["returns"] = s.data.get("returns", 0) + 1


@fold("hold_meeting")
def _hold_meeting(s: Replayed, r: EventRecord) -> None:
    d = _d(r)
    s.data["meeting"] = {"date": d["date"], "attendance": _json(d["attendance"])}


@fold("comment")
def _comment(s: Replayed, r: EventRecord) -> None:
    """The first comment on a channel as given; an amendment keeps the earlier versions."""
    d = _d(r)
    comments = dict(s.data.get("comments", {}))
    channel = d["channel"]
    entry: dict[str, Any] = {"by": r.actor_id, "text": d["text"], "rating": d.get("rating"),
                             "at": r.at}
    previous = comments.get(channel)
    if previous is not None:
        earlier = _json(list(previous.get("earlier", ())))
        earlier.append({k: _json(v) for k, v in previous.items() if k != "earlier"})
        entry.update(reason=r.reason or "", earlier=earlier)
    comments[channel] = entry
    s.data["comments"] = comments


@fold("record_vote")
def _record_vote(s: Replayed, r: EventRecord) -> None:
    s.data["vote"] = _json(_d(r)["vote"])


@fold("finish_evaluation")
def _finish_evaluation(s: Replayed, r: EventRecord) -> None:
    d = _d(r)
    s.data["vote"] = _json(d["vote"])
    s.data["evaluation"] = {"score": d["score"], "rounded": d["rounded"]}


@fold("hold_talk")
def _hold_talk(s: Replayed, r: EventRecord) -> None:
    s.data["talk"] = {"by": r.actor_id, "notes": _d(r).get("notes", "")}


@fold("submit_special_report")
def _submit_special_report(s: Replayed, r: EventRecord) -> None:
    s.data["special_report"] = {"by": r.actor_id, "text": _d(r)["text"]}


# --------------------------------------------------------------------------- the vote


def _new_round(number: int, reason: str | None = None) -> dict[str, Any]:
    return {"number": number, "status": "open", "issued": {}, "eligible": None, "paper": {},
            "tally": None, "digest": None, "reason": reason}


def _vote(s: Replayed, r: EventRecord) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    vote = _json(s.data.get("ballot_vote") or {"case_id": r.case_id, "rounds": []})
    s.data["ballot_vote"] = vote
    rounds: list[dict[str, Any]] = vote["rounds"]
    return vote, rounds


@fold("issue_ballots")
def _issue_ballots(s: Replayed, r: EventRecord) -> None:
    _vote_data, rounds = _vote(s, r)
    if not rounds:
        rounds.append(_new_round(int(_d(r)["round"])))
    issued = rounds[-1]["issued"]
    for category, n in _d(r).get("issued", {}).items():
        issued[category] = issued.get(category, 0) + int(n)


@fold("enter_paper_counts")
def _enter_paper_counts(s: Replayed, r: EventRecord) -> None:
    from reviewflow.ballots import ALL

    _vote_data, rounds = _vote(s, r)
    if not rounds:
        rounds.append(_new_round(int(_d(r)["round"])))
    current = rounds[-1]
    paper, issued = current["paper"], current["issued"]
    for entry in _d(r).get("entries", ()):
        key = ALL if entry.get("category") is None else entry["category"]
        old = paper.get(key)
        if old is not None:
            issued[key] = issued.get(key, 0) - int(old.get("issued", 0))
        paper[key] = _json(entry)
        issued[key] = issued.get(key, 0) + int(entry.get("issued", 0))
        if not issued[key]:
            del issued[key]


@fold("close_vote")
def _close_vote(s: Replayed, r: EventRecord) -> None:
    d = _d(r)
    _vote_data, rounds = _vote(s, r)
    if not rounds:  # pragma: no cover  # a close needs a round
        rounds.append(_new_round(int(d["round"])))
    current = rounds[-1]
    current["status"] = d["status"]
    current["tally"] = _json(d["tally"])
    current["digest"] = d["digest"]
    if d["status"] == "void":
        current["reason"] = r.reason
    else:
        s.data["vote"] = _json(d["tally"]["counts"])
        s.data["vote_tally"] = _json(d["tally"])


@fold("revote")
def _revote(s: Replayed, r: EventRecord) -> None:
    d = _d(r)
    _vote_data, rounds = _vote(s, r)
    voided = d.get("voided")
    reason = r.reason
    if voided is not None and rounds:
        current = rounds[-1]
        void_reason = voided.get("reason", r.reason)
        current["status"] = "void"
        current["tally"] = _json(voided["tally"])
        current["digest"] = voided["digest"]
        current["reason"] = void_reason
        # The new round's own reason; records before it was sealed: none when the
        # record's reason is the void reason.
        reason = d.get("round_reason", None if r.reason == void_reason else r.reason)
    rounds.append(_new_round(int(d["round"]), reason))
    s.data.pop("vote", None)


@fold("record_score")
def _record_score(s: Replayed, r: EventRecord) -> None:
    d = _d(r)
    inputs = dict(s.data.get("channel_inputs", {}))
    inputs[d["channel"]] = d["value"]
    s.data["channel_inputs"] = inputs


@fold("flag_condition")
def _flag_condition(s: Replayed, r: EventRecord) -> None:
    s.data["conditions"] = sorted(set(s.data.get("conditions", [])) | {_d(r)["condition"]})


# --------------------------------------------------------------------------- results


@fold("publish_results")
def _publish_results(s: Replayed, r: EventRecord) -> None:
    from reviewflow._corrections import CLOCK_MARK, obligations_after
    from reviewflow.scoring import OBLIGATION_LABELS

    d = _d(r)
    s.data["publication"] = {k: _json(v) for k, v in d.items() if k not in CLOCK_MARK}
    follow_ups = d.get("follow_ups") or ()
    if follow_ups or "supersedes" in d:
        brought = [{"kind": o, "label": OBLIGATION_LABELS.get(o, o), "grade": d.get("grade"),
                    "status": "open"} for o in follow_ups]
        s.data["obligations"] = obligations_after(_AsCase(s.data), brought)  # type: ignore[arg-type]


@fold("feedback")
def _feedback(s: Replayed, r: EventRecord) -> None:
    d = _d(r)
    s.data["feedback"] = {"to": d["to"], "grade": d["grade"]}
    if "key" in d:
        s.data["feedback"]["key"] = d["key"]


class _AsCase:
    """What the publication's obligation rule reads of a case: its data."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data


# --------------------------------------------------------------------------- deadlines


@fold("extend")
def _extend(s: Replayed, r: EventRecord) -> None:
    d = _d(r)
    extensions = dict(s.data.get("extensions") or {})
    extensions[d["stage"]] = {"until": d["until"], "reason": r.reason, "by": r.actor_id,
                              "at": r.at, "previous": d["previous_due"]}
    s.data["extensions"] = extensions


@fold("deadline_rung")
def _deadline_rung(s: Replayed, r: EventRecord) -> None:
    import datetime as _dt

    from reviewflow.deadlines import due_tag

    d = _d(r)
    stage = d["stage"]
    rung = d["rung"]
    rungs = dict(s.data.get("rungs") or {})
    marks = dict(rungs.get(stage) or {})
    marks[f"{rung['id']}@{due_tag(_dt.datetime.fromisoformat(d['due']))}"] = r.at
    rungs[stage] = marks
    s.data["rungs"] = rungs
    if rung.get("auto") == "mark_missed":
        missed = dict(s.data.get("missed") or {})
        missed[stage] = {"due": d["due"], "at": r.at, "rung": rung["id"]}
        s.data["missed"] = missed
