"""A case id that is not text finds no case, on every store: a clear UnknownCaseError."""

from __future__ import annotations

import pytest

import reviewflow as rf
from reviewflow.testing import Cast, seed_campaign

CAST = Cast.default()


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql", "mysql"], indirect=True)
def test_an_id_that_is_not_text_finds_no_case_on_a_database(db_url: str) -> None:
    _check(db_url)


def test_an_id_that_is_not_text_finds_no_case_in_memory() -> None:
    _check(None)


def _check(url: str | None) -> None:
    campaign, _ = seed_campaign(store=url)
    campaign.open_case("5", organization="一中", secretary=CAST.secretary("5"))
    for bad in (5, 5.0, None):
        with pytest.raises(rf.UnknownCaseError):
            campaign.case(bad)  # type: ignore[arg-type]
        with pytest.raises(rf.UnknownCaseError):
            campaign.fire(bad, "finish_research", actor=CAST.organizer,  # type: ignore[arg-type]
                          problems=["p"])
        [result] = campaign.fire_many([bad], "finish_research",  # type: ignore[list-item]
                                      actor=CAST.organizer, problems=["p"])
        assert isinstance(result.error, rf.UnknownCaseError)
    assert campaign.case("5").version == 1
    campaign.store.close()
