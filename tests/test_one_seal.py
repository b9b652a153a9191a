"""One sealing path for every step, and a clock that takes any aware datetime (#17)."""

from __future__ import annotations

import ast
import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Any

import pendulum
import pytest

import reviewflow as rf
from reviewflow.model import Stage
from reviewflow.testing import Cast

CAST = Cast.default()
SRC = Path(rf.__file__).parent
START = pendulum.datetime(2016, 1, 4, 9, tz="Asia/Shanghai")


def _campaign(store: Any = None, clock: rf.Clock | None = None) -> rf.Campaign:
    campaign = rf.Campaign(rf.Policy.default(year=2016), clock=clock or rf.FrozenClock(START),
                           store=store)
    campaign.open_case("s1", organization="第一中学党支部", secretary=CAST.secretary("s1"))
    return campaign


# ---------------------------------------------------------------------- one seal


def test_every_record_is_sealed_through_the_one_function() -> None:
    """No module builds a sealed record itself: all go through reviewflow._chain.seal."""
    makers = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if ((isinstance(node, ast.Attribute) and node.attr == "make"
                    and isinstance(node.value, ast.Name) and node.value.id == "EventRecord")
                    or (isinstance(node, ast.Attribute) and node.attr == "sealed"
                        and path.name != "model.py")):
                makers.append(str(path.relative_to(SRC)))
    assert makers == ["_chain.py"]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_extend_refuses_a_reason_it_cannot_record_like_fire(kind: str, sqlite_url: str) -> None:
    campaign = _campaign(None if kind == "memory" else sqlite_url)
    with pytest.raises(rf.InputError, match="cannot be recorded") as fired:
        campaign.fire("s1", "finish_research", actor=CAST.organizer, problems=["a\ud800"])
    campaign.fire("s1", "finish_research", actor=CAST.organizer, problems=["p"])
    before = campaign.case("s1")
    with pytest.raises(rf.InputError, match=r"extend for case 's1'.*cannot be recorded"
                       ) as excinfo:
        campaign.extend("s1", Stage.DRAFTING, pendulum.datetime(2016, 1, 25, tz="Asia/Shanghai"),
                        "因病\ud800延期", CAST.organizer)
    assert "nothing was changed" in str(excinfo.value)
    # The same refusal as fire's: one message, the event and case named.
    assert str(excinfo.value).split("); ", 1)[1] == str(fired.value).split("); ", 1)[1]
    after = campaign.case("s1")
    assert (after.version, after.last_hash, after.data) == (
        before.version, before.last_hash, before.data)
    assert campaign.verify().ok
    campaign.store.close()


# ---------------------------------------------------------------------- the clock


AWARE = {
    "pendulum fixed offset": pendulum.parse("2016-01-12T10:00+08:00"),
    "datetime utc": dt.datetime(2016, 1, 12, 2, tzinfo=dt.UTC),
    "datetime fixed offset": dt.datetime(2016, 1, 12, 10,
                                         tzinfo=dt.timezone(dt.timedelta(hours=8))),
    "zoneinfo": dt.datetime(2016, 1, 12, 10, tzinfo=zoneinfo.ZoneInfo("Asia/Shanghai")),
    "zoneinfo elsewhere": dt.datetime(2016, 1, 11, 21, tzinfo=zoneinfo.ZoneInfo("America/New_York")),
    "pendulum named zone": pendulum.datetime(2016, 1, 12, 10, tz="Asia/Shanghai"),
}


class _HostZone(dt.tzinfo):
    """A host's own tzinfo class (no IANA key): China's offset."""

    def utcoffset(self, d: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(hours=8)

    def dst(self, d: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)

    def tzname(self, d: dt.datetime | None) -> str:
        return "CST"


def _zone_from_file() -> zoneinfo.ZoneInfo | None:
    """Asia/Shanghai read from its TZif file: a ZoneInfo whose key is None."""
    for root in zoneinfo.TZPATH:
        path = Path(root) / "Asia" / "Shanghai"
        if path.exists():
            with path.open("rb") as f:
                return zoneinfo.ZoneInfo.from_file(f)
    return None  # pragma: no cover  # no system tz database


_FILE_ZONE = _zone_from_file()
AWARE["host tzinfo"] = dt.datetime(2016, 1, 12, 10, tzinfo=_HostZone())
if _FILE_ZONE is not None:
    AWARE["zoneinfo from a file"] = dt.datetime(2016, 1, 12, 10, tzinfo=_FILE_ZONE)


@pytest.mark.parametrize("at", list(AWARE.values()), ids=list(AWARE))
def test_a_frozen_clock_takes_any_aware_datetime(at: dt.datetime) -> None:
    clock = rf.FrozenClock(at)
    assert clock.now() == at  # the same instant
    assert clock.now().utcoffset() == at.utcoffset()  # in its own zone
    assert clock.advance(hours=1).now() == at + dt.timedelta(hours=1)
    assert clock.set(at).now() == at
    campaign = _campaign(clock=clock)
    assert campaign.store.history(campaign.id, "s1")[0].at == "2016-01-12T10:00:00+08:00"
    campaign.fire("s1", "finish_research", actor=CAST.organizer, problems=["p"])
    assert campaign.sweep().now == at


@pytest.mark.parametrize("at", [
    dt.datetime(1, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
], ids=["year 1 at +08", "year 9999 at -05"])
def test_a_time_outside_the_years_is_an_input_error_with_a_reason(at: dt.datetime) -> None:
    campaign = rf.Campaign(rf.Policy.default(year=2016), clock=rf.FrozenClock(at))
    with pytest.raises(rf.InputError, match="outside the years") as excinfo:
        campaign.open_case("s1", organization="第一中学党支部", secretary=CAST.secretary("s1"))
    assert excinfo.value.reason == "invalid_argument"
    assert campaign.cases() == []  # nothing half-applied


class _PlainClock:
    """A host's clock answering plain datetimes (not pendulum)."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def now(self) -> Any:
        return self.at


@pytest.mark.parametrize("at", [AWARE["datetime utc"], AWARE["zoneinfo"]], ids=["utc", "zoneinfo"])
def test_a_clock_answering_plain_aware_datetimes_works(at: dt.datetime) -> None:
    campaign = _campaign(clock=_PlainClock(at))
    campaign.fire("s1", "finish_research", actor=CAST.organizer, problems=["p"])
    assert [r.at for r in campaign.store.history(campaign.id, "s1")] == [
        "2016-01-12T10:00:00+08:00"] * 2


def test_naive_datetimes_are_refused_with_an_input_error() -> None:
    with pytest.raises(rf.InputError, match="no time zone"):
        rf.FrozenClock(dt.datetime(2016, 1, 12, 10))
    clock = rf.FrozenClock(START)
    with pytest.raises(rf.InputError, match="no time zone"):
        clock.set(dt.datetime(2016, 1, 12, 10))
    assert clock.now() == START  # unchanged
    with pytest.raises(rf.InputError, match="needs a datetime"):
        rf.FrozenClock("2016-01-12T10:00+08:00")  # type: ignore[arg-type]
    campaign = rf.Campaign(rf.Policy.default(year=2016),
                           clock=_PlainClock(dt.datetime(2016, 1, 12, 10)))
    with pytest.raises(rf.InputError, match="no time zone"):
        campaign.open_case("s1", organization="第一中学党支部", secretary=CAST.secretary("s1"))
    assert campaign.cases() == []
    with pytest.raises(rf.InputError, match="no time zone"):  # the sweep reads it alike
        campaign.sweep()
