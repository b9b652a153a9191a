"""Tampering by someone who can write the database, table-driven: what anchors and MACs catch.

Each row is one edit made with plain SQL on a real database (SQLite, PostgreSQL, MySQL)
after a campaign of three cases ran to the end (publication, feedback, talk, special
report) and an anchor was taken. For every row the test checks each configuration of
docs/reliability.md's table:

* no anchor, no key: ``verify()`` does NOT detect the edit (the attacker rebuilt what
  the chain checks). This was checked against the main branch before anchors existed
  (the same edits, ``Campaign.verify()`` clean every time), so the test is honest about
  what the anchors add;
* the anchor's file (``verify([anchor])``) and the same anchor kept in ``rf_anchors``
  (``verify()``): detected, every row;
* the keyed MAC alone (audit key configured, no anchor): detected where events were
  re-chained, not where the newest events or whole rows were deleted (the remaining
  events keep valid MACs), nor when the attacker holds the key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs
import pendulum
import pytest
import sqlalchemy as sa

from reviewflow import anchoring
from reviewflow._macs import event_mac
from reviewflow.campaign import Campaign
from reviewflow.clock import FrozenClock
from reviewflow.exceptions import TransitionRefused
from reviewflow.model import GENESIS_HASH, EventRecord, Stage
from reviewflow.policy import Policy
from reviewflow.store.sql import SqlStore
from reviewflow.testing import Cast, drive_to

KEY = b"the bureau's audit key, kept outside the database"
STOLEN = KEY  # the row where the attacker holds the key

STORES = ["sqlite", "postgresql", "mysql"]


@attrs.frozen
class Scene:
    """A finished campaign on a real database, and what the attacker saved on the way."""

    store: SqlStore
    campaign_id: str
    anchor: anchoring.Anchor
    #: Case rows of c0 as they were before its last event and before the publication.
    before_last: dict[str, Any]
    before_publish: dict[str, Any]


def _row(store: SqlStore, cid: str, case_id: str) -> dict[str, Any]:
    with store.engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT stage, version, last_hash, state FROM rf_cases "
            "WHERE campaign_id = :c AND case_id = :k"), {"c": cid, "k": case_id}).one()
    return dict(row._mapping)


def _campaign(store: SqlStore, cid: str, key: bytes | None) -> Campaign:
    clock = FrozenClock(pendulum.datetime(2016, 1, 4, 9, tz="Asia/Shanghai"))
    return Campaign(Policy.default(year=2016), clock=clock, store=store, campaign_id=cid,
                    audit_key=key)


def _scene(store: SqlStore, cid: str) -> Scene:
    clock = FrozenClock(pendulum.datetime(2016, 1, 4, 9, tz="Asia/Shanghai"))
    campaign = Campaign(Policy.default(year=2016), clock=clock, store=store, campaign_id=cid,
                        audit_key=KEY)
    cast = Cast.default()
    ids = ["c0", "c1", "c2"]
    for case_id in ids:
        campaign.open_case(case_id, organization=f"第{case_id}党支部",
                           secretary=cast.secretary(case_id))
        drive_to(campaign, case_id, Stage.GROUP_TALK, cast=cast, clock=clock)
    for _ in range(2):  # two refusals in the journal
        with pytest.raises(TransitionRefused):
            campaign.fire("c1", "finish_research", actor=cast.organizer, problems=["x"])
    before_publish = _row(store, cid, "c0")
    campaign.publish(actor=cast.organizer, scope="全局党员干部")
    for case_id in ids:
        drive_to(campaign, case_id, Stage.REPORT_BACK, cast=cast, clock=clock)
    before_last = _row(store, cid, "c0")
    for case_id in ids:
        drive_to(campaign, case_id, Stage.CLOSED, cast=cast, clock=clock)
    anchor = campaign.anchor(save=False)  # kept in rf_anchors later, for that configuration
    assert campaign.verify([anchor]).ok
    return Scene(store, cid, anchor, before_last, before_publish)


# ---------------------------------------------------------------------- the attacker's edits


def _exec(scene: Scene, sql: str, **params: Any) -> None:
    with scene.store.engine.begin() as conn:
        conn.execute(sa.text(sql), {"c": scene.campaign_id, **params})


def _set_row_back(scene: Scene, row: dict[str, Any]) -> None:
    """Delete c0's events after the saved row's version and put the saved row back."""
    for table in ("rf_events", "rf_outbox", "rf_event_macs"):
        _exec(scene, f"DELETE FROM {table} WHERE campaign_id = :c AND case_id = 'c0' "
                     "AND seq > :v", v=row["version"])
    _exec(scene, "UPDATE rf_cases SET stage = :stage, version = :version, last_hash = :h, "
                 "state = :state WHERE campaign_id = :c AND case_id = 'c0'",
          stage=row["stage"], version=row["version"], h=row["last_hash"], state=row["state"])


def _rechain(scene: Scene, case_id: str, edit: Callable[[EventRecord], EventRecord],
             state: Callable[[dict[str, Any]], None] | None = None,
             key: bytes | None = None) -> None:
    """Edit a case's events, compute every hash again and set the case row to match
    (and, with a stolen key, the MACs too)."""
    with scene.store.engine.begin() as conn:
        rows = conn.execute(sa.text(
            "SELECT * FROM rf_events WHERE campaign_id = :c AND case_id = :k ORDER BY seq"),
            {"c": scene.campaign_id, "k": case_id}).all()
        prev = GENESIS_HASH
        rebuilt: list[EventRecord] = []
        for row in rows:
            m = row._mapping
            record = EventRecord(
                campaign_id=m["campaign_id"], case_id=m["case_id"], seq=m["seq"],
                event=m["event"], actor_id=m["actor_id"], role=m["role"], at=m["at"],
                from_stage=m["from_stage"], to_stage=m["to_stage"], reason=m["reason"],
                data=json.loads(m["data"]), prev_hash=m["prev_hash"], hash=m["hash"])
            record = edit(record)._replace(prev_hash=prev).sealed()
            prev = record.hash
            rebuilt.append(record)
            conn.execute(sa.text(
                "UPDATE rf_events SET at = :at, data = :data, prev_hash = :p, hash = :h "
                "WHERE campaign_id = :c AND case_id = :k AND seq = :s"),
                {"at": record.at, "p": record.prev_hash, "h": record.hash, "c": scene.campaign_id,
                 "data": json.dumps(record.data, ensure_ascii=False, sort_keys=True,
                                    separators=(",", ":")),
                 "k": case_id, "s": record.seq})
            if key is not None:
                conn.execute(sa.text(
                    "UPDATE rf_event_macs SET mac = :m "
                    "WHERE campaign_id = :c AND case_id = :k AND seq = :s"),
                    {"m": event_mac(key, record.hash), "c": scene.campaign_id, "k": case_id,
                     "s": record.seq})
        doc = json.loads(conn.execute(sa.text(
            "SELECT state FROM rf_cases WHERE campaign_id = :c AND case_id = :k"),
            {"c": scene.campaign_id, "k": case_id}).scalar_one())
        from reviewflow._replay import replay

        doc["data"] = replay(rebuilt).data  # the row as the rebuilt events say (verify replays)
        if state is not None:
            state(doc)
        conn.execute(sa.text(
            "UPDATE rf_cases SET last_hash = :h, state = :s WHERE campaign_id = :c AND case_id = :k"),
            {"h": prev, "s": json.dumps(doc, ensure_ascii=False), "c": scene.campaign_id,
             "k": case_id})


def _score_100(record: EventRecord) -> EventRecord:
    if record.event != "finish_evaluation":
        return record
    return record._replace(data={**record.data, "score": "100", "rounded": "100.00"})


def _evaluation_100(doc: dict[str, Any]) -> None:
    doc["data"]["evaluation"] = {**doc["data"]["evaluation"], "score": "100", "rounded": "100.00"}


def _two_days_earlier(record: EventRecord) -> EventRecord:
    if record.seq < 2:
        return record
    at = pendulum.parse(record.at)
    assert isinstance(at, pendulum.DateTime)
    return record._replace(at=at.subtract(days=2).isoformat())


def tail_1(scene: Scene) -> None:
    _set_row_back(scene, scene.before_last)


def tail_4(scene: Scene) -> None:
    _set_row_back(scene, scene.before_publish)


def score_rechained(scene: Scene) -> None:
    _rechain(scene, "c0", _score_100, _evaluation_100)


def score_rechained_with_stolen_key(scene: Scene) -> None:
    _rechain(scene, "c0", _score_100, _evaluation_100, key=STOLEN)


def times_rechained(scene: Scene) -> None:
    _rechain(scene, "c1", _two_days_earlier)


def case_deleted(scene: Scene) -> None:
    for table in ("rf_events", "rf_outbox", "rf_event_macs", "rf_deadline_index", "rf_cases"):
        _exec(scene, f"DELETE FROM {table} WHERE campaign_id = :c AND case_id = 'c2'")


def refusals_deleted(scene: Scene) -> None:
    _exec(scene, "DELETE FROM rf_refusals WHERE campaign_id = :c")


@attrs.frozen
class Row:
    """One edit, and whether the keyed MAC alone detects it (an anchor always must)."""

    name: str
    edit: Callable[[Scene], None]
    mac_detects: bool
    #: What the problem found with the anchor says (a word of its message).
    anchor_says: str


ROWS = [
    Row("delete the newest event, set the case row back", tail_1, False, "deleted"),
    Row("delete the last 4 events (publication, feedback, talk, special report), set the "
        "case row back", tail_4, False, "deleted"),
    Row("change a score and re-chain", score_rechained, True, "rebuilt"),
    Row("change a score, re-chain and re-MAC with a stolen key",
        score_rechained_with_stolen_key, False, "rebuilt"),
    Row("change event times and re-chain", times_rechained, True, "rebuilt"),
    Row("delete a whole case", case_deleted, False, "case was deleted"),
    Row("delete the refusal journal", refusals_deleted, False, "refusals were deleted"),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.edit.__name__ for r in ROWS])
@pytest.mark.parametrize("kind", STORES)
def test_tampering_is_detected_with_an_anchor_and_where_it_re_chains_with_a_mac(
        kind: str, row: Row, make_store: Any, new_id: Any) -> None:
    store = make_store(kind)
    assert isinstance(store, SqlStore)
    cid = new_id("anchor")
    scene = _scene(store, cid)
    row.edit(scene)
    # Another process opens the store: no key, no anchor (what main had).
    plain_store = make_store(kind, same_as=store)
    plain = _campaign(plain_store, cid, None).verify()
    assert plain.ok, f"{row.name}: verify without anchor or key should miss it: {plain}"
    assert any("no anchor checked" in n for n in plain.notes)
    assert any("MACs not checked" in n for n in plain.notes)
    # The key alone.
    keyed_store = make_store(kind, same_as=store)
    keyed = _campaign(keyed_store, cid, KEY).verify()
    assert keyed.ok is not row.mac_detects, f"{row.name}: {keyed}"
    if row.mac_detects:
        assert any("MAC" in p.message for p in keyed.problems), keyed
    # The anchor's file, without the key.
    with_file = _campaign(plain_store, cid, None).verify([scene.anchor])
    assert not with_file.ok, f"{row.name}: the anchor's file should catch it"
    assert any(row.anchor_says in p.message for p in with_file.problems), with_file
    # The same anchor kept in the database (it was taken before the edit).
    anchoring.save_anchor(plain_store, scene.anchor)
    in_db = _campaign(plain_store, cid, None).verify()
    assert len(in_db.anchors) == 1
    assert not in_db.ok, f"{row.name}: the anchor kept in rf_anchors should catch it"


@pytest.mark.parametrize("kind", STORES)
def test_an_untouched_record_extends_its_anchors_and_macs(kind: str, make_store: Any,
                                                          new_id: Any) -> None:
    store = make_store(kind)
    cid = new_id("anchor")
    scene = _scene(store, cid)
    anchoring.save_anchor(store, scene.anchor)
    again = make_store(kind, same_as=store)
    campaign = _campaign(again, cid, KEY)
    # More steps after the anchor: the record still extends it.
    campaign.open_case("c3", organization="第c3党支部", secretary=Cast.default().secretary("c3"))
    later = campaign.anchor()
    report = campaign.verify([scene.anchor, later])
    assert report.ok, report
    assert len(report.anchors) == 2
    assert report.notes == ()
    assert report.events == scene.anchor.events + 1


@pytest.mark.parametrize("kind", STORES)
def test_an_anchor_kept_in_the_database_and_edited_there_is_reported(
        kind: str, make_store: Any, new_id: Any) -> None:
    store = make_store(kind)
    cid = new_id("anchor")
    scene = _scene(store, cid)
    anchoring.save_anchor(store, scene.anchor)
    body = scene.anchor.to_text().replace(" 13 ", " 12 ", 1)
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE rf_anchors SET body = :b WHERE campaign_id = :c"),
                     {"b": body, "c": cid})
    report = _campaign(store, cid, None).verify()
    assert not report.ok
    assert "digest does not match" in str(report)
