"""Ballot secrecy and integrity of the on-site vote (现场测评) run through a Campaign.

* Concurrent casts: many threads cast with every token many times at once; each
  token yields at most one ballot, every other attempt is ``BallotError token_used``.
  Memory: 10,000 casts over 1,000 tokens in CI; SQL stores: 2,000 over 200 in CI,
  10,000 over 1,000 in the long form (``REVIEWFLOW_LONG=1``).
* Secrecy: a stored ballot carries no voter, token or casting time (its fields, the
  case snapshot, the events and the refusal journal are inspected); casting records no
  event; no token's text or hash is stored anywhere in the case's records.
* Order: ballots read back do not follow the order their tokens were issued and cast
  (Spearman |rho| < 0.16, five standard deviations of chance, over 1,000 ballots cast in
  issue order).
* Tampering: any single-byte change to a stored ballot is found by
  ``verify_votes()``; any single-byte change to a stored event by ``verify()``.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

import pendulum
import pytest
import sqlalchemy as sa

import reviewflow as rf
from reviewflow._engine import vote_work
from reviewflow.store.base import Store
from reviewflow.testing import Cast, drive_to

TZ = "Asia/Shanghai"
CAST = Cast.default()
LONG_CASTS = (10_000, 1_000)


def vote_campaign(store: Store, campaign_id: str) -> rf.Campaign:
    """Return a campaign with case ``s1`` in evaluation, ready to vote."""
    clock = rf.FrozenClock(pendulum.datetime(2016, 1, 4, 9, tz=TZ))
    campaign = rf.Campaign(rf.Policy.default(year=2016), clock=clock, store=store,
                           campaign_id=campaign_id)
    campaign.open_case("s1", organization="第一中学党支部", secretary=CAST.secretary("s1"))
    drive_to(campaign, "s1", rf.Stage.EVALUATION, cast=CAST, clock=clock)
    return campaign


def spearman(xs: list[float], ys: list[float]) -> float:
    """Return Spearman's rank correlation of two equally long lists without ties."""
    n = len(xs)
    rank_x = {v: i for i, v in enumerate(sorted(xs))}
    rank_y = {v: i for i, v in enumerate(sorted(ys))}
    d2 = sum((rank_x[x] - rank_y[y]) ** 2 for x, y in zip(xs, ys, strict=True))
    return 1 - 6 * d2 / (n * (n * n - 1))


