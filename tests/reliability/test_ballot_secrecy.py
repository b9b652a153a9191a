"""Ballot secrecy against a reader of the database, or of a backup, and the organiser.

The attacker holds the token list (the organiser prints the slips, so knows which slip
went to whom) and can read the database: every column SQL shows, system columns
included, and the database's own files. Each test casts 40 ballots in a known order with
known choices, then plays the attacker:

* PostgreSQL: join ballots to tokens on ``xmin`` (the cast's transaction id); order the
  ballots by ``xmin``, by ``ctid`` (their place in the heap), as a plain
  ``SELECT``/``pg_dump`` returns them.
* SQLite: order them as a plain ``SELECT`` returns them, and by the byte offset of their
  cells in the database file read after ``PRAGMA wal_checkpoint(TRUNCATE)`` (in a
  b-tree page each new cell is placed below the one before).
* MariaDB/MySQL: as a plain ``SELECT`` returns them; in the table's file (what a physical
  backup copies): join on InnoDB's hidden transaction id, order by the records' heap
  number and by byte offset.
* Memory, and the API: the order in which ``ballots()``, a round's ``ballots`` dict and
  the JSON export list them.

"No better than chance" is tested with two figures of the recovered order against the
true one, each of which a random order of 40 exceeds with probability below 1e-6: the
number of ballots put exactly in their place (for a random permutation about Poisson(1):
P(>= 10) ~ 1.1e-7) and Kendall's tau (sd 0.110 for 40; P(|tau| > 0.56) ~ 4e-7). Both
orders, ascending and descending, are tried. Every attack recovers the exact casting
order (or links 40 ballots of 40) on reviewflow 0.x before revision 0004 of the schema.

The recount and the round's digest still work afterwards (``close_vote``,
``verify_votes``). What remains possible (old row versions until the database reclaims
them, write-ahead and binary logs) is in docs/reliability.md, section 4.
"""

from __future__ import annotations

import bisect
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pendulum
import pytest
import sqlalchemy as sa

import reviewflow as rf
from reviewflow._engine import vote_work
from reviewflow.ballots import MemoryTokenBook, Vote, cast, issue_tokens, token_hash
from reviewflow.store import _secrecy
from reviewflow.store._schema import HEAD_REVISION
from reviewflow.store.sql import SqlStore
from reviewflow.testing import Cast, drive_to

TZ = "Asia/Shanghai"
CAST = Cast.default()
N = 40
#: A random order of N ballots puts at least this many exactly in place with p ~ 1.1e-7.
CHANCE_EXACT = 10
#: |Kendall tau| of a random order of N ballots exceeds this with p ~ 4e-7.
CHANCE_TAU = 0.56
CHOICES = ["good", "fairly_good", "average", "poor", None]


def kendall_tau(order: list[str], truth: list[str]) -> float:
    """Return Kendall's tau between two orders of the same items (no ties)."""
    place = {b: i for i, b in enumerate(truth)}
    ranks = [place[b] for b in order]
    n = len(ranks)
    concordant = sum(1 for i in range(n) for j in range(i + 1, n) if ranks[i] < ranks[j])
    pairs = n * (n - 1) // 2
    return (2 * concordant - pairs) / pairs


def exactly_placed(order: list[str], truth: list[str]) -> int:
    """Return how many items ``order`` puts at their place in ``truth``."""
    return sum(1 for a, b in zip(order, truth, strict=True) if a == b)


def recovered(order: list[str], truth: list[str]) -> dict[str, Any]:
    """Return what an attack's order recovers of the casting order, read both ways."""
    assert sorted(order) == sorted(truth), "the attack must order every ballot"
    return {"exact": max(exactly_placed(order, truth), exactly_placed(order[::-1], truth)),
            "tau": round(kendall_tau(order, truth), 3)}


