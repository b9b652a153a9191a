"""Due times as data: rules that say when a stage is due, how that was derived, and what
happens around it (grace, hard or soft, reminder and escalation ladders).

A stage's due rule is resolved against a :class:`DueContext` (the case, the policy's
calendar and time zone). Every rule can explain itself step by step.

>>> import pendulum
>>> rule = At(pendulum.datetime(2016, 1, 18, tz="Asia/Shanghai"))
>>> rule.explain(DueContext.bare())
['fixed due time 2016-01-18 00:00:00 CST']

The rules:

* :class:`At` a fixed instant; :class:`OnDay` a calendar day in the campaign's zone;
* :class:`After` N working days or N calendar days after an anchor: the case entering a
  stage (:class:`Entered`), another stage's due time (:class:`StageDue`), the meeting date
  (:class:`MeetingDate`) or a fixed time;
* :class:`EarlierOf` and :class:`LaterOf` of two or more rules.

"End of day" is explicit: ``time="start"`` means 00:00:00 of the day, ``time="end"`` its
last instant (23:59:59.999999, shown as 23:59:59), ``time="keep"`` the anchor's time of day.
A step is late when it happens after the due time; at the due time exactly it is on time.

Pure functions for the engine: :func:`effective_due` and :func:`explain_due` (they honour
a per-case extension), :func:`deadline_status` (grace, hard or soft), and the ladder's
:func:`rung_schedule`, :func:`due_rungs` and :func:`next_fire`.
"""

from __future__ import annotations

from reviewflow._due.anchors import At, Entered, MeetingDate, OnDay, StageDue
from reviewflow._due.base import MAX_OFFSETS as MAX_OFFSETS
from reviewflow._due.base import YEARS as YEARS
from reviewflow._due.base import Anchor, DueContext, DueRule, fmt_day, fmt_time
from reviewflow._due.base import DayTime as DayTime
from reviewflow._due.base import StageDueFn as StageDueFn
from reviewflow._due.base import check_year as check_year
from reviewflow._due.ladder import AutoAction as AutoAction
from reviewflow._due.ladder import Rung, default_report_ladder, due_rungs, next_fire, rung_key, rung_schedule
from reviewflow._due.ladder import RungAction as RungAction
from reviewflow._due.ladder import RungUnit as RungUnit
from reviewflow._due.ladder import due_tag as due_tag
from reviewflow._due.parse import check_due_rules, due_rule_from_json, ladder_from_json
from reviewflow._due.rules import After, EarlierOf, LaterOf
from reviewflow._due.rules import Unit as Unit
from reviewflow._due.status import DueState, deadline_status, effective_due, explain_due, extension_of
from reviewflow._due.status import Extension as Extension
from reviewflow._due.status import explain_text as explain_text

__all__ = [
    "After",
    "Anchor",
    "At",
    "DueContext",
    "DueRule",
    "DueState",
    "EarlierOf",
    "Entered",
    "LaterOf",
    "MeetingDate",
    "OnDay",
    "Rung",
    "StageDue",
    "check_due_rules",
    "deadline_status",
    "default_report_ladder",
    "due_rule_from_json",
    "due_rungs",
    "effective_due",
    "explain_due",
    "extension_of",
    "fmt_day",
    "fmt_time",
    "ladder_from_json",
    "next_fire",
    "rung_key",
    "rung_schedule",
]
