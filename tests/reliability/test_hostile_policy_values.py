"""Policy values that pass the load but break later: refused at load time instead.

A property test rewrites one numeric, duration or date setting of the shipped policy
file (a rung's offset in working days, days or hours; a grace; a fixed due time, an
opening time, a relative due rule; the year; the calendar's extra days; the report's
character limits) with an extreme value, loads the file with ``load_policy``, and when
it loads, drives one case through the whole lifecycle, sweeps the reminders at the
campaign's times and at far ones, forecasts and explains every due time. Only
:class:`ReviewflowError` may escape; a value that would break a later step
(``OverflowError`` from a date out of range) must be a ``PolicyError`` naming the
setting when the file is loaded. The three findings of issue 18 are pinned below,
through ``load_policy`` and ``reviewflow policy check`` (exit 2).

CI form: 150 policies. Long form (``REVIEWFLOW_LONG=1``): 3,000.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pendulum
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reviewflow as rf
from reviewflow.cli import main
from reviewflow.policy_file import DEFAULT_POLICY_FILE, load_policy
from reviewflow.testing import Cast, drive_to

from .conftest import LONG

CAST = Cast.default()
TEXT = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
FIRST_RUNG = 'working_days = -3\naction = "remind"\nto = "secretary"\ntime = "09:00"\n'
DRAFTING_DUE = "due = { at = 2016-01-18T00:00:00+08:00 }"
APPROVAL_DUE = "due = { at = 2016-01-25T00:00:00+08:00 }"
OPENS = "opens = 2016-01-11T00:00:00+08:00"
HARD = "hard = true "
CONTENT = "require_carry_over = true"


def replaced(old: str, new: str) -> str:
    """Return the shipped policy file with ``old`` (found once) replaced by ``new``."""
    assert TEXT.count(old) >= 1, old
    return TEXT.replace(old, new, 1)


NUMBERS = st.one_of(
    st.sampled_from([0, 1, -1, 400, -400, 1000, 1001, 36_000, 36_001, 10**6, -(10**6), 2**31,
                     -(2**63), 10**15, -(10**15), 10**18]),
    st.integers(-(10**18), 10**18),
)
YEARS = st.one_of(st.sampled_from([1, 2, 1949, 1950, 1969, 1970, 2015, 2016, 2017, 2199, 2200,
                                   9998, 9999]), st.integers(1, 9999))
OFFSETS = st.sampled_from(["+08:00", "Z", "-23:59", "+23:59", "+14:00", "-12:00", ""])


@st.composite
def datetimes(draw: st.DrawFn) -> str:
    """A TOML date-time (or a local one, read in the policy's zone)."""
    year = draw(YEARS)
    month, day = draw(st.sampled_from([(1, 1), (1, 18), (2, 29), (12, 31)]))
    if month == 2 and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        day = 28
    hour = draw(st.sampled_from(["00:00:00", "23:59:59", "12:00:00.999999"]))
    return f"{year:04d}-{month:02d}-{day:02d}T{hour}{draw(OFFSETS)}"


@st.composite
def dates(draw: st.DrawFn) -> str:
    year = draw(YEARS)
    return f"{year:04d}-{draw(st.sampled_from(['01-01', '01-18', '12-31']))}"


DURATIONS = st.one_of(
    st.sampled_from(["0", "0s", "1d", "366d", "367d", "1000000000h", "99999999999999d",
                     "8784h", "527040m", "31622400s", "31622401s", "1d12h30m15s"]),
    st.builds(lambda n, unit: f"{n}{unit}", st.integers(0, 10**20), st.sampled_from("dhms")),
)


@st.composite
def policy_texts(draw: st.DrawFn) -> tuple[str, str]:
    """(which setting, the policy file's text with that setting changed)."""
    slot = draw(st.sampled_from(["rung", "grace", "grace_seconds", "drafting due", "opens",
                                 "approval after", "approval on", "year", "calendar days off",
                                 "calendar working days", "content"]))
    if slot == "rung":
        unit = draw(st.sampled_from(["working_days", "days", "hours"]))
        n = draw(NUMBERS)
        time = "" if unit == "hours" else 'time = "09:00"\n'
        return slot, replaced(FIRST_RUNG, f'{unit} = {n}\naction = "remind"\nto = "secretary"\n{time}')
    if slot == "grace":
        return slot, replaced(HARD, f'grace = "{draw(DURATIONS)}"\n{HARD}')
    if slot == "grace_seconds":
        value = draw(st.one_of(NUMBERS, st.floats(allow_nan=True, allow_infinity=True)))
        number = "nan" if value != value else repr(value).replace("inf", "inf")
        return slot, replaced(HARD, f"grace_seconds = {number}\n{HARD}")
    if slot == "drafting due":
        return slot, replaced(DRAFTING_DUE, f"due = {{ at = {draw(datetimes())} }}")
    if slot == "opens":
        return slot, replaced(OPENS, f"opens = {draw(st.one_of(datetimes(), dates()))}")
    if slot == "approval after":
        unit = draw(st.sampled_from(["working_days", "days"]))
        anchor = draw(st.sampled_from(["meeting", "entered", "due:drafting"]))
        return slot, replaced(APPROVAL_DUE, f'due = {{ after = "{anchor}", {unit} = {draw(NUMBERS)} }}')
    if slot == "approval on":
        return slot, replaced(APPROVAL_DUE, f'due = {{ on = {draw(dates())}, time = "end" }}')
    if slot == "year":
        return slot, replaced("year = 2016", f"year = {draw(st.one_of(NUMBERS, YEARS))}")
    if slot == "calendar days off":
        return slot, TEXT + f'days_off = ["{draw(dates())}..{draw(dates())}"]\n'
    if slot == "calendar working days":
        return slot, TEXT + f"working_days = [{draw(dates())}]\n"
    key = draw(st.sampled_from(["min_chars", "max_chars"]))
    return slot, replaced(CONTENT, f"{CONTENT}\n{key} = {draw(NUMBERS)}")


def drive(policy: rf.Policy) -> None:
    """Run one case through the lifecycle on ``policy``; sweep, forecast and explain."""
    clock = rf.FrozenClock(pendulum.datetime(policy.year, 1, 4, 9, tz=policy.tz))
    campaign = rf.Campaign(policy, clock=clock)
    campaign.open_case("s1", organization="第一中学党支部", secretary=CAST.secretary("s1"))
    steps: list[Any] = [
        lambda: drive_to(campaign, "s1", rf.Stage.CLOSED, cast=CAST, clock=clock),
        campaign.sweep,
        lambda: campaign.sweep(pendulum.datetime(policy.year + 1, 1, 1, tz="UTC")),
        lambda: campaign.forecast(pendulum.datetime(policy.year, 6, 1, tz="UTC")),
        lambda: campaign.allowed("s1", CAST.organizer),
        *[lambda s=s: campaign.explain_due("s1", s) for s in rf.Stage],
        *[lambda s=s: campaign.due(campaign.case("s1"), s) for s in rf.Stage],
    ]
    for step in steps:
        with contextlib.suppress(rf.ReviewflowError):
            step()


def test_extreme_policy_values_are_refused_at_load_or_work(tmp_path: Path) -> None:
    outcomes: dict[str, int] = {}

    @settings(max_examples=3000 if LONG else 150, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(policy_texts())
    def fuzz(case: tuple[str, str]) -> None:
        slot, text = case
        path = tmp_path / "policy.toml"
        path.write_text(text, encoding="utf-8")
        try:
            policy = load_policy(path)
        except rf.PolicyError as exc:
            refused = exc
        else:
            refused = None
        if refused is not None:
            assert refused.field, f"{slot}: {refused}: no field named"
            outcomes["refused"] = outcomes.get("refused", 0) + 1
            return
        drive(policy)  # anything but a ReviewflowError fails the test
        outcomes["loaded"] = outcomes.get("loaded", 0) + 1

    fuzz()
    print(f"\npolicies: {outcomes}")


FINDINGS = {
    "hours = -10**15": replaced(FIRST_RUNG, 'hours = -1000000000000000\naction = "remind"\n'
                                            'to = "secretary"\n'),
    'grace = "1000000000h"': replaced(HARD, f'grace = "1000000000h"\n{HARD}'),
    "a due date in year 1": replaced(DRAFTING_DUE, "due = { at = 0001-01-01T00:00:00+08:00 }"),
    "opens in year 1": replaced(OPENS, "opens = 0001-01-01T00:00:00+08:00"),
    "a due day in year 9999": replaced(APPROVAL_DUE, 'due = { on = 9999-12-31, time = "end" }'),
}


@pytest.mark.parametrize("name", list(FINDINGS))
def test_a_value_that_would_break_a_later_step_is_a_policy_error_at_load(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(FINDINGS[name], encoding="utf-8")
    with pytest.raises(rf.PolicyError) as caught:
        load_policy(path)
    assert caught.value.field is not None
    assert caught.value.field.startswith("stages.")
    assert caught.value.line is not None
    assert main(["--lang", "en", "policy", "check", str(path)]) == 2
    assert "out of range" in capsys.readouterr().err


def test_the_same_limits_hold_for_a_policy_built_in_python() -> None:
    from reviewflow.deadlines import After, At, OnDay, Rung
    from reviewflow.policy import StageRule

    with pytest.raises(rf.ReviewflowError, match="out of range"):
        Rung(offset=-(10**15), unit="hours", action="remind")
    with pytest.raises(rf.ReviewflowError, match="out of range"):
        At(pendulum.datetime(1, 1, 1, tz="UTC"))
    with pytest.raises(rf.ReviewflowError, match="out of range"):
        OnDay(day=pendulum.date(9999, 12, 31))
    with pytest.raises(rf.ReviewflowError, match="out of range"):
        After(anchor=At(pendulum.datetime(2016, 1, 1, tz="UTC")), n=10**7, unit="days")
    policy = rf.Policy.default(year=2016)
    stages = dict(policy.stages)
    stages[rf.Stage.DRAFTING] = StageRule(due=stages[rf.Stage.DRAFTING].due, hard=True,
                                          grace=pendulum.duration(hours=10**9))
    with pytest.raises(rf.PolicyError, match="grace"):
        rf.Policy(name="x", year=2016, stages=stages, approval_levels=policy.approval_levels)
