"""When the CLI may freeze the clock (``--now``): rehearsals, or an explicit flag.

A campaign file with ``rehearsal = true`` (``reviewflow init --rehearsal``, and the
demo's) marks a rehearsal (演练): ``--now`` may set any time. On any other campaign
``--now`` needs ``--allow-frozen-clock`` (for entering, late, a step that happened
earlier) and may not be later than the present. Either way every event made with the
frozen clock carries ``"clock": "frozen"`` (see :mod:`reviewflow._corrections`), and a
step dated before the case's last event is refused (``time_backwards``).
"""

from __future__ import annotations

import pendulum

from reviewflow.exceptions import InputError

__all__ = ["frozen_clock_allowed"]


def frozen_clock_allowed(at: pendulum.DateTime, *, rehearsal: bool, flag: bool) -> None:
    """Refuse ``--now AT`` (InputError) unless the campaign is a rehearsal (``rehearsal``)
    or ``--allow-frozen-clock`` is given (``flag``), and then only at a time that is not in
    the future."""
    if rehearsal:
        return
    shown = at.isoformat()
    if not flag:
        raise InputError(
            f"--now {shown}: this campaign is not a rehearsal, so its clock is the real time; "
            "--now freezes it only on a campaign marked for rehearsal (`reviewflow init "
            "--rehearsal`, or rehearsal = true in the campaign file) or with "
            "--allow-frozen-clock (every step made so is marked \"clock\": \"frozen\"); "
            "nothing was done (非演练考核不得冻结时钟)"
        )
    present = pendulum.now("UTC")
    if at > present:
        raise InputError(
            f"--now {shown} is later than the present ({present.isoformat()}): a real "
            "campaign records no step in the future; give a past time, or leave --now out "
            "(不得记录未来时间的步骤)"
        )