def concurrent_casts(campaign: rf.Campaign, casts: int, tokens: int,
                     threads: int = 8) -> dict[str, Any]:
    """Cast ``casts`` times over ``tokens`` tokens from ``threads`` threads at once."""
    issued = campaign.issue_ballot_tokens("s1", {"party_member": tokens}, actor=CAST.organizer)
    attempts = [t.token for t in issued] * (casts // tokens)
    random.Random(7).shuffle(attempts)
    share = [attempts[i::threads] for i in range(threads)]
    outcomes: Counter[str] = Counter()
    ballot_ids: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def work(mine: list[str]) -> None:
        start.wait()
        local: Counter[str] = Counter()
        ids = []
        for token in mine:
            try:
                ids.append(campaign.cast_ballot("s1", token, random.choice(["good", "poor", None])))
                local["ballot"] += 1
            except rf.BallotError as exc:
                local[exc.reason] += 1
        with lock:
            outcomes.update(local)
            ballot_ids.extend(ids)

    workers = [threading.Thread(target=work, args=(m,)) for m in share]
    for w in workers:
        w.start()
    for w in workers:
        w.join(600)
    stored = vote_work.vote_round(campaign._engine, "s1")
    assert stored is not None
    return {"casts": len(attempts), "tokens": tokens, "threads": threads,
            "ballots": outcomes["ballot"], "token_used": outcomes["token_used"],
            "other_refusals": sum(n for k, n in outcomes.items() if k not in ("ballot", "token_used")),
            "stored_ballots": len(stored.ballots), "distinct_ids": len(set(ballot_ids))}


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgresql"])
def test_concurrent_casts_yield_one_ballot_per_token(kind: str, make_store: Any, new_id: Any,
                                                     figure: Any) -> None:
    casts, tokens = (10_000, 1_000) if kind == "memory" else (2_000, 200)
    campaign = vote_campaign(make_store(kind), new_id("ballot"))
    figures = concurrent_casts(campaign, casts, tokens)
    figure(backend=kind, **figures)
    assert figures["ballots"] <= tokens
    assert figures["ballots"] == figures["stored_ballots"] == figures["distinct_ids"] == tokens
    assert figures["token_used"] == casts - tokens
    assert figures["other_refusals"] == 0
    result = campaign.close_vote("s1", actor=CAST.organizer)
    assert result.tally.returned == tokens
    assert campaign.verify_votes() == []
    assert campaign.verify().ok


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_concurrent_casts_long(kind: str, make_store: Any, new_id: Any, figure: Any,
                               require_long: None) -> None:
    campaign = vote_campaign(make_store(kind), new_id("ballot"))
    figures = concurrent_casts(campaign, *LONG_CASTS)
    figure(backend=kind, **figures)
    assert figures["ballots"] == figures["stored_ballots"] == LONG_CASTS[1]


def test_ballots_cast_through_a_sql_store_survive_a_restart(make_store: Any, new_id: Any) -> None:
    store = make_store("sqlite")
    cid = new_id("ballot")
    campaign = vote_campaign(store, cid)
    issued = campaign.issue_ballot_tokens("s1", {"party_member": 10}, actor=CAST.organizer)
    for token in issued:
        campaign.cast_ballot("s1", token.token, "good")
    campaign.close_vote("s1", actor=CAST.organizer)
    again = rf.Campaign(rf.Policy.default(year=2016), clock=campaign.clock,
                        store=make_store("sqlite", store), campaign_id=cid)
    stored = vote_work.vote_round(again._engine, "s1")
    assert stored is not None
    assert len(stored.ballots) == 10
    assert again.verify_votes() == []


def test_a_ballot_carries_no_voter_token_or_time(make_store: Any, new_id: Any, figure: Any) -> None:
    store = make_store("sqlite")
    campaign = vote_campaign(store, new_id("ballot"))
    version = campaign.case("s1").version
    issued = campaign.issue_ballot_tokens("s1", {"party_member": 30}, actor=CAST.organizer)
    for token in issued:
        campaign.cast_ballot("s1", token.token, "fairly_good")
    assert campaign.case("s1").version == version + 1  # the issue event; casting adds none
    stored = vote_work.vote_round(campaign._engine, "s1")
    assert stored is not None
    fields = set()
    for ballot in stored.ballots.values():
        fields |= set(ballot.to_json())
    assert fields == {"id", "round", "category", "choice"}
    campaign.close_vote("s1", actor=CAST.organizer)
    # nothing the store keeps holds a token's text or hash, or a per-ballot record
    from reviewflow.ballots import token_hash

    secrets = {t.token for t in issued} | {token_hash(t.token) for t in issued}
    assert isinstance(store, rf.Store)
    from reviewflow.store.sql import SqlStore

    assert isinstance(store, SqlStore)
    # The ballot box itself keeps token hashes (rf_ballot_tokens) and ballots (rf_ballots),
    # unlinked: a ballot row has no token, voter or time column.
    box_tables = {"rf_ballot_tokens", "rf_ballots"}
    inspector = sa.inspect(store.engine)
    assert {c["name"] for c in inspector.get_columns("rf_ballots")} == {
        "campaign_id", "ballot_id", "case_id", "round", "category", "choice", "slot"}
    assert "ballot_id" not in {c["name"] for c in inspector.get_columns("rf_ballot_tokens")}
    dumped = []
    in_ballots = []
    with store.engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f"SELECT * FROM {table}")):
                line = " ".join(str(v) for v in row)
                (in_ballots if table == "rf_ballots" else dumped).append(
                    "" if table in box_tables - {"rf_ballots"} else line)
    text = "\n".join(dumped)
    leaks = [s for s in secrets if s in text or s in "\n".join(in_ballots)]
    ballot_ids = [b for b in stored.ballots if b in text]
    figure(tables_inspected=len(inspector.get_table_names()),
           ballot_fields=sorted(fields), token_leaks=len(leaks), ballot_ids_in_tables=len(ballot_ids))
    assert leaks == []
    assert ballot_ids == []  # ballots live only in the ballot box, never in an event or a case


def _cast_in_issue_order(n: int) -> tuple[list[str], rf.Campaign]:
    campaign, _clock = vote_campaign(rf.MemoryStore(), "order"), None
    issued = campaign.issue_ballot_tokens("s1", {"party_member": n}, actor=CAST.organizer)
    ids = [campaign.cast_ballot("s1", t.token, "good") for t in issued]
    return ids, campaign


def test_exported_ballots_do_not_follow_the_casting_order(figure: Any) -> None:
    ids, campaign = _cast_in_issue_order(1000)
    stored = vote_work.vote_round(campaign._engine, "s1")
    assert stored is not None
    exported = [b["id"] for b in stored.to_json()["ballots"]]
    position = {b: i for i, b in enumerate(exported)}
    rho = spearman([float(i) for i in range(len(ids))], [float(position[b]) for b in ids])
    figure(ballots=len(ids), spearman_rho_exported_order=round(rho, 4))
    assert abs(rho) < 0.16  # 5 standard deviations of a random order (1/sqrt(999))


