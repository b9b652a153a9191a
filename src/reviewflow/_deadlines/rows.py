"""Names, time keys and the rows a commit carries for the deadline index.

The event names and the system actor of the deadline work, the conversion of due times
to index keys (microseconds since 1970-01-01 UTC), the :class:`RungSchedule` and
:class:`RungMark` extra rows, and the :class:`DeadlineIndex` protocol of durable stores.
"""

from __future__ import annotations

import datetime as _dt
from typing import Protocol, runtime_checkable

import attrs
import pendulum

from reviewflow.calendar import in_zone, utc_offset
from reviewflow.exceptions import DeadlineError
from reviewflow.model import Actor

#: The event name of a fired rung in a case's history.
RUNG_EVENT = "deadline_rung"
#: The event name of an extension in a case's history.
EXTEND_EVENT = "extend"
#: Who fires rungs and automatic actions.
SYSTEM_ACTOR = Actor("reviewflow", "reviewflow deadline sweep", roles={"system"})
_SYSTEM_ROLE = "system"
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
_CHUNK = 1000


#: Recent conversions by object identity: the same due-time objects (fixed dues, cached
#: ladder times) are converted on every commit, and pendulum's utcoffset() is slow.
_US_CACHE: dict[int, tuple[_dt.datetime, int]] = {}


def to_us(value: _dt.datetime) -> int:
    """Return an aware datetime as whole microseconds since 1970-01-01 UTC (index keys)."""
    hit = _US_CACHE.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1]
    off = utc_offset(value)
    if off is None:
        raise DeadlineError(f"{value!r} has no time zone")
    days = _dt.date.toordinal(value) - _EPOCH_ORDINAL
    seconds = days * 86400 + value.hour * 3600 + value.minute * 60 + value.second
    shift = (off.days * 86400 + off.seconds) * 1_000_000 + off.microseconds
    result = seconds * 1_000_000 + value.microsecond - shift
    if len(_US_CACHE) > 4096:
        _US_CACHE.clear()
    _US_CACHE[id(value)] = (value, result)  # keeps value alive, so its id is not reused
    return result


def from_us(value: int, tz: str = "UTC") -> pendulum.DateTime:
    """Return index microseconds as an aware datetime in ``tz``."""
    return in_zone(_EPOCH + _dt.timedelta(microseconds=value), tz)


# -- the rows a commit carries ----------------------------------------------------------------


@attrs.frozen(kw_only=True, slots=True)
class RungSchedule:
    """The deadline index entry of one case, written with every commit that may change it.

    One row per case (upsert on ``campaign_id, case_id``): the current stage, its effective
    due time and the fire time of its next unfired rung, as microseconds since the epoch
    (UTC; None when there is none). A row with both None can be deleted.
    """

    campaign_id: str
    case_id: str
    stage: str
    due_us: int | None
    next_fire_us: int | None


@attrs.frozen(kw_only=True, slots=True)
class RungMark:
    """One fired rung (insert-only; unique on campaign, case, stage, rung id, due).

    The mark is also in the case snapshot (``data["rungs"]``); a durable store keeps these
    rows with a unique key so that the database itself refuses a second firing.
    """

    campaign_id: str
    case_id: str
    stage: str
    rung_id: str
    due_us: int
    #: When the sweep recorded it (ISO 8601 with offset).
    fired_at: str
    #: The ``seq`` of the ``deadline_rung`` event record.
    seq: int


@runtime_checkable
class DeadlineIndex(Protocol):
    """What a store offers so that the sweep does not scan (durable stores implement it)."""

    def deadline_due(self, campaign_id: str, until_us: int, limit: int | None = None) -> list[str]:
        """Return ids of cases whose next fire time is at or before ``until_us``, earliest first."""

    def deadline_overdue(self, campaign_id: str, at_us: int, limit: int | None = None) -> list[str]:
        """Return ids of cases whose current due time is before ``at_us``, earliest first."""
