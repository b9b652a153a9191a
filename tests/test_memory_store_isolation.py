"""The in-memory store's snapshots are its own: nothing a caller holds is shared with them.

A case handed out (by ``fire``, ``case``, ``cases``, ``open_cases``) may be changed by its
holder at will, nested lists and dicts included; the stored case, its vote and its score
do not change. A commit whose event data is not plain JSON data is refused whole.
"""

from __future__ import annotations

import decimal

import reviewflow as rf
from reviewflow.exceptions import InputError
from reviewflow.model import EventRecord
from reviewflow.store.base import Commit
from reviewflow.testing import Cast, drive_to, seed_campaign

CAST = Cast.default()


def test_changing_a_returned_case_changes_nothing_stored() -> None:
    campaign, clock = seed_campaign()
    campaign.open_case("s0", organization="一中", secretary=CAST.secretary("s0"))
    returned = drive_to(campaign, "s0", rf.Stage.GROUP_TALK, cast=CAST, clock=clock)
    score = campaign.results()[0].score.value
    vote = dict(campaign.case("s0").data["vote"])
    returned.data["vote"]["good"] = 0  # the object fire() returned, nested dict
    returned.data["vote"]["poor"] = 20
    read = campaign.case("s0")
    read.data["problems"].append("加一条")  # a case read back, nested list
    read.data["entered"]["research"] = "2000-01-01T00:00:00+08:00"
    for case in campaign.cases():
        case.data["vote"].clear()
    stored = campaign.case("s0")
    assert stored.data["vote"] == vote
    assert "加一条" not in stored.data["problems"]
    assert stored.data["entered"]["research"] != "2000-01-01T00:00:00+08:00"
    assert campaign.results()[0].score.value == score
    assert campaign.verify().ok


def test_a_commit_with_event_data_that_is_not_json_changes_nothing() -> None:
    campaign, _ = seed_campaign()
    campaign.open_case("s1", organization="一中", secretary=CAST.secretary("s1"))
    case = campaign.case("s1")
    data: dict[str, object] = {"note": "ok"}
    record = EventRecord.make(campaign.id, "s1", 2, "note", "bureau", "organizer",
                              "2016-01-04T09:00:00+08:00", "research", "research", None, data,
                              case.last_hash)
    EventRecord.make(campaign.id, "s9", 1, "open", "bureau", "organizer", "t", None, "research",
                     None, {"other": 1}, "0" * 64)  # another record sealed since
    data["amount"] = decimal.Decimal("1.5")  # changed after sealing: not JSON data
    after = case.copy()
    after.version, after.last_hash = 2, record.hash
    errors = campaign.store.commit([Commit(after, 1, (record,), None, None, (), False)])
    assert isinstance(errors[0], InputError)
    assert "not plain JSON data" in str(errors[0])
    kept = campaign.case("s1")
    assert kept.version == 1
    assert len(kept.history) == 1
    assert campaign.verify().ok
