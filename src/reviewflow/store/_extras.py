"""Writers of the extra rows a commit carries (:attr:`~reviewflow.store.base.Commit.extras`),
by row type: the store's own kinds (deadline index rows, rung marks, ballot tokens, round
freezes, event MACs) and those a feature registers with :func:`register_extra`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from reviewflow._macs import EventMacs
from reviewflow.store import _anchors, _ballots, _deadlines
from reviewflow.store.rows import RoundFrozen, RungMark, RungSchedule, TokenRows

if TYPE_CHECKING:
    from reviewflow.store._conn import SqlConnections


#: Writes one extra row type inside a commit's transaction: ``writer(store, conn, extra)``.
#: Raise a :class:`~reviewflow.exceptions.ReviewflowError` to refuse the whole commit.
ExtraWriter = Callable[["SqlConnections", Connection, Any], None]

#: Writes many extra rows of one type at once: ``writer(store, conn, extras)``.
ExtraBatchWriter = Callable[["SqlConnections", Connection, Sequence[Any]], None]

_EXTRA_WRITERS: dict[type, ExtraWriter] = {}
_EXTRA_BATCHES: dict[type, ExtraBatchWriter] = {}


def register_extra(kind: type, writer: ExtraWriter, *, batch: ExtraBatchWriter | None = None,
                   ) -> None:
    """Register how the SQL store writes one extra row type inside a commit's transaction.

    The feature that puts ``kind`` objects in :attr:`Commit.extras` (ballot tokens,
    vote freezes, deadline index rows and rung marks) calls this once at import. The
    writer runs on the commit's connection, after the case row and events; raising
    refuses that commit and rolls back everything it wrote. ``batch``, if given, writes
    the rows of every commit of a batch at once (one statement instead of one per row);
    when it raises, each commit is written again on its own to find the one that fails.
    """
    _EXTRA_WRITERS[kind] = writer
    if batch is None:
        _EXTRA_BATCHES.pop(kind, None)
    else:
        _EXTRA_BATCHES[kind] = batch


register_extra(RungSchedule, _deadlines.write_schedule, batch=_deadlines.write_schedules)
register_extra(RungMark, _deadlines.write_mark, batch=_deadlines.write_marks)
register_extra(TokenRows, _ballots.write_token_row, batch=_ballots.write_token_rows)
register_extra(RoundFrozen, _ballots.write_frozen_one, batch=_ballots.write_frozen)
register_extra(EventMacs, _anchors.write_macs_one, batch=_anchors.write_macs)
