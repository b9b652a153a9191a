"""Identifiers compare exactly on every database: ``"s1 "`` is not ``"s1"``, ``"k "`` not ``"k"``.

MySQL/MariaDB's ``utf8mb4_bin`` pads with spaces; reviewflow's tables use a NO PAD
binary collation there (``utf8mb4_nopad_bin`` / ``utf8mb4_0900_bin``), from a fresh
schema and from revision 0005 for older databases. The campaign-level checks accept
a refusal of a padded id (InputError: the input rules may refuse surrounding spaces)
but never the other case's data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pendulum
import pytest
import sqlalchemy as sa

import reviewflow as rf
from reviewflow.exceptions import InputError, TransitionRefused, UnknownCaseError
from reviewflow.store import _schema as schema
from reviewflow.store._collation import NOPAD_COLLATIONS
from reviewflow.store._engine import make_engine, upgrade
from reviewflow.store.sql import SqlStore
from reviewflow.testing import Cast

KINDS = pytest.mark.parametrize("db_url", ["sqlite", "postgresql", "mysql"], indirect=True)
CAST = Cast.default()
#: The head before revision 0005 (exact ids).
PREVIOUS = "0004"


def _campaign(url: str, cid: str) -> rf.Campaign:
    clock = rf.FrozenClock(pendulum.datetime(2016, 1, 5, 9, tz="Asia/Shanghai"))
    return rf.Campaign(rf.Policy.default(year=2016), clock=clock, store=url, campaign_id=cid)


@KINDS
def test_a_case_id_with_a_trailing_space_is_another_id(db_url: str, kit: Any) -> None:
    store = SqlStore(db_url)
    cid = kit.new_campaign_id()
    store.setup_campaign(cid, "{}")
    store.insert_cases([kit.opening(cid, "s1")])
    assert store.get(cid, "s1 ") is None
    assert store.get_many(cid, ["s1 ", "s1"]).keys() == {"s1"}
    store.insert_cases([kit.opening(cid, "s1 ")])  # a distinct case, not a duplicate
    assert sorted(c.case_id for c in store.cases(cid)) == ["s1", "s1 "]
    padded = store.get(cid, "s1 ")
    assert padded is not None
    assert store.commit([kit.step(padded, 2)]) == [None]
    s1 = store.get(cid, "s1")
    assert s1 is not None
    assert (s1.version, store.get(cid, "s1 ").version) == (1, 3)  # type: ignore[union-attr]
    assert [r.case_id for r in store.history(cid, "s1")] == ["s1"]
    store.close()


@KINDS
def test_idempotency_keys_differing_by_a_trailing_space_are_distinct(db_url: str,
                                                                   kit: Any) -> None:
    store = SqlStore(db_url)
    cid = kit.new_campaign_id()
    store.setup_campaign(cid, "{}")
    store.insert_cases([kit.opening(cid, "a"), kit.opening(cid, "b")])
    a, b = store.get(cid, "a"), store.get(cid, "b")
    assert a is not None
    assert b is not None
    assert store.commit([kit.step(a, key="k", fingerprint="f1")]) == [None]
    assert store.find_idempotent(cid, "k ") is None
    assert store.commit([kit.step(b, key="k ", fingerprint="f2")]) == [None]
    assert store.find_idempotent(cid, "k") == ("f1", "a", 2)
    assert store.find_idempotent(cid, "k ") == ("f2", "b", 2)
    store.close()


@KINDS
def test_the_campaign_never_takes_a_padded_id_for_another(db_url: str, kit: Any) -> None:
    campaign = _campaign(db_url, kit.new_campaign_id())
    campaign.open_case("s1", organization="第一支部", secretary=CAST.secretary("s1"))
    with pytest.raises((UnknownCaseError, InputError)):
        campaign.case("s1 ")
    with pytest.raises((UnknownCaseError, InputError, TransitionRefused)):
        campaign.fire("s1 ", "finish_research", actor=CAST.organizer, problems=["x"])
    assert campaign.case("s1").version == 1  # s1 did not move
    refusal: InputError | None = None
    try:
        opened = campaign.open_case("s1 ", organization="第二支部",
                                    secretary=CAST.secretary("s2"))
    except InputError as exc:  # refused as input: fine, if it says why
        refusal = exc
    if refusal is None:
        assert opened.case_id == "s1 "
    else:
        assert "already open" not in str(refusal)  # not taken for s1
    assert campaign.case("s1").organization == "第一支部"
    campaign.store.close()  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- MySQL/MariaDB collations


def _collations(url: str) -> dict[str, set[str]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT TABLE_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'rf\\_%%' "
            "AND TABLE_NAME <> 'rf_alembic_version' AND COLLATION_NAME IS NOT NULL").all()
    engine.dispose()
    found: dict[str, set[str]] = {}
    for table, collation in rows:
        found.setdefault(str(table), set()).add(str(collation))
    return found


def test_every_text_column_on_mysql_compares_without_padding(
    fresh_url: Callable[[str], str],
) -> None:
    created = fresh_url("mysql")
    SqlStore(created).close()
    migrated = fresh_url("mysql")
    upgrade(migrated)
    for url in (created, migrated):
        found = _collations(url)
        assert set(found) == {t.name for t in schema.metadata.sorted_tables}
        assert {c for cs in found.values() for c in cs} <= set(NOPAD_COLLATIONS), found


def test_revision_0005_converts_an_older_mysql_database_and_keeps_its_data(
    fresh_url: Callable[[str], str], kit: Any,
) -> None:
    url = fresh_url("mysql")
    assert upgrade(url, PREVIOUS) == (None, PREVIOUS)
    engine = sa.create_engine(sa.make_url(url).set(drivername="mysql+pymysql"))
    opening = kit.opening("2015", "s1")
    record = opening.events[0]
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.campaigns), {"id": "2015", "policy": "{}"})
        conn.execute(sa.insert(schema.cases), {
            "campaign_id": "2015", "case_id": "s1", "stage": "research", "version": 1,
            "last_hash": record.hash, "previous_case_id": None,
            "state": '{"format": 1, "organization": "第一支部", "secretary": {"id": "zhang", '
                     '"name": "张三", "roles": ["secretary"]}, "data": {}}'})
        conn.execute(sa.insert(schema.events), {
            "campaign_id": "2015", "case_id": "s1", "seq": 1, "event": "open",
            "actor_id": record.actor_id, "role": record.role, "at": record.at,
            "from_stage": None, "to_stage": record.to_stage, "reason": None,
            "data": '{"organization": "第一中学党支部"}', "prev_hash": record.prev_hash,
            "hash": record.hash})
        conn.execute(sa.insert(schema.idempotency), {
            "campaign_id": "2015", "key": "k", "fingerprint": "f", "case_id": "s1",
            "version": 1})
        # Before 0005 the padded id is the same key: the database conflates them.
        padded = conn.exec_driver_sql(
            "SELECT case_id FROM rf_cases WHERE campaign_id = '2015' AND case_id = 's1 '").all()
        assert padded == [("s1",)]
    engine.dispose()
    assert upgrade(url) == (PREVIOUS, schema.HEAD_REVISION)
    assert {c for cs in _collations(url).values() for c in cs} <= set(NOPAD_COLLATIONS)
    store = SqlStore(url)
    case = store.get("2015", "s1")
    assert case is not None
    assert (case.organization, case.version, case.last_hash) == ("第一支部", 1, record.hash)
    assert [r.hash for r in store.history("2015", "s1")] == [record.hash]
    assert store.find_idempotent("2015", "k") == ("f", "s1", 1)
    assert store.get("2015", "s1 ") is None
    assert store.find_idempotent("2015", "k ") is None
    store.close()
