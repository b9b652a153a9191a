"""kill -9 a writer process at random moments: nothing acknowledged is lost, nothing is half-applied.

A writer process opens cases and commits single steps (1 to 3 events each, with
an idempotency key) and batches. After each call returns it appends what it
acknowledged to a file. The test kills it with SIGKILL at a random moment, then
checks the database: every acknowledged step is there with its hash, every case's
version equals its number of events, every hash chain verifies, and (SQLite)
``PRAGMA integrity_check`` is ok. The next round's writer continues on the same
database after the crash.

CI form: 4 rounds per database; full form (the issue's figure): 20 rounds, with
``REVIEWFLOW_FULL=1`` or ``pytest -m slow``.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from reviewflow.audit import verify_chain
from reviewflow.store.sql import SqlStore

KINDS = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
FORK = multiprocessing.get_context("fork")


def _writer(url: str, cid: str, acks: str, seed: int, kit: Any, ready: Any) -> None:
    rng = random.Random(seed)
    store = SqlStore(url)
    fd = os.open(acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def ack(*lines: str) -> None:
        os.write(fd, "".join(line + "\n" for line in lines).encode())

    ready.set()
    n = 0
    while True:
        n += 1
        cases = store.cases(cid)
        roll = rng.random()
        if roll < 0.15 or not cases:
            ids = [f"s{seed}-{n}-{i}" for i in range(rng.randint(1, 5))]
            commits = [kit.opening(cid, c) for c in ids]
            store.insert_cases(commits)
            ack(*(f"step {c.case.case_id} 1 {c.case.last_hash} -" for c in commits))
        elif roll < 0.6:
            case = rng.choice(cases)
            key = f"k{seed}-{n}"
            commit = kit.step(case, rng.randint(1, 3), key=key, fingerprint=key)
            [error] = store.commit([commit])
            if error is None:
                ack(f"step {case.case_id} {commit.case.version} {commit.case.last_hash} {key}")
        else:
            chosen = rng.sample(cases, min(len(cases), rng.randint(2, 8)))
            commits = [kit.step(c, rng.randint(1, 2)) for c in chosen]
            results = store.commit(commits)
            ack(*(f"step {c.case.case_id} {c.case.version} {c.case.last_hash} -"
                  for c, error in zip(commits, results, strict=True) if error is None))


def _check(url: str, cid: str, acks: Path) -> dict[str, int]:
    store = SqlStore(url)
    lines = acks.read_text().split("\n")[:-1] if acks.exists() else []  # drop a torn last line
    acked: dict[str, tuple[int, str, str]] = {}
    for line in lines:
        _, case_id, version, last_hash, key = line.split(" ")
        acked[f"{case_id}/{version}"] = (int(version), last_hash, key)
    chains = {chain.case_id: chain for chain in store.iter_histories(cid)}
    lost = 0
    for name, (version, last_hash, key) in acked.items():
        case_id = name.rsplit("/", 1)[0]
        chain = chains.get(case_id)
        missing = chain is None or len(chain.records) < version \
            or chain.records[version - 1].hash != last_hash
        if missing or (key != "-" and store.find_idempotent(cid, key) is None):
            lost += 1
    half = sum(1 for chain in chains.values() if chain.version != len(chain.records))
    broken = sum(
        1 for chain in chains.values()
        if verify_chain(chain.case_id, chain.records, expected_version=chain.version,
                        expected_hash=chain.last_hash)
    )
    integrity = "ok"
    if store.dialect == "sqlite":
        with store.engine.connect() as conn:
            integrity = str(conn.exec_driver_sql("PRAGMA integrity_check").scalar())
    store.close()
    return {
        "acknowledged": len(acked), "lost": lost, "half_applied": half, "broken_chains": broken,
        "cases": len(chains), "events": sum(len(c.records) for c in chains.values()),
        "integrity_ok": int(integrity == "ok"),
    }


def _crash_rounds(url: str, kit: Any, tmp_path: Path, rounds: int) -> dict[str, int]:
    store = SqlStore(url)
    cid = kit.new_campaign_id()
    store.setup_campaign(cid, "{}")
    store.close()
    acks = tmp_path / "acks.txt"
    rng = random.Random()
    killed_mid_run = 0
    for r in range(rounds):
        ready = FORK.Event()
        writer = FORK.Process(target=_writer, args=(url, cid, str(acks), r, kit, ready))
        writer.start()
        assert ready.wait(30), "the writer did not start"
        time.sleep(rng.uniform(0.05, 0.5))
        assert writer.pid is not None
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(30)
        killed_mid_run += writer.exitcode == -signal.SIGKILL
    figures = _check(url, cid, acks)
    figures["rounds"] = rounds
    figures["killed"] = killed_mid_run
    return figures


def _assert_safe(figures: dict[str, int], rounds: int) -> None:
    assert figures["killed"] == rounds
    assert figures["acknowledged"] > 0
    assert figures["lost"] == 0
    assert figures["half_applied"] == 0
    assert figures["broken_chains"] == 0
    assert figures["integrity_ok"] == 1


@KINDS
def test_kill_9_loses_nothing_acknowledged(db_url: str, kit: Any, tmp_path: Path) -> None:
    figures = _crash_rounds(db_url, kit, tmp_path, 4)
    print(f"\n{db_url.split(':')[0]} crash x4: {figures}")
    _assert_safe(figures, 4)


@pytest.mark.slow
@KINDS
def test_full_form_20_rounds(
    db_url: str, kit: Any, tmp_path: Path, pytestconfig: pytest.Config,
) -> None:
    if not (os.environ.get("REVIEWFLOW_FULL") == "1" or pytestconfig.getoption("-m") == "slow"):
        pytest.skip("full form: set REVIEWFLOW_FULL=1 or run pytest -m slow")
    figures = _crash_rounds(db_url, kit, tmp_path, 20)
    print(f"\n{db_url.split(':')[0]} crash x20: {figures}")
    _assert_safe(figures, 20)


def test_the_check_sees_a_lost_or_half_applied_step(sqlite_url: str, kit: Any,
                                                    tmp_path: Path) -> None:
    store = SqlStore(sqlite_url)
    cid = kit.new_campaign_id()
    store.setup_campaign(cid, "{}")
    opening = kit.opening(cid, "a")
    store.insert_cases([opening])
    acks = tmp_path / "acks.txt"
    acks.write_text(f"step a 1 {opening.case.last_hash} -\nstep a 2 {'0' * 64} k-9\n")
    with store.transaction() as conn:  # a case row ahead of its events: half-applied
        conn.exec_driver_sql("UPDATE rf_cases SET version = 2")
    store.close()
    figures = _check(sqlite_url, cid, acks)
    assert (figures["lost"], figures["half_applied"], figures["broken_chains"]) == (1, 1, 1)
