"""The one way a step's record is sealed onto its case's hash chain.

Every step seals its record here: the main path (``fire``), side steps (the vote
operations, publication), extensions and the sweep's rungs. Data that cannot be
written as the record's canonical JSON text (an unpaired surrogate, an integer too
long to write, a cycle) is refused here, the same way for all of them, before
anything is changed. A feature that must touch every sealed record (a keyed MAC, a
mark for events made with a frozen clock) has this one place to do it.

The hash format itself is :meth:`reviewflow.model.EventRecord.make`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reviewflow.exceptions import InputError
from reviewflow.model import EventRecord

__all__ = ["seal"]

_make = EventRecord.make


def seal(
    campaign_id: str, case_id: str, seq: int, event: str, actor_id: str, role: str, at: str,
    from_stage: str | None, to_stage: str, reason: str | None, data: Mapping[str, Any],
    prev_hash: str,
) -> EventRecord:
    """Return the sealed record of one step; raise :class:`InputError` (nothing changed)
    when its reason or data cannot be recorded."""
    try:
        return _make(campaign_id, case_id, seq, event, actor_id, role, at, from_stage,
                     to_stage, reason, data, prev_hash)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InputError(
            f"{event} for case {case_id!r}: the data cannot be recorded ({exc}); use "
            "plain JSON data and text: text without unpaired surrogates, whole numbers of "
            "at most 4,300 digits, lists and tables; nothing was changed"
        ) from None
