"""The event record's hash format is fixed: chains stored by earlier versions must verify."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from reviewflow.model import GENESIS_HASH, EventRecord

_DATA: list[dict[str, Any]] = [
    {},
    {"problems": ["组织生活不规范", "党员发展滞后"]},
    {"a": 1.5, "b": [None, True, False, -0.0, 1e300, 3], "ü": {"x": "\u2028\t\x00\"\\"}},
    {"report": {"duty": "履职", "problems": [{"description": "问题", "causes": "", "measure": "措施"}],
                "plans": "", "progress": "推进", "rectified": {}}},
]


def _documented(record: EventRecord) -> str:
    """The format: the fields joined by U+001F, the data as sorted compact JSON."""
    data = "{}" if not record.data else json.dumps(
        record.data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    text = "\x1f".join((
        record.prev_hash, record.campaign_id, record.case_id, str(record.seq), record.event,
        record.actor_id, record.role, record.at, record.from_stage or "", record.to_stage,
        record.reason or "", data,
    ))
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("data", _DATA)
def test_make_seals_with_the_documented_format(data: dict[str, Any]) -> None:
    record = EventRecord.make("2016", "branch-1", 2, "submit_report", "sec-1", "secretary",
                              "2016-01-09T09:00:00+08:00", "drafting", "approval", None, data,
                              GENESIS_HASH)
    assert record.hash == _documented(record)
    assert record.hash == record.compute_hash()
    assert record == record._replace(hash="").sealed()
    assert type(record) is EventRecord


def test_a_known_record_keeps_its_hash() -> None:
    # The hash the engine of commit bc8c506 sealed this record with.
    record = EventRecord.make("2016", "branch-1", 2, "submit_report", "sec-1", "secretary",
                              "2016-01-09T09:00:00+08:00", "drafting", "approval", "late",
                              {"score": "95.5", "vote": {"good": 30}}, "ab" * 32)
    assert record.hash == "b0674ea11049a7011d6676a387eba0552cd31719b1f4b65ae7e704d603d54792"