def beyond_chance(attacks: dict[str, list[str]], truth: list[str], figure: Any) -> dict[str, Any]:
    """Return the attacks whose order recovers the casting order better than chance."""
    found = {name: recovered(order, truth) for name, order in attacks.items()}
    figure(ballots=len(truth), **{f"{k}_{m}": v for k, r in found.items() for m, v in r.items()})
    return {k: r for k, r in found.items()
            if r["exact"] >= CHANCE_EXACT or abs(r["tau"]) > CHANCE_TAU}


def assert_chance(attacks: dict[str, list[str]], truth: list[str], figure: Any) -> None:
    """Assert that no attack's order recovers the casting order better than chance."""
    beaten = beyond_chance(attacks, truth, figure)
    assert beaten == {}, f"these attacks recover the casting order: {beaten}"


def vote_campaign(store: rf.Store, campaign_id: str) -> rf.Campaign:
    """Return a campaign whose case ``s1`` is in evaluation, ready to vote."""
    clock = rf.FrozenClock(pendulum.datetime(2016, 1, 4, 9, tz=TZ))
    campaign = rf.Campaign(rf.Policy.default(year=2016), clock=clock, store=store,
                           campaign_id=campaign_id)
    campaign.open_case("s1", organization="第一中学党支部", secretary=CAST.secretary("s1"))
    drive_to(campaign, "s1", rf.Stage.EVALUATION, cast=CAST, clock=clock)
    return campaign


def cast_in_known_order(campaign: rf.Campaign) -> tuple[list[str], list[str], Counter[Any]]:
    """Cast N ballots; return the ballot ids in casting order, their tokens' hashes in the
    same order, and the choices cast."""
    issued = campaign.issue_ballot_tokens("s1", {"party_member": N}, actor=CAST.organizer)
    ids, hashes, choices = [], [], Counter[Any]()
    for i, token in enumerate(issued):
        choice = CHOICES[i % len(CHOICES)]
        ids.append(campaign.cast_ballot("s1", token.token, choice))
        hashes.append(token_hash(token.token))
        choices[choice] += 1
    return ids, hashes, choices


def assert_recount_and_digest(campaign: rf.Campaign, choices: Counter[Any]) -> None:
    """Close the vote: the tally matches what was cast and the digest verifies."""
    result = campaign.close_vote("s1", actor=CAST.organizer)
    assert result.status == "closed"
    assert result.tally.returned == N
    assert result.tally.blank == choices[None]
    assert {k: v for k, v in result.tally.counts.items() if v} == {
        k: v for k, v in choices.items() if k is not None}
    assert campaign.verify_votes() == []
    assert campaign.verify().ok