def test_ballots_read_back_do_not_follow_the_casting_order() -> None:
    ids, campaign = _cast_in_issue_order(1000)
    stored = vote_work.vote_round(campaign._engine, "s1")
    assert stored is not None
    position = {b: i for i, b in enumerate(stored.ballots)}
    rho = spearman([float(i) for i in range(len(ids))], [float(position[b]) for b in ids])
    assert abs(rho) < 0.16  # 5 standard deviations of a random order (1/sqrt(999))


def test_any_single_byte_change_to_a_ballot_is_detected(figure: Any) -> None:
    campaign = vote_campaign(rf.MemoryStore(), "tamper")
    issued = campaign.issue_ballot_tokens("s1", {"party_member": 20, "public": 5},
                                          actor=CAST.organizer)
    choices = ["good", "fairly_good", "average", "poor", None]
    for i, t in enumerate(issued):
        campaign.cast_ballot("s1", t.token, choices[i % 5])
    campaign.close_vote("s1", actor=CAST.organizer)
    assert campaign.verify_votes() == []
    box = campaign.store.ballot_box(campaign.id)
    ballots = box._ballots[("s1", 1)]  # type: ignore[attr-defined]
    tried = detected = raised = 0
    for ballot_id in list(ballots):
        original = ballots[ballot_id]
        for field in ("ballot_id", "category", "choice"):
            value = getattr(original, field) or ""
            for pos in range(len(value) or 1):
                text = value or "x"
                changed = text[:pos] + chr(ord(text[pos]) ^ 1) + text[pos + 1:]
                forged = type(original)(**{**{f: getattr(original, f) for f in
                                              ("ballot_id", "round", "category", "choice")},
                                           field: changed})
                del ballots[ballot_id]
                ballots[forged.ballot_id] = forged
                tried += 1
                try:
                    detected += bool(campaign.verify_votes())
                except rf.ReviewflowError:  # see test_verify_votes_reports_an_unknown_choice
                    detected += 1
                    raised += 1
                del ballots[forged.ballot_id]
                ballots[ballot_id] = original
    # a ballot removed, or one added, shows too
    removed = ballots.pop(next(iter(ballots)))
    tried, detected = tried + 1, detected + bool(campaign.verify_votes())
    ballots[removed.ballot_id] = removed
    assert campaign.verify_votes() == []
    figure(ballot_changes_tried=tried, detected=detected, raised_instead_of_reported=raised)
    assert detected == tried


def test_verify_votes_reports_an_unknown_choice() -> None:
    campaign = vote_campaign(rf.MemoryStore(), "tamper")
    issued = campaign.issue_ballot_tokens("s1", {"party_member": 5}, actor=CAST.organizer)
    for t in issued:
        campaign.cast_ballot("s1", t.token, "good")
    campaign.close_vote("s1", actor=CAST.organizer)
    ballots = campaign.store.ballot_box(campaign.id)._ballots[("s1", 1)]  # type: ignore[attr-defined]
    first = next(iter(ballots))
    ballots[first] = type(ballots[first])(ballot_id=first, round=1, category="party_member",
                                          choice="food")
    problems = campaign.verify_votes()
    assert problems


def test_any_single_byte_change_to_a_stored_event_is_detected(make_store: Any, new_id: Any,
                                                              figure: Any) -> None:
    store = make_store("sqlite")
    campaign = vote_campaign(store, new_id("tamper"))
    from reviewflow.store.sql import SqlStore

    assert isinstance(store, SqlStore)
    rng = random.Random(11)
    columns = ["event", "actor_id", "role", "at", "from_stage", "to_stage", "reason", "data",
               "prev_hash", "hash"]
    tried = detected = 0
    with store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.text(
            "SELECT * FROM rf_events WHERE campaign_id = :c"), {"c": campaign.id})]
    for _ in range(300):
        row = rng.choice(rows)
        column = rng.choice([c for c in columns if row[c]])
        value: str = row[column]
        raw = bytearray(value.encode())
        pos = rng.randrange(len(raw))
        raw[pos] ^= 1 << rng.randrange(7)  # stays ASCII where it was ASCII
        changed = raw.decode("utf-8", "replace")
        if changed == value:
            continue
        key = {"c": campaign.id, "k": row["case_id"], "s": row["seq"]}
        with store.transaction() as conn:
            conn.execute(sa.text(f"UPDATE rf_events SET {column} = :v WHERE campaign_id = :c "
                                 "AND case_id = :k AND seq = :s"), {**key, "v": changed})
        tried += 1
        detected += not campaign.verify().ok
        with store.transaction() as conn:
            conn.execute(sa.text(f"UPDATE rf_events SET {column} = :v WHERE campaign_id = :c "
                                 "AND case_id = :k AND seq = :s"), {**key, "v": value})
    assert campaign.verify().ok
    figure(event_changes_tried=tried, detected=detected)
    assert detected == tried
