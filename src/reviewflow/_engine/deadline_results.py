"""What the deadline operations return: fired rungs, sweeps, forecasts, explanations."""

from __future__ import annotations

import attrs
import pendulum

from reviewflow.deadlines import DueState, Rung, fmt_time
from reviewflow.exceptions import ReviewflowError
from reviewflow.model import Stage

# -- results ------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class FiredRung:
    """A rung that fired (in a sweep) or would fire (in a forecast)."""

    case_id: str
    stage: Stage
    rung: Rung
    due: pendulum.DateTime
    fire_at: pendulum.DateTime
    #: The event record's ``seq``; None in a forecast.
    seq: int | None = None

    def __str__(self) -> str:
        return (f"{self.case_id}: {self.stage.value} {self.rung.describe()} "
                f"(due {fmt_time(self.due)}, fires {fmt_time(self.fire_at)})")


@attrs.frozen(kw_only=True)
class SweepResult:
    """What one sweep did: the rungs it fired, and the cases it could not update."""

    now: pendulum.DateTime
    fired: tuple[FiredRung, ...] = ()
    #: Cases whose commit failed for good (after retries), with the error.
    failed: tuple[tuple[str, ReviewflowError], ...] = ()
    #: Commits that lost a race and were retried.
    conflicts: int = 0
    #: Cases the index offered.
    candidates: int = 0

    def __len__(self) -> int:
        return len(self.fired)


@attrs.frozen(kw_only=True)
class OverdueCase:
    """A case that is (or will be) past its current stage's due time."""

    case_id: str
    stage: Stage
    due: pendulum.DateTime
    state: DueState


@attrs.frozen(kw_only=True)
class Forecast:
    """If nothing changes: which cases are overdue at ``at``, which rungs will have fired."""

    at: pendulum.DateTime
    overdue: tuple[OverdueCase, ...] = ()
    rungs: tuple[FiredRung, ...] = ()


@attrs.frozen(kw_only=True)
class DueExplanation:
    """How a case's due time for a stage was derived, where it stands, and its ladder."""

    case_id: str
    stage: Stage
    due: pendulum.DateTime | None
    state: DueState
    steps: tuple[str, ...]
    #: Each rung with its fire time and whether it has fired.
    rungs: tuple[tuple[Rung, pendulum.DateTime, bool], ...] = ()

    @property
    def text(self) -> str:
        """The steps as one line."""
        return "; ".join(self.steps)

    def __str__(self) -> str:
        return self.text
