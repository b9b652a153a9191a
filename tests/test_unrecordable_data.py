"""Data that cannot be written as JSON text is refused with an InputError, changing nothing."""

from __future__ import annotations

import pytest

import reviewflow as rf
from reviewflow.testing import Cast, drive_to, seed_campaign

CAST = Cast.default()


def test_an_unpaired_surrogate_in_a_problem_is_refused() -> None:
    campaign, _ = seed_campaign()
    campaign.open_case("s1", organization="一中", secretary=CAST.secretary("s1"))
    with pytest.raises(rf.InputError, match="finish_research for case 's1'"):
        campaign.fire("s1", "finish_research", actor=CAST.organizer, problems=["a\ud800"])
    case = campaign.case("s1")
    assert case.version == 1
    assert case.stage is rf.Stage.RESEARCH
    assert campaign.verify().ok


def test_an_integer_too_long_to_write_is_refused() -> None:
    campaign, clock = seed_campaign()
    campaign.open_case("s1", organization="一中", secretary=CAST.secretary("s1"))
    drive_to(campaign, "s1", rf.Stage.EVALUATION, cast=CAST, clock=clock)
    before = campaign.case("s1").version
    with pytest.raises(rf.InputError, match="4,300 digits"):
        campaign.fire("s1", "comment", actor=CAST.superior, text="好", rating=10**5000)
    assert campaign.case("s1").version == before


def test_a_secretary_name_that_cannot_be_written_opens_no_case() -> None:
    campaign, _ = seed_campaign()
    with pytest.raises(rf.InputError, match=r"actor name .* surrogate"):  # refused when made
        campaign.open_case("s2", organization="二中",
                           secretary=rf.Actor("s2", "x\udcff", roles={"secretary"}))
    with pytest.raises(rf.UnknownCaseError):
        campaign.case("s2")