@pytest.fixture(params=["in_database", "in_python"])
def rewrite(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which way casts rewrite the round: in SQL (the database's own random source), or
    through Python (where the server has none in SQL, e.g. MariaDB before 10.10)."""
    if request.param == "in_python":
        monkeypatch.setattr(_secrecy, "_in_database", lambda conn: None)
    return str(request.param)


def sql_order(store: SqlStore, campaign_id: str, sql: str) -> list[str]:
    """Return the campaign's ballot ids in the order ``sql`` (over ``rf_ballots b``) gives."""
    with store.engine.connect() as conn:
        return [str(r[0]) for r in conn.execute(sa.text(sql), {"c": campaign_id})]


# ---------------------------------------------------------------------- PostgreSQL


def test_postgresql_system_columns_link_no_ballot_to_its_token(
    make_store: Any, new_id: Any, figure: Any, rewrite: str,
) -> None:
    store = make_store("postgresql")
    campaign = vote_campaign(store, new_id("secret"))
    ids, hashes, choices = cast_in_known_order(campaign)
    with store.engine.connect() as conn:
        joined = conn.execute(sa.text(
            "SELECT b.ballot_id, t.token_hash FROM rf_ballots b JOIN rf_ballot_tokens t "
            "ON t.xmin = b.xmin WHERE b.campaign_id = :c AND t.campaign_id = :c"),
            {"c": campaign.id}).all()
    per_token = Counter(str(t) for _b, t in joined)
    truth = dict(zip(hashes, ids, strict=True))
    linked = [b for b, t in joined if per_token[str(t)] < N and truth[str(t)] == b]
    figure(xmin_join_rows=len(joined), tokens_joined=len(per_token), linked=len(linked))
    where = "FROM rf_ballots b WHERE b.campaign_id = :c"
    beaten = beyond_chance({
        "xmin": sql_order(store, campaign.id, f"SELECT ballot_id {where} "
                                              "ORDER BY b.xmin::text::bigint, b.ctid"),
        "ctid": sql_order(store, campaign.id, f"SELECT ballot_id {where} ORDER BY b.ctid"),
        "plain_select": sql_order(store, campaign.id, f"SELECT ballot_id {where}"),
    }, ids, figure)
    # At most the latest token joins, and then to every ballot alike: they all carry its xid.
    assert linked == []
    assert set(per_token) <= {hashes[-1]}
    assert all(n == N for n in per_token.values())
    assert beaten == {}, f"these attacks recover the casting order: {beaten}"
    assert_recount_and_digest(campaign, choices)


def postgresql_heap(store: SqlStore) -> tuple[bytes, dict[int, int]]:
    """Flush the ballot table to its file and read it (as a physical backup copies it);
    return the bytes and, for each tuple a line pointer shows, its start -> length."""
    with store.engine.connect() as conn:
        if not conn.exec_driver_sql("SELECT rolsuper FROM pg_roles "
                                    "WHERE rolname = current_user").scalar_one():
            pytest.skip("reading PostgreSQL's files needs a superuser")
        datadir = Path(str(conn.exec_driver_sql("SHOW data_directory").scalar_one()))
        path = datadir / str(conn.exec_driver_sql(
            "SELECT pg_relation_filepath('rf_ballots')").scalar_one())
        conn.exec_driver_sql("CHECKPOINT")
    if not os.access(path, os.R_OK):
        pytest.skip(f"PostgreSQL's files ({path}) are not readable on this machine")
    data = path.read_bytes()
    tuples = {}
    for p in range(len(data) // 8192):
        page = data[p * 8192:(p + 1) * 8192]
        lower = int.from_bytes(page[12:14], "little")
        for at in range(24, lower, 4):
            item = int.from_bytes(page[at:at + 4], "little")
            off, flags, length = item & 0x7FFF, (item >> 15) & 3, item >> 17
            if flags == 1 and length:  # LP_NORMAL: a tuple, live or dead
                tuples[p * 8192 + off] = length
    return data, tuples


def test_postgresql_files_link_no_ballot_once_scrubbed(make_store: Any, new_id: Any,
                                                       figure: Any) -> None:
    store = make_store("postgresql")
    assert isinstance(store, SqlStore)
    campaign = vote_campaign(store, new_id("secret"))
    ids, hashes, choices = cast_in_known_order(campaign)
    with store.engine.connect() as conn:
        token_xid = {int(x): str(h) for h, x in conn.execute(sa.text(
            "SELECT token_hash, xmin::text::bigint FROM rf_ballot_tokens "
            "WHERE campaign_id = :c"), {"c": campaign.id})}
    truth = dict(zip(hashes, ids, strict=True))

    def attack(data: bytes, tuples: dict[int, int]) -> tuple[Counter[int], list[str]]:
        """Read every copy of every ballot id in the file, dead tuples and freed space
        included, with the xmin of its tuple; return the copies and the ballots linked."""
        starts = sorted(tuples)
        # where a ballot id sits in its tuple (the same for every row of the campaign)
        shift = None
        stamps: dict[str, set[int]] = {b: set() for b in ids}
        copies: Counter[int] = Counter()
        for b in ids:
            found = [m.start() for m in re.finditer(re.escape(b.encode()), data)]
            copies[len(found)] += 1
            for at in found:
                i = bisect.bisect_right(starts, at) - 1
                if i >= 0 and at < starts[i] + tuples[starts[i]]:
                    shift = at - starts[i]
            for at in found:
                if shift is not None:  # freed space too: the header sits `shift` before
                    stamps[b].add(int.from_bytes(data[at - shift:at - shift + 4], "little"))
        linked = []
        for xid, h in token_xid.items():
            joins = [b for b in ids if xid in stamps[b]]
            if 0 < len(joins) < N and truth[h] in joins:
                linked.append(truth[h])
        return copies, linked

    copies, linked = attack(*postgresql_heap(store))
    figure(copies_before_scrub=dict(copies), linked_by_dead_tuples_before_scrub=len(linked))
    scrub = campaign.store.ballot_box(campaign.id).scrub  # type: ignore[attr-defined]
    # VACUUM FULL keeps the versions that a transaction still open in the database may
    # see (another program's, on a shared server): scrub again until none is open.
    scrubs, until = 0, time.monotonic() + 120
    while True:
        scrub()
        scrubs += 1
        copies, linked = attack(*postgresql_heap(store))
        if copies == {1: N} or time.monotonic() > until:
            break
        time.sleep(2)
    figure(copies_after_scrub=dict(copies), linked_after_scrub=len(linked), scrubs=scrubs)
    with store.engine.connect() as conn:
        holders = conn.exec_driver_sql(
            "SELECT pid, application_name, xact_start FROM pg_stat_activity WHERE "
            "datname = current_database() AND backend_xmin IS NOT NULL "
            "AND pid <> pg_backend_pid()").all()
    assert copies == {1: N}, f"old versions kept for open transactions: {holders}"
    assert linked == []
    assert_recount_and_digest(campaign, choices)


# ---------------------------------------------------------------------- SQLite


def sqlite_cell_offsets(path: Path, ids: list[str]) -> dict[str, list[int]]:
    """Return where each ballot id's bytes are in the database file (file offsets)."""
    data = path.read_bytes()
    return {b: [m.start() for m in re.finditer(re.escape(b.encode()), data)] for b in ids}


def test_sqlite_file_keeps_no_casting_order(make_store: Any, new_id: Any, figure: Any,
                                            rewrite: str) -> None:
    store = make_store("sqlite")
    assert isinstance(store, SqlStore)
    campaign = vote_campaign(store, new_id("secret"))
    ids, _hashes, choices = cast_in_known_order(campaign)
    path = Path(str(store.engine.url.database))
    with store.engine.connect() as conn:
        busy, _log, _moved = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        page_size = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
        try:
            by_rowid = [str(r[0]) for r in conn.exec_driver_sql(
                "SELECT ballot_id FROM rf_ballots ORDER BY rowid")]
        except sa.exc.OperationalError:  # a WITHOUT ROWID table has no rowid
            by_rowid = []
    assert busy == 0
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    offsets = sqlite_cell_offsets(path, ids)
    copies = Counter(len(v) for v in offsets.values())
    figure(copies_of_each_ballot_id=dict(copies))
    first = {b: v[0] for b, v in offsets.items()}
    last = {b: v[-1] for b, v in offsets.items()}
    attacks = {
        "file_offset": sorted(ids, key=lambda b: first[b]),
        "offset_in_page": sorted(ids, key=lambda b: (first[b] % page_size, first[b])),
        "plain_select": sql_order(store, campaign.id,
                                  "SELECT ballot_id FROM rf_ballots b WHERE campaign_id = :c"),
    }
    attacks["last_copy_offset"] = sorted(ids, key=lambda b: last[b])
    if by_rowid:
        attacks["rowid"] = [b for b in by_rowid if b in first]
    beaten = beyond_chance(attacks, ids, figure)
    assert beaten == {}, f"these attacks recover the casting order: {beaten}"
    # Each ballot is in the file once: no index, no freed cell holds an earlier copy.
    assert copies == {1: N}
    assert_recount_and_digest(campaign, choices)


# ---------------------------------------------------------------------- MariaDB / MySQL

INDEX_PAGE = 17855  # FIL_PAGE_INDEX


def innodb_records(data: bytes, page_size: int) -> list[tuple[int, int, bool]]:
    """Return (file offset of the record's origin, heap number, live) for every user record
    in the index pages of an InnoDB file (compact or dynamic format), walking each page's
    record list and its free list; live: in the record list and not delete-marked."""
    out = []
    for p in range(len(data) // page_size):
        page = data[p * page_size:(p + 1) * page_size]
        if int.from_bytes(page[24:26], "big") != INDEX_PAGE:
            continue
        for start, listed in ((99, True), (int.from_bytes(page[44:46], "big"), False)):
            # from the infimum: the page's records; from PAGE_FREE: its free list
            seen: set[int] = set()
            origin = start
            while 5 <= origin < page_size and origin not in seen:
                seen.add(origin)
                header = page[origin - 5:origin]
                bits = int.from_bytes(header[1:3], "big")
                if bits & 7 == 0:  # an ordinary (leaf) record
                    live = listed and not header[0] & 0x20
                    out.append((p * page_size + origin, bits >> 3, live))
                step = int.from_bytes(header[3:5], "big", signed=True)
                if step == 0:
                    break
                origin = (origin + step) % page_size
    return sorted(out)


def mysql_files(store: SqlStore, tables: list[str]) -> dict[str, bytes]:
    """Flush the tables to their files and read them (as a physical backup copies them)."""
    with store.engine.connect() as conn:
        datadir = str(conn.exec_driver_sql("SELECT @@datadir").scalar_one())
        database = str(conn.exec_driver_sql("SELECT DATABASE()").scalar_one())
        folder = Path(datadir) / database
        if not os.access(folder, os.R_OK):
            pytest.skip(f"the MySQL server's files ({folder}) are not readable on this machine")
        conn.exec_driver_sql(f"FLUSH TABLES {', '.join(tables)} FOR EXPORT")
        try:
            return {t: (folder / f"{t}.ibd").read_bytes() for t in tables}
        finally:
            conn.exec_driver_sql("UNLOCK TABLES")


def test_mysql_reader_and_table_files_link_no_ballot_to_its_token(
    make_store: Any, new_id: Any, figure: Any, rewrite: str,
) -> None:
    store = make_store("mysql")
    assert isinstance(store, SqlStore)
    cid = new_id("secret")
    campaign = vote_campaign(store, cid)
    ids, hashes, choices = cast_in_known_order(campaign)
    with store.engine.connect() as conn:
        page_size = int(conn.exec_driver_sql("SELECT @@innodb_page_size").scalar_one())
        key = [str(r[0]) for r in conn.execute(sa.text(
            "SELECT column_name FROM information_schema.key_column_usage WHERE "
            "table_schema = DATABASE() AND table_name = 'rf_ballots' "
            "AND constraint_name = 'PRIMARY' ORDER BY ordinal_position"))]
    widths = {"campaign_id": len(cid), "case_id": 2, "round": 4, "slot": 32, "ballot_id": 16}
    key_bytes = sum(widths[c] for c in key)

    truth = dict(zip(hashes, ids, strict=True))

    def trx_join(ballots_file: bytes, tokens_file: bytes,
                 live_only: bool) -> tuple[Counter[str], list[str]]:
        """Join ballots (their live records, or every copy) to tokens on the hidden
        transaction id; return the ballots each token joins and the ballots linked (a
        token joining fewer than all ballots, its own among them)."""
        records = innodb_records(ballots_file, page_size)
        origins = [r[0] for r in records]
        stamps: dict[str, set[bytes]] = {b: set() for b in ids}
        for b in ids:
            for m in re.finditer(re.escape(b.encode()), ballots_file):
                origin, _heap, live = records[bisect.bisect_right(origins, m.start()) - 1]
                if live or not live_only:
                    stamps[b].add(ballots_file[origin + key_bytes:origin + key_bytes + 6])
        per_token: Counter[str] = Counter()
        linked = []
        for h in hashes:
            at = tokens_file.find(h.encode())
            assert at > 0
            trx = tokens_file[at + 64:at + 70]  # after (campaign_id, token_hash)
            joins = [b for b in ids if trx in stamps[b]]
            per_token[h] = len(joins)
            if 0 < len(joins) < N and truth[h] in joins:
                linked.append(truth[h])
        return +per_token, linked

    def places(ballots_file: bytes) -> dict[str, tuple[int, int]]:
        """Return each ballot's live record: (file offset, heap number)."""
        records = innodb_records(ballots_file, page_size)
        origins = [r[0] for r in records]
        out = {}
        for b in ids:
            for m in re.finditer(re.escape(b.encode()), ballots_file):
                origin, heap, live = records[bisect.bisect_right(origins, m.start()) - 1]
                if live:
                    out[b] = (origin, heap)
        assert sorted(out) == sorted(ids), "every ballot has a live record"
        return out

    def orders(place: dict[str, tuple[int, int]]) -> dict[str, list[str]]:
        return {"heap_number": sorted(ids, key=lambda b: (place[b][0] // page_size,
                                                           place[b][1])),
                "file_offset": sorted(ids, key=lambda b: place[b][0])}

    # 1. During the vote: the live records (old copies stay until the scrub, see docs).
    files = mysql_files(store, ["rf_ballots", "rf_ballot_tokens"])
    per_token, linked = trx_join(files["rf_ballots"], files["rf_ballot_tokens"], True)
    figure(live_trx_join=sum(per_token.values()), tokens_joined=len(per_token),
           linked=len(linked))
    _joins, from_old_copies = trx_join(files["rf_ballots"], files["rf_ballot_tokens"], False)
    figure(linked_by_old_copies_before_scrub=len(from_old_copies))  # the residual, not asserted
    beaten = beyond_chance(orders(places(files["rf_ballots"])), ids, figure)
    assert linked == []
    assert set(per_token) <= {hashes[-1]}
    assert beaten == {}, f"these attacks recover the casting order: {beaten}"

    # 2. After the vote, once the box is scrubbed (``reviewflow ballots close`` does it):
    # one copy of each ballot in the file, linked to no token, in no order.
    scrub = campaign.store.ballot_box(campaign.id).scrub  # type: ignore[attr-defined]
    scrub()
    files = mysql_files(store, ["rf_ballots", "rf_ballot_tokens"])
    copies = Counter(len(re.findall(re.escape(b.encode()), files["rf_ballots"])) for b in ids)
    per_token, linked = trx_join(files["rf_ballots"], files["rf_ballot_tokens"], False)
    figure(copies_of_each_ballot_id_after_scrub=dict(copies),
           any_copy_trx_join_after_scrub=sum(per_token.values()),
           linked_after_scrub=len(linked))
    where = "FROM rf_ballots b WHERE b.campaign_id = :c"
    assert_chance({
        **orders(places(files["rf_ballots"])),
        "plain_select": sql_order(store, cid, f"SELECT ballot_id {where}"),
    }, ids, figure)
    assert linked == []
    assert copies == {1: N}
    assert_recount_and_digest(campaign, choices)


# ---------------------------------------------------------------------- memory and the API


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgresql", "mysql"])
def test_the_api_lists_ballots_in_no_casting_order(kind: str, make_store: Any, new_id: Any,
                                                   figure: Any) -> None:
    campaign = vote_campaign(make_store(kind), new_id("secret"))
    ids, _hashes, choices = cast_in_known_order(campaign)
    box = campaign.store.ballot_box(campaign.id)
    stored = vote_work.vote_round(campaign._engine, "s1")
    assert stored is not None
    attacks = {
        "ballots": list(box.ballots("s1", 1)),
        "round_ballots": list(stored.ballots),
        "exported": [b["id"] for b in stored.to_json()["ballots"]],
    }
    inner = getattr(box, "_ballots", None)
    if inner is not None:  # the memory box's own dict
        attacks["memory_box"] = list(inner[("s1", 1)])
    assert_chance(attacks, ids, figure)
    assert_recount_and_digest(campaign, choices)


def test_a_vote_kept_by_hand_holds_its_ballots_in_no_casting_order(figure: Any) -> None:
    vote, book = Vote(case_id="s1"), MemoryTokenBook()
    tokens = issue_tokens(vote, book, {"party_member": N})
    ids = [cast(vote, book, t.token, CHOICES[i % len(CHOICES)]).ballot_id
           for i, t in enumerate(tokens)]
    r = vote.current
    assert r is not None
    assert_chance({"round_ballots": list(r.ballots),
                   "exported": [b["id"] for b in r.to_json()["ballots"]]}, ids, figure)


# ---------------------------------------------------------------------- the migration


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_upgrade_to_0004_keeps_the_ballots_and_shuffles_them(
    kind: str, fresh_url: Any,
) -> None:
    from reviewflow.store.sql import upgrade

    url = fresh_url(kind)
    assert upgrade(url, "0003") == (None, "0003")
    engine = sa.create_engine(sa.make_url(url).set(
        drivername={"sqlite": "sqlite", "postgresql": "postgresql+psycopg",
                    "mysql": "mysql+pymysql"}[kind]))
    rows = [{"campaign_id": "2016", "ballot_id": f"{i:016x}", "case_id": "s1", "round": 1,
             "category": "party_member", "choice": CHOICES[i % len(CHOICES)]}
            for i in range(N)]
    old = sa.table("rf_ballots", *(sa.column(k) for k in rows[0]))
    with engine.begin() as conn:
        conn.execute(sa.insert(old), rows)
    assert upgrade(url) == ("0003", HEAD_REVISION)
    with engine.connect() as conn:
        after = [dict(r._mapping) for r in conn.execute(sa.text(
            "SELECT campaign_id, ballot_id, case_id, round, category, choice, slot "
            "FROM rf_ballots"))]
    assert sorted(r["ballot_id"] for r in after) == [r["ballot_id"] for r in rows]
    assert {(r["ballot_id"], r["choice"]) for r in after} == {
        (r["ballot_id"], r["choice"]) for r in rows}
    assert len({r["slot"] for r in after}) == N
    from alembic import command

    from reviewflow.store._engine import _alembic_config, make_engine

    back = make_engine(url).execution_options(rf_write=True)
    with back.begin() as conn:
        command.downgrade(_alembic_config(conn), "0003")
    back.dispose()
    with engine.connect() as conn:
        again = [dict(r._mapping) for r in conn.execute(sa.select(old))]
    engine.dispose()
    assert sorted(again, key=lambda r: r["ballot_id"]) == rows


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_ballots_close_on_the_command_line_scrubs_the_ballot_table(
    kind: str, make_store: Any, new_id: Any, tmp_path: Path,
) -> None:
    store = make_store(kind)
    assert isinstance(store, SqlStore)
    campaign = vote_campaign(store, new_id("secret"))
    _ids, _hashes, choices = cast_in_known_order(campaign)
    url = store.engine.url.render_as_string(hide_password=False)
    (tmp_path / "reviewflow.toml").write_text(
        f'campaign = "{campaign.id}"\nrehearsal = true\n\n[actors.{CAST.organizer.id}]\nname = "局党组"\n'
        'roles = ["organizer"]\n', encoding="utf-8")
    env = {**os.environ, "REVIEWFLOW_LANG": "en", "COLUMNS": "200"}
    for name in ("REVIEWFLOW_NOW", "REVIEWFLOW_DB", "REVIEWFLOW_CONFIG", "REVIEWFLOW_CAMPAIGN"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "reviewflow.cli", "--db", url, "--now",
         campaign.clock.now().isoformat(), "ballots", "close", "s1",
         "--actor", CAST.organizer.id],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert f"blank {choices[None]}" in done.stdout
    assert campaign.verify_votes() == []
