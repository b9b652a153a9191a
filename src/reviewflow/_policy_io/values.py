"""Small readers and writers of policy-file values: kinds, suggestions, durations, dates."""

from __future__ import annotations

import datetime as _dt
import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from reviewflow.exceptions import PolicyError


def day(value: Any) -> Any:
    """Turn an ISO date string into a date (the JSON form of a TOML date); keep the rest."""
    if isinstance(value, str) and len(value) == 10:
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            return value
    return value


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return f"the {type(value).__name__} {value.isoformat()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return f"a {type(value).__name__}"


def suggest(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
DURATION_UNITS = (86400, 3600, 60, 1)


def parse_duration(text: str) -> int | None:
    text = text.strip().replace(" ", "")
    if text == "0":
        return 0
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        return None
    return sum(int(n) * unit for n, unit in zip(match.groups(), DURATION_UNITS, strict=True)
               if n)


def format_duration(duration: _dt.timedelta) -> str:
    seconds = int(duration.total_seconds())
    if seconds != duration.total_seconds() or seconds < 0:
        raise PolicyError(f"a grace of {duration} cannot be written; use whole, positive "
                          "seconds", field="grace")
    if seconds == 0:
        return "0"
    parts = []
    for unit, letter in zip(DURATION_UNITS, "dhms", strict=True):
        n, seconds = divmod(seconds, unit)
        if n:
            parts.append(f"{n}{letter}")
    return "".join(parts)


# --------------------------------------------------------------------------- line index
