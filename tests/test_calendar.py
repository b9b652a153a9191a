"""The working-day calendar: China's holidays and make-up days, policy overrides, arithmetic."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewflow.calendar import (
    SkippedDays,
    WorkdayCalendar,
    WorkingCalendar,
    add_working_days,
    calendar_from_policy,
    parse_days,
)
from reviewflow.exceptions import DeadlineError, PolicyError

CN = WorkingCalendar.china()
TZ = "Asia/Shanghai"


def d(month: int, day: int, year: int = 2016) -> dt.date:
    return dt.date(year, month, day)


# -- the 2016 Spring Festival --------------------------------------------------------------------


@pytest.mark.parametrize("day", [7, 8, 9, 10, 11, 12, 13])
def test_spring_festival_2016_days_are_off(day: int) -> None:
    assert CN.is_working_day(d(2, day)) is False


@pytest.mark.parametrize("day", [6, 14])
def test_spring_festival_2016_weekend_make_up_days_are_worked(day: int) -> None:
    assert d(2, day).weekday() in (5, 6)
    assert CN.is_working_day(d(2, day)) is True
    assert CN.is_make_up_day(d(2, day)) is True


def test_ordinary_days_around_the_festival() -> None:
    assert CN.is_working_day(d(2, 5)) is True  # Friday
    assert CN.is_working_day(d(2, 15)) is True  # Monday after
    assert CN.is_working_day(d(1, 23)) is False  # Saturday
    assert CN.is_working_day(d(1, 1)) is False  # New Year's Day (Friday)
    assert CN.is_make_up_day(d(2, 15)) is False


def test_reasons_for_days_off() -> None:
    assert CN.day_off_reason(d(1, 23)) == "weekend"
    assert CN.day_off_reason(d(2, 8)) == "Spring Festival (春节)"
    assert CN.day_off_reason(d(2, 11)) == "day off in lieu (调休)"
    assert CN.day_off_reason(d(2, 14)) is None
    assert CN.day_off_reason(d(2, 15)) is None


def test_adding_working_days_across_the_festival() -> None:
    start = pendulum.datetime(2016, 2, 3, 10, 30, tz=TZ)  # Wednesday
    # Thu 4, Fri 5, Sat 6 (make-up), Sun 14 (make-up), Mon 15
    assert CN.add_working_days(start, 5) == pendulum.datetime(2016, 2, 15, 10, 30, tz=TZ)
    assert CN.add_working_days(start, 3) == pendulum.datetime(2016, 2, 6, 10, 30, tz=TZ)
    assert CN.add_working_days(start, 4) == pendulum.datetime(2016, 2, 14, 10, 30, tz=TZ)


def test_subtracting_working_days_across_the_festival() -> None:
    start = pendulum.datetime(2016, 2, 15, 9, tz=TZ)
    assert CN.add_working_days(start, -1) == pendulum.datetime(2016, 2, 14, 9, tz=TZ)
    assert CN.add_working_days(start, -2) == pendulum.datetime(2016, 2, 6, 9, tz=TZ)
    assert CN.add_working_days(start, -3) == pendulum.datetime(2016, 2, 5, 9, tz=TZ)


def test_zero_working_days_is_the_start_itself() -> None:
    start = pendulum.datetime(2016, 2, 7, 12, tz=TZ)  # a day off
    assert CN.add_working_days(start, 0) == start


def test_result_keeps_time_of_day_and_zone_of_start() -> None:
    start = pendulum.datetime(2016, 1, 20, 23, 59, 59, 999999, tz="Europe/Berlin")
    result = CN.add_working_days(start, 5)
    assert result.timezone_name == "Europe/Berlin"
    assert (result.hour, result.minute, result.second, result.microsecond) == (23, 59, 59, 999999)
    assert result.date() == d(1, 27)


def test_a_stdlib_aware_datetime_is_accepted() -> None:
    start = dt.datetime(2016, 1, 22, 8, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    result = CN.add_working_days(start, 1)
    assert result.date() == d(1, 25)
    assert result.utcoffset() == dt.timedelta(hours=8)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(DeadlineError, match="no time zone"):
        CN.add_working_days(dt.datetime(2016, 1, 20, 9), 1)
    with pytest.raises(DeadlineError, match="no time zone"):
        CN.is_working_day(dt.datetime(2016, 1, 20, 9))


def test_an_aware_datetime_counts_by_its_own_date() -> None:
    # 2016-02-05 23:00 in Berlin is 2016-02-06 in Shanghai; the Berlin date counts.
    assert CN.is_working_day(pendulum.datetime(2016, 2, 7, 1, tz=TZ)) is False
    assert CN.is_working_day(pendulum.datetime(2016, 2, 5, 23, tz="Europe/Berlin")) is True


def test_non_integer_day_counts_are_refused() -> None:
    with pytest.raises(DeadlineError, match="integer"):
        CN.add_working_days(pendulum.datetime(2016, 1, 4, tz=TZ), 1.5)  # type: ignore[arg-type]


def test_working_days_between_counts_both_ends() -> None:
    assert CN.working_days_between(d(2, 1), d(2, 29)) == 18  # 21 weekdays + 2 make-up - 5 off
    assert CN.working_days_between(d(2, 7), d(2, 13)) == 0
    assert CN.working_days_between(d(2, 13), d(2, 7)) == 0


# -- years the package does not know --------------------------------------------------------------


def test_an_unknown_year_is_refused_not_guessed() -> None:
    year = max(CN.known_years()) + 1
    with pytest.raises(DeadlineError, match=f"no official holiday schedule for {year}"):
        CN.is_working_day(dt.date(year, 3, 1))


def test_policy_overrides_make_a_year_known() -> None:
    year = max(CN.known_years()) + 1
    off = [dt.date(year, 2, k) for k in range(5, 12)]
    make_up = dt.date(year, 2, 13)
    while make_up.weekday() < 5:  # the first weekend day on or after the 13th
        make_up += dt.timedelta(days=1)
    cal = WorkingCalendar.china(extra_days_off=off, extra_working_days=[make_up])
    assert year in cal.known_years()
    assert all(cal.is_working_day(day) is False for day in off)
    assert cal.day_off_reason(off[0]) is not None
    assert cal.is_working_day(make_up) is True
    assert cal.is_make_up_day(make_up) is True
    # Ordinary days of that year are answered too.
    assert cal.is_working_day(dt.date(year, 3, 2)) is (dt.date(year, 3, 2).weekday() < 5)


def test_overrides_win_over_the_package() -> None:
    cal = WorkingCalendar.china(extra_days_off=[d(1, 20)], extra_working_days=[d(2, 8)])
    assert cal.is_working_day(d(1, 20)) is False
    assert cal.day_off_reason(d(1, 20)) == "day off (policy)"
    assert cal.is_working_day(d(2, 8)) is True  # a weekday of the festival, worked by policy
    assert CN.is_working_day(d(2, 8)) is False  # the shared calendar is untouched


def test_a_day_both_off_and_worked_is_refused() -> None:
    with pytest.raises(DeadlineError, match="both"):
        WorkingCalendar.china(extra_days_off=[d(1, 20)], extra_working_days=[d(1, 20)])


def test_estimate_mode_uses_weekends_and_statutory_days() -> None:
    year = max(CN.known_years()) + 1
    cal = WorkingCalendar.china(unknown_years="estimate")
    assert cal.is_working_day(dt.date(year, 1, 1)) is False  # New Year's Day
    saturday = dt.date(year, 3, 1)
    while saturday.weekday() != 5:
        saturday += dt.timedelta(days=1)
    assert cal.is_working_day(saturday) is False


def test_weekends_only_calendar() -> None:
    cal = WorkingCalendar.weekends_only(extra_days_off=[d(2, 8)])
    assert cal.is_working_day(d(2, 8)) is False
    assert cal.is_working_day(d(2, 9)) is True
    assert cal.is_working_day(d(2, 6)) is False  # no make-up days


# -- policy data ----------------------------------------------------------------------------------


def test_calendar_from_policy_reads_dates_and_ranges() -> None:
    cal = calendar_from_policy({
        "days_off": ["2016-01-19..2016-01-20", dt.date(2016, 1, 22)],
        "working_days": ["2016-01-23"],
    })
    assert [cal.is_working_day(d(1, k)) for k in (19, 20, 21, 22, 23)] == [
        False, False, True, False, True,
    ]


def test_calendar_from_policy_names_the_bad_field() -> None:
    with pytest.raises(PolicyError, match=r"calendar\.days_off\[1\]"):
        calendar_from_policy({"days_off": ["2016-01-19", "19 Jan"]})
    with pytest.raises(PolicyError, match=r"calendar\.country"):
        calendar_from_policy({"country": "FR"})
    with pytest.raises(PolicyError, match=r"calendar\.unknown_years"):
        calendar_from_policy({"unknown_years": "guess"})
    with pytest.raises(PolicyError, match=r"calendar\.colour"):
        calendar_from_policy({"colour": "red"})
    with pytest.raises(PolicyError, match="both a day off and a working day"):
        calendar_from_policy({"days_off": ["2016-01-19"], "working_days": ["2016-01-19"]})


def test_parse_days_refuses_backward_ranges_and_datetimes() -> None:
    with pytest.raises(PolicyError, match=r"x\[0\]"):
        parse_days(["2016-01-20..2016-01-19"], "x")
    with pytest.raises(PolicyError, match="date-time"):
        parse_days([dt.datetime(2016, 1, 20, 9)], "x")
    with pytest.raises(PolicyError, match="list of dates"):
        parse_days("2016-01-20", "x")


def test_empty_policy_gives_china() -> None:
    cal = calendar_from_policy(None)
    assert cal.is_working_day(d(2, 14)) is True
    assert calendar_from_policy({"country": "none"}).is_working_day(d(2, 14)) is False


# -- a host's own calendar ------------------------------------------------------------------------


class MondaysOff:
    """A host calendar with only is_working_day."""

    def is_working_day(self, day: dt.date) -> bool:
        return day.weekday() != 0


def test_a_host_calendar_is_stepped_day_by_day() -> None:
    host = MondaysOff()
    assert isinstance(host, WorkdayCalendar)
    start = pendulum.datetime(2016, 1, 22, 17, tz=TZ)  # Friday
    assert add_working_days(host, start, 3) == pendulum.datetime(2016, 1, 26, 17, tz=TZ)
    assert add_working_days(host, start, -5) == pendulum.datetime(2016, 1, 16, 17, tz=TZ)


def test_a_calendar_that_never_works_is_reported() -> None:
    class Never:
        def is_working_day(self, day: dt.date) -> bool:
            return False

    with pytest.raises(DeadlineError, match="no working day"):
        add_working_days(Never(), pendulum.datetime(2016, 1, 1, tz=TZ), 1)


def test_not_a_calendar_is_refused() -> None:
    with pytest.raises(DeadlineError, match="is_working_day"):
        add_working_days(object(), pendulum.datetime(2016, 1, 1, tz=TZ), 1)


# -- explaining skipped days ----------------------------------------------------------------------


def test_skipped_days_text() -> None:
    assert SkippedDays.between(CN, d(1, 20), d(1, 27)).text() == "skipping 2016-01-23/24 weekend"
    text = SkippedDays.between(CN, d(2, 3), d(2, 15)).text()
    assert text == (
        "skipping 2016-02-07..13 Spring Festival (春节), counting make-up working days (调休) "
        "2016-02-06 (Sat), 2016-02-14 (Sun)"
    )
    assert SkippedDays.between(CN, d(1, 18), d(1, 19)).text() == ""


# -- properties -----------------------------------------------------------------------------------

days_2016 = st.dates(min_value=dt.date(2015, 2, 1), max_value=dt.date(2017, 11, 30))


@settings(max_examples=150, deadline=None)
@given(day=days_2016, n=st.integers(min_value=-25, max_value=25), hour=st.integers(0, 23))
def test_adding_then_subtracting_lands_on_a_working_day_in_order(
    day: dt.date, n: int, hour: int
) -> None:
    start = pendulum.datetime(day.year, day.month, day.day, hour, tz=TZ)
    result = CN.add_working_days(start, n)
    assert result.hour == hour
    if n == 0:
        assert result == start
        return
    assert CN.is_working_day(result.date())
    assert (result > start) is (n > 0)
    lo, hi = sorted((start.date(), result.date()))
    counted = CN.working_days_between(lo + dt.timedelta(days=1), hi)
    if n < 0:  # counting back lands on the working day itself, the start is not counted
        counted = CN.working_days_between(lo, hi - dt.timedelta(days=1))
    assert counted == abs(n)
    back = CN.add_working_days(result, -n)
    if CN.is_working_day(start.date()):
        assert back == start
