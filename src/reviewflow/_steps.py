"""The lifecycle's event handlers: what each step checks in its data and records.

Each handler checks the command's data against the case, records what the step
adds on ``case.data`` (a copy, replaced key by key, never edited in place), and
returns (record data, reason, keyword arguments for the machine). A handler
refuses with :class:`TransitionRefused`; the engine then changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pendulum

from reviewflow._corrections import amend_comment, check_typed_vote
from reviewflow._lifecycle import FIRED
from reviewflow.exceptions import TransitionRefused
from reviewflow.model import Actor, Case

if TYPE_CHECKING:
    from reviewflow._engine.context import StepContext


__all__ = ["HANDLERS", "NEEDS", "Handler"]

Handler = Callable[["StepContext", Case, Actor, str, dict[str, Any], pendulum.DateTime],
                   tuple[dict[str, Any], str | None, dict[str, Any]]]




def _refuse(reason: str, case: Case, event: str, message: str,
            findings: tuple[str, ...] = ()) -> TransitionRefused:
    return TransitionRefused(reason, message, case_id=case.case_id, event=event, findings=findings)


def _text(data: dict[str, Any], key: str, case: Case, event: str, *, required: bool,
          limit: int = 20000) -> str:
    value = data.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise _refuse("invalid_data", case, event, f"{key} must be text, got {type(value).__name__}")
    if required and not value.strip():
        raise _refuse("missing_data", case, event, f"{event} needs {key}=... (text)")
    if len(value) > limit:
        raise _refuse("invalid_data", case, event, f"{key} is longer than {limit} characters")
    return value


#: The data each event takes (anything else is refused): the lifecycle table's ``takes``.
_ALLOWED: dict[str, frozenset[str]] = {e.name: e.takes for e in FIRED}


def _check_keys(data: dict[str, Any], allowed: frozenset[str], case: Case, event: str) -> None:
    if data.keys() <= allowed:  # the usual case, without building a set
        return
    unknown = set(data) - allowed
    if unknown:
        raise _refuse("invalid_data", case, event,
                      f"unknown data {', '.join(sorted(map(repr, unknown)))}; {event} takes "
                      f"{', '.join(sorted(allowed)) or 'no data'}")


def _finish_research(c: StepContext, case: Case, actor: Actor, role: str,
                     data: dict[str, Any], now: pendulum.DateTime) -> Any:
    _check_keys(data, _ALLOWED["finish_research"], case, "finish_research")
    problems = data.get("problems")
    if problems is not None and not isinstance(problems, list | tuple):
        raise _refuse("missing_data", case, "finish_research",
                      f"problems must be a list of texts (问题清单), got "
                      f"{type(problems).__name__}: problems=[\"...\", ...]")
    if not problems or not all(isinstance(p, str) and p.strip() for p in problems):
        raise _refuse("missing_data", case, "finish_research",
                      "the research needs its problem list (问题清单): problems=[\"...\", ...], "
                      "each a non-empty text")
    listed = [str(p) for p in problems].copy()  # the copy is exactly sized: kept per case
    case.data["problems"] = listed
    return {"problems": listed}, None, {}


def _submit_report(c: StepContext, case: Case, actor: Actor, role: str,
                   data: dict[str, Any], now: pendulum.DateTime) -> Any:
    from reviewflow.content import check_report
    from reviewflow.model import Report

    _check_keys(data, _ALLOWED["submit_report"], case, "submit_report")
    report = data.get("report")
    if isinstance(report, Mapping):
        try:
            report = Report.from_json(report)
        except (TypeError, ValueError) as exc:
            raise _refuse("invalid_data", case, "submit_report", f"bad report: {exc}") from None
    if report is not None and not isinstance(report, Report):
        raise _refuse("missing_data", case, "submit_report",
                      f"report must be a reviewflow.Report or a table of its parts, got "
                      f"{type(report).__name__}")
    if not isinstance(report, Report):
        raise _refuse("missing_data", case, "submit_report",
                      "submit_report needs report=reviewflow.Report(...)")
    findings = check_report(report, c.policy.content, carried_over=case.data.get("carried_over", ()))
    if findings:
        raise _refuse(
            "content_rule", case, "submit_report",
            f"the report breaks {len(findings)} content rule(s): "
            + "; ".join(f.message for f in findings),
            findings=tuple(f.code for f in findings),
        )
    body = report.to_json()
    case.data["report"] = body
    case.data["signatures"] = []
    return {"report": body}, None, {}


def _sign_off(c: StepContext, case: Case, actor: Actor, role: str,
              data: dict[str, Any], now: pendulum.DateTime) -> Any:
    _check_keys(data, _ALLOWED["sign_off"], case, "sign_off")
    comment = _text(data, "comment", case, "sign_off", required=False, limit=5000)
    levels = c.policy.approval_levels
    signatures = list(case.data.get("signatures", ()))
    level = levels[len(signatures)]
    signatures.append({"level": level.name, "actor": actor.id, "comment": comment})
    case.data["signatures"] = signatures
    last = len(signatures) == len(levels)
    return {"level": level.name, "comment": comment}, None, {"last_level": last}


def _return_for_revision(c: StepContext, case: Case, actor: Actor, role: str,
                         data: dict[str, Any], now: pendulum.DateTime) -> Any:
    _check_keys(data, _ALLOWED["return_for_revision"], case, "return_for_revision")
    reason = _text(data, "reason", case, "return_for_revision", required=True, limit=5000)
    level = len(case.data.get("signatures", ()))
    case.data["signatures"] = []
    case.data["returns"] = case.data.get("returns", 0) + 1
    return {"at_level": level + 1}, reason, {}


def _hold_meeting(c: StepContext, case: Case, actor: Actor, role: str,
                  data: dict[str, Any], now: pendulum.DateTime) -> Any:
    _check_keys(data, _ALLOWED["hold_meeting"], case, "hold_meeting")
    date = data.get("date", now.date())
    if isinstance(date, str):
        try:
            date = pendulum.Date.fromisoformat(date)
        except ValueError:
            raise _refuse("invalid_data", case, "hold_meeting",
                          f"date {date!r} is not a date; write e.g. 2016-01-20") from None
    if not hasattr(date, "isoformat") or hasattr(date, "hour"):
        raise _refuse("invalid_data", case, "hold_meeting", "date must be a date (2016-01-20)")
    if date > now.date():
        raise _refuse("invalid_data", case, "hold_meeting",
                      f"the meeting date {date.isoformat()} is in the future; record it once held")
    opens = c.meeting_opens
    if opens is not None and date < opens:
        raise _refuse("too_early", case, "hold_meeting",
                      f"述职评议会 may be held from {opens.isoformat()}; "
                      f"{date.isoformat()} is before that")
    attendance = data.get("attendance")
    if not isinstance(attendance, Mapping) or not attendance:
        raise _refuse("missing_data", case, "hold_meeting",
                      "hold_meeting needs attendance={category: count, ...} "
                      "(e.g. party_members, cadres, public, parents_teachers)")
    for key, n in attendance.items():
        if not isinstance(key, str) or not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise _refuse("invalid_data", case, "hold_meeting",
                          f"attendance {key!r}: {n!r} must be a category name and a whole "
                          "number >= 0")
    meeting = {"date": date.isoformat(), "attendance": dict(attendance)}
    case.data["meeting"] = meeting
    return dict(meeting), None, {}


_COMMENT_CHANNELS = ("superior_secretary", "department_delegate")


def _comment(c: StepContext, case: Case, actor: Actor, role: str,
             data: dict[str, Any], now: pendulum.DateTime) -> Any:
    _check_keys(data, _ALLOWED["comment"], case, "comment")
    text = _text(data, "text", case, "comment", required=True, limit=20000)
    rating = data.get("rating")
    if rating is not None and not isinstance(rating, str | int):
        raise _refuse("invalid_data", case, "comment", "rating must be a grade key or a number")
    reason = _text(data, "reason", case, "comment", required=False, limit=5000)
    entry, amended = amend_comment(case, role, {"by": actor.id, "text": text, "rating": rating},
                                   reason, now.isoformat())
    case.data["comments"] = {**case.data.get("comments", {}), role: entry}
    record: dict[str, Any] = {"channel": role, "text": text, "rating": rating}
    if amended is not None:  # the amendment names the version it replaces (kept on the case)
        record["amends"] = amended
    return record, reason or None, {}


def _vote_counts(c: StepContext, case: Case, event: str, vote: Any) -> tuple[dict[str, int], Decimal]:
    from reviewflow.exceptions import ScoringError
    from reviewflow.scoring import satisfaction_score

    if not isinstance(vote, Mapping) or not vote:
        raise _refuse("missing_data", case, event,
                      "the on-site vote (现场测评) needs counts per grade, e.g. "
                      "vote={'good': 30, 'fairly_good': 10, 'average': 2, 'poor': 0}")
    counts = dict(vote)
    check_typed_vote(case, event, counts)
    try:
        score = satisfaction_score(counts, c.policy.scoring.scale)
    except ScoringError as exc:
        raise _refuse("invalid_data", case, event, str(exc)) from None
    return counts, score


def _record_vote(c: StepContext, case: Case, actor: Actor, role: str,
                 data: dict[str, Any], now: pendulum.DateTime) -> Any:
    _check_keys(data, _ALLOWED["record_vote"], case, "record_vote")
    counts, _score = _vote_counts(c, case, "record_vote", data.get("vote"))
    case.data["vote"] = counts
    return {"vote": counts}, None, {}


def _finish_evaluation(c: StepContext, case: Case, actor: Actor, role: str,
                       data: dict[str, Any], now: pendulum.DateTime) -> Any:
    from reviewflow.scoring import satisfaction_score

    _check_keys(data, _ALLOWED["finish_evaluation"], case, "finish_evaluation")
    score = None
    if "vote" in data:
        case.data["vote"], score = _vote_counts(c, case, "finish_evaluation", data["vote"])
    missing = [ch for ch in _COMMENT_CHANNELS if ch not in case.data.get("comments", {})]
    if "vote" not in case.data:
        missing.append("vote")
    if missing:
        raise _refuse("missing_data", case, "finish_evaluation",
                      "the three evaluations (三评) are not complete: missing "
                      + ", ".join(missing), findings=tuple(missing))
    if score is None:
        score = satisfaction_score(case.data["vote"], c.policy.scoring.scale)
    rounded = c.policy.scoring.rounding_rule.apply(score)
    evaluation = {"score": str(score), "rounded": str(rounded)}
    case.data["evaluation"] = evaluation
    return {"vote": case.data["vote"], **evaluation}, None, {}


def _hold_talk(c: StepContext, case: Case, actor: Actor, role: str,
               data: dict[str, Any], now: pendulum.DateTime) -> Any:
    _check_keys(data, _ALLOWED["hold_talk"], case, "hold_talk")
    notes = _text(data, "notes", case, "hold_talk", required=False, limit=20000)
    case.data["talk"] = {"by": actor.id, "notes": notes}
    return {"notes": notes}, None, {}


def _submit_special_report(c: StepContext, case: Case, actor: Actor, role: str,
                           data: dict[str, Any], now: pendulum.DateTime) -> Any:
    _check_keys(data, _ALLOWED["submit_special_report"], case, "submit_special_report")
    text = _text(data, "text", case, "submit_special_report", required=True, limit=200000)
    case.data["special_report"] = {"by": actor.id, "text": text}
    return {"text": text}, None, {}


HANDLERS: dict[str, Handler] = {
    "finish_research": _finish_research,
    "submit_report": _submit_report,
    "sign_off": _sign_off,
    "return_for_revision": _return_for_revision,
    "hold_meeting": _hold_meeting,
    "comment": _comment,
    "record_vote": _record_vote,
    "finish_evaluation": _finish_evaluation,
    "hold_talk": _hold_talk,
    "submit_special_report": _submit_special_report,
}

#: The data each event cannot do without: the lifecycle table's ``needs``.
NEEDS: dict[str, tuple[str, ...]] = {e.name: e.needs for e in FIRED if e.needs}
