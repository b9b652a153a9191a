"""What the step path returns besides a case: a batch's outcomes and a permission check.

Public as :class:`reviewflow.FireResult` and :class:`reviewflow.Permission` (also
importable from :mod:`reviewflow.campaign`).
"""

from __future__ import annotations

import attrs

from reviewflow.exceptions import ReviewflowError
from reviewflow.model import Case

__all__ = ["FireResult", "Permission"]


@attrs.frozen
class Permission:
    """Whether an actor may fire an event on a case now, and if not, every reason why."""

    event: str
    allowed: bool
    reasons: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    #: Data the event will ask for when fired (not checked by :meth:`Campaign.allowed`).
    needs: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.allowed:
            return f"{self.event}: allowed"
        return f"{self.event}: refused ({'; '.join(self.messages)})"


@attrs.frozen
class FireResult:
    """The outcome of one case in a batch: the case after the step, or the error."""

    case_id: str
    case: Case | None = None
    error: ReviewflowError | None = None

    @property
    def ok(self) -> bool:
        """True when the step was committed."""
        return self.error is None
