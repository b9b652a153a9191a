"""Names and time keys of the deadline work.

The event names and the system actor of the deadline work, the conversion of due times
to index keys (microseconds since 1970-01-01 UTC). The rows a commit carries for the
index are :mod:`reviewflow.store.rows`; the index itself is :mod:`reviewflow.store.parts`.
"""

from __future__ import annotations

import datetime as _dt

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
