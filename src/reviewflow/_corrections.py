"""Corrections are events, and time moves forward: the rules that keep a case's record whole.

- **Time moves forward.** Every step records the time of the case's last event on the case
  (``case.data["last_at"]``); a step dated before it is refused with ``time_backwards``
  (:func:`backwards`, called by the engine's one step path). A step at the same instant
  is allowed (a frozen clock makes many).
- **A frozen clock says so.** An event made while the campaign reads a
  :class:`~reviewflow.clock.FrozenClock` carries ``"clock": "frozen"`` in its data
  (:func:`mark`): it is data, sealed like the rest, the hash format is unchanged.
- **A closed vote changes only through a re-vote.** Counts typed with ``record_vote`` or
  ``finish_evaluation(vote=...)`` are refused once the case has a ballot box for its vote
  (tokens issued or paper counts entered: ``vote_closed`` after closing, ``ballot_vote_open``
  before), and are never more than the meeting's attendance (``votes_exceed_attendance``).
- **An amended comment keeps the first.** A second comment on a channel needs a reason
  and keeps the earlier versions under ``comments[channel]["earlier"]`` (``comment_exists``
  without one).

The publication's rules (idempotency keys, re-publication) are applied in
:mod:`reviewflow._engine.publication`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reviewflow.clock import FrozenClock
from reviewflow.exceptions import TransitionRefused
from reviewflow.model import Case

__all__ = [
    "CLOCK_MARK",
    "amend_comment",
    "backwards",
    "backwards_message",
    "check_typed_vote",
    "frozen",
    "mark",
    "time_backwards",
]

#: What an event made with a frozen clock carries in its data.
CLOCK_MARK = {"clock": "frozen"}


def frozen(clock: object) -> bool:
    """Whether ``clock`` stands still (a :class:`FrozenClock`, or one that says ``frozen``)."""
    return isinstance(clock, FrozenClock) or getattr(clock, "frozen", False) is True


def mark(data: dict[str, Any], clock: object) -> dict[str, Any]:
    """Return the record data, with ``"clock": "frozen"`` when ``clock`` is frozen (a copy:
    the data may be shared with the case's snapshot)."""
    if frozen(clock):
        return {**data, **CLOCK_MARK}
    return data


def _offset(iso: str) -> str:
    """The UTC offset of an ISO time written by ``isoformat()`` (``+08:00``)."""
    return iso[max(iso.rfind("+"), iso.rfind("-")):]


def backwards(iso: str, last: str) -> bool:
    """Whether the time ``iso`` is before ``last`` (both ISO times with an offset).

    Times with the same offset compare as text (``isoformat`` writes them so that text
    order is time order); others, e.g. across a daylight-saving change, are read first.

    >>> backwards("2016-01-04T09:00:00+08:00", "2016-01-04T09:00:00.500000+08:00")
    True
    >>> backwards("2016-01-04T02:00:00+01:00", "2016-01-04T09:00:00+08:00")
    False
    """
    if _offset(iso) == _offset(last):
        return iso < last
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(iso) < dt.datetime.fromisoformat(last)
    except (TypeError, ValueError):  # pragma: no cover  # both were written by isoformat()
        return False


def backwards_message(iso: str, last: str) -> str:
    """What a ``time_backwards`` refusal says."""
    return (f"this step is dated {iso}, before the case's last event ({last}); a case's "
            "history only moves forward: check the clock (or --now) and record the step at "
            "the present time (时间不能倒流)")


def time_backwards(case: Case, event: str, iso: str, last: str) -> TransitionRefused:
    """The refusal of a step dated before the case's last event."""
    return TransitionRefused("time_backwards", backwards_message(iso, last),
                             case_id=case.case_id, event=event,
                             details={"at": iso, "last_event_at": last})


# --------------------------------------------------------------------------- typed vote counts


def check_typed_vote(case: Case, event: str, counts: Mapping[str, Any]) -> None:
    """Refuse counts typed by hand where the vote is held with ballots, or more votes
    than people at the meeting."""
    held = case.data.get("ballot_vote")
    rounds = held.get("rounds") if isinstance(held, Mapping) else None
    if rounds:
        current = rounds[-1]
        number, status = current.get("number"), current.get("status")
        if status == "open":
            raise TransitionRefused(
                "ballot_vote_open",
                f"round {number} of this case's vote is held with ballots (tokens or paper "
                "counts); typed counts cannot replace them: cast or enter the ballots and "
                "close the vote (reviewflow ballots close)",
                case_id=case.case_id, event=event,
            )
        raise TransitionRefused(
            "vote_closed",
            f"round {number} of this case's vote is {status} with ballots; its counts change "
            "only through a re-vote: open one with `reviewflow ballots revote CASE --reason "
            "...` (Campaign.revote), then hold the new round (已结束的测评只能重新测评)",
            case_id=case.case_id, event=event,
        )
    meeting = case.data.get("meeting")
    attendance = meeting.get("attendance") if isinstance(meeting, Mapping) else None
    if not isinstance(attendance, Mapping):
        return
    present = sum(n for n in attendance.values() if isinstance(n, int))
    votes = sum(n for n in counts.values() if isinstance(n, int) and not isinstance(n, bool))
    if votes > present:
        raise TransitionRefused(
            "votes_exceed_attendance",
            f"{votes} votes typed, but the meeting recorded {present} attendees; a vote "
            "cannot count more ballots than people present (票数不能多于到会人数): "
            "correct the counts",
            case_id=case.case_id, event=event, details={"votes": votes, "attendance": present},
        )


# --------------------------------------------------------------------------- comments


def amend_comment(case: Case, channel: str, entry: dict[str, Any], reason: str,
                  at: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Return the channel's comment after ``entry`` (and the version it amends, if any).

    The first comment on a channel is kept as it is given. A later one needs a
    ``reason``: the earlier versions are kept, oldest first, under ``earlier``, each
    with the time it was made; the newest is what results and reports show.
    """
    comments = case.data.get("comments", {})
    previous = comments.get(channel) if isinstance(comments, Mapping) else None
    if previous is None:
        return {**entry, "at": at}, None
    if not reason.strip():
        raise TransitionRefused(
            "comment_exists",
            f"{channel} already commented on this case (by {previous.get('by')}); a comment "
            "is never replaced: to amend it, comment again with reason=\"...\" (the first "
            "comment is kept) (点评已存在，修改需说明理由)",
            case_id=case.case_id, event="comment",
        )
    earlier = list(previous.get("earlier", ()))
    earlier.append({k: v for k, v in previous.items() if k != "earlier"})
    amended = {k: v for k, v in previous.items() if k not in ("earlier", "reason")}
    return {**entry, "at": at, "reason": reason, "earlier": earlier}, amended


# --------------------------------------------------------------------------- publication


def published_by(case: Case, key: str | None, scope: str) -> bool:
    """Whether the case's publication was made by the command with idempotency ``key``
    (then it is not published again); IdempotencyKeyReused for another scope."""
    if key is None:
        return False
    previous = case.data.get("publication")
    if not isinstance(previous, Mapping) or previous.get("key") != key:
        return False
    if previous.get("scope") != scope:
        from reviewflow.exceptions import IdempotencyKeyReused

        raise IdempotencyKeyReused(
            f"idempotency key {key!r} was first used to publish to {previous.get('scope')!r}, "
            f"not {scope!r}; use a new key for a new publication"
        )
    return True


def republication(case: Case, reason: str | None) -> dict[str, Any] | None:
    """Return what a new publication of the case supersedes (None: it is the first).

    A case already published is published again only with a ``reason`` (refused with
    ``already_published`` otherwise); the new publication names the one it supersedes.
    """
    previous = case.data.get("publication")
    if not isinstance(previous, Mapping):
        return None
    if not reason or not reason.strip():
        raise TransitionRefused(
            "already_published",
            f"the results of this case were published already (to {previous.get('scope')!r}, "
            f"score {previous.get('rounded')}, grade {previous.get('grade')}); publishing "
            "again needs a reason, which is recorded with what the new publication "
            "supersedes (reason=..., `reviewflow publish --reason ...`); to finish a "
            "publication that was interrupted, run it again with the same idempotency key "
            "(--key) (结果已公布，重新公布需说明理由)",
            case_id=case.case_id, event="publish_results",
        )
    return {k: v for k, v in previous.items() if k not in ("supersedes", "reason")}


def obligations_after(case: Case, brought: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the case's obligations after a publication that brings ``brought``.

    An open obligation the new grade brings again is kept once; an open one it no
    longer brings (a re-publication after a re-vote) is kept, marked ``superseded``.
    """
    kept: list[dict[str, Any]] = []
    wanted = {(o["kind"], o["grade"]) for o in brought}
    have = set()
    for o in case.data.get("obligations", []):
        key = (o.get("kind"), o.get("grade"))
        if o.get("status") == "open" and key not in wanted:
            o = {**o, "status": "superseded"}
        elif o.get("status") == "open":
            have.add(key)
        kept.append(o)
    kept += [o for o in brought if (o["kind"], o["grade"]) not in have]
    return kept
