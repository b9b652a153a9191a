"""Crash injection through the engine: kill -9 of the PostgreSQL server, and of a writer.

(``tests/test_crash.py`` kills writer processes that use the store directly; this
module drives a real :class:`Campaign` with hooks, so that the outbox is tested too.)

Server kill: a throwaway PostgreSQL of the test's own (``throwaway_postgres`` in
``tests/conftest.py``) with durability on (never the machine's own server). A writer process
runs the lifecycle on many cases and appends every acknowledged step to a file; a
hook appends every event it is told of to another. The test kills the postmaster
with SIGKILL at random moments while the writer runs, restarts it, and at the end
kills the writer too. Then:

* 0 acknowledged steps lost (each is in the history with its hash);
* 0 half-applied cases (version == number of events), ``verify()`` clean;
* ``dispatch_pending()`` delivers every committed event the hooks had not heard of,
  and afterwards nothing is pending (delivery is at least once: every committed event
  was delivered before the crash or is delivered now).

CI form: 2 server kills; long form (``REVIEWFLOW_LONG=1``): 10. The writer-kill form
(outbox redelivery) runs on SQLite and the machine's PostgreSQL: 2 writer kills in the
CI form, 20 in the long form.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pendulum
import pytest
import sqlalchemy as sa

import reviewflow as rf
from reviewflow.hooks import hookimpl
from reviewflow.store.sql import SqlStore
from reviewflow.testing import Cast, HookRecorder, _step

FORK = multiprocessing.get_context("fork")
CAST = Cast.default()
TZ = "Asia/Shanghai"
LONG = os.environ.get("REVIEWFLOW_LONG") == "1" or os.environ.get("REVIEWFLOW_FULL") == "1"


@pytest.fixture(scope="module")
def throwaway_pg(throwaway_postgres: Any) -> Any:
    """A durable throwaway PostgreSQL server for this module (tests/conftest.py)."""
    return throwaway_postgres(durable=True)


class Teller:
    """A hook that appends the id of every event it is told of to a file."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    @hookimpl
    def reviewflow_case_opened(self, campaign: Any, case: Any) -> None:
        """Note the opening event."""
        os.write(self.fd, f"{campaign.id}/{case.case_id}/1\n".encode())

    @hookimpl
    def reviewflow_step(self, campaign: Any, case: Any, record: Any) -> None:
        """Note a step."""
        os.write(self.fd, f"{record.event_id}\n".encode())


def _campaign(url: str, cid: str, told: str | None = None) -> rf.Campaign:
    plugins = [Teller(told)] if told else []
    clock = rf.FrozenClock(pendulum.datetime(2016, 1, 12, 10, tz=TZ))
    return rf.Campaign(rf.Policy.default(year=2016), clock=clock, store=SqlStore(url),
                       campaign_id=cid, plugins=plugins)


def _writer(url: str, cid: str, acks: str, told: str, errors: str, seed: int, ready: Any) -> None:
    """Run the lifecycle on many cases forever, noting every acknowledged step."""
    rng = random.Random(seed)
    ack_fd = os.open(acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    err_fd = os.open(errors, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    campaign = None
    cases: list[str] = []
    ready.set()
    n = 0
    while True:
        n += 1
        try:
            if campaign is None:
                campaign = _campaign(url, cid, told)
            if not cases or rng.random() < 0.15:
                case_id = f"w{seed}-{n}"
                case = campaign.open_case(case_id, organization=f"{case_id}支部",
                                          secretary=CAST.secretary(case_id))
                cases.append(case_id)
            else:
                case_id = rng.choice(cases)
                case = campaign.case(case_id)
                if case.stage is rf.Stage.CLOSED:
                    cases.remove(case_id)
                    continue
                case = _step(campaign, case, CAST, None)
            os.write(ack_fd, f"{case_id} {case.version} {case.last_hash}\n".encode())
        except rf.ReviewflowError as exc:
            os.write(err_fd, f"{type(exc).__name__}\n".encode())
            time.sleep(0.02)
        except Exception as exc:  # not a reviewflow error: a finding, noted
            os.write(err_fd, f"RAW {type(exc).__name__}: {str(exc)[:100]!r}\n".encode())
            time.sleep(0.02)


def _check(url: str, cid: str, acks: Path, told: Path) -> dict[str, Any]:
    lines = acks.read_text().split("\n")[:-1] if acks.exists() else []
    campaign = _campaign(url, cid)
    store = campaign.store
    assert isinstance(store, SqlStore)
    chains = {chain.case_id: chain for chain in store.iter_histories(cid)}
    lost = 0
    for line in lines:
        case_id, version, last_hash = line.split(" ")
        chain = chains.get(case_id)
        v = int(version)
        if chain is None or len(chain.records) < v or chain.records[v - 1].hash != last_hash:
            lost += 1
    half = sum(1 for chain in chains.values() if chain.version != len(chain.records))
    report = campaign.verify()
    committed = {r.event_id for chain in chains.values() for r in chain.records}
    heard = set(told.read_text().split("\n")[:-1]) if told.exists() else set()
    pending_before = len(store.pending_outbox(cid, limit=10**6))
    recorder = HookRecorder()
    campaign.register(recorder)
    delivered = campaign.dispatch_pending()
    store.flush()
    redelivered = {
        kwargs["record"].event_id if name == "reviewflow_step" else f"{cid}/{kwargs['case'].case_id}/1"
        for name, kwargs in recorder.calls
    }
    pending_after = len(store.pending_outbox(cid, limit=10**6))
    never_told = committed - heard - redelivered
    store.close()
    return {
        "acknowledged": len(lines), "lost": lost, "half_applied": half,
        "verify_ok": report.ok, "cases": len(chains), "events": len(committed),
        "outbox_pending_after_crash": pending_before, "redelivered": delivered,
        "outbox_pending_after_dispatch": pending_after, "events_never_told": len(never_told),
        "told_twice": len(heard & redelivered),
    }


def _assert_safe(figures: dict[str, Any]) -> None:
    assert figures["acknowledged"] > 0
    assert figures["lost"] == 0
    assert figures["half_applied"] == 0
    assert figures["verify_ok"]
    assert figures["redelivered"] == figures["outbox_pending_after_crash"]
    assert figures["outbox_pending_after_dispatch"] == 0
    assert figures["events_never_told"] == 0


def _errors(path: Path) -> dict[str, int]:
    return dict(Counter(path.read_text().split("\n")[:-1])) if path.exists() else {}


def _server_kills(server: Any, tmp_path: Path, kills: int) -> dict[str, Any]:
    cid = f"crash-{os.urandom(4).hex()}"
    SqlStore(server.url).close()  # the schema exists before the writer starts
    acks, told, errors = (tmp_path / n for n in ("acks.txt", "told.txt", "errors.txt"))
    ready = FORK.Event()
    writer = FORK.Process(target=_writer, args=(server.url, cid, str(acks), str(told),
                                                str(errors), 1, ready), daemon=True)
    writer.start()
    assert ready.wait(30)
    rng = random.Random()
    restarts = []
    for _ in range(kills):
        time.sleep(rng.uniform(0.4, 1.2))
        server.kill9()
        restarts.append(round(server.restart(), 2))
    time.sleep(1.0)  # the writer carries on after the last restart
    assert writer.pid is not None
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(30)
    figures = _check(server.url, cid, acks, told)
    figures.update(server_kills=kills, restart_seconds=restarts, writer_errors=_errors(errors))
    return figures


def test_kill_9_of_the_postgresql_server(throwaway_pg: Any, tmp_path: Path,
                                         figure: Any) -> None:
    figures = _server_kills(throwaway_pg, tmp_path, 2)
    figure(**figures)
    _assert_safe(figures)
    assert not [e for e in figures["writer_errors"] if e.startswith("RAW")]


@pytest.mark.slow
def test_kill_9_of_the_postgresql_server_long(throwaway_pg: Any, tmp_path: Path,
                                              figure: Any, require_long: None) -> None:
    figures = _server_kills(throwaway_pg, tmp_path, 10)
    figure(**figures)
    _assert_safe(figures)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_kill_9_of_a_writer_then_the_outbox_redelivers(kind: str, make_store: Any, new_id: Any,
                                                       tmp_path: Path, figure: Any) -> None:
    store = make_store(kind)
    assert isinstance(store, SqlStore)
    url = store.engine.url.render_as_string(hide_password=False)
    cid = new_id("crash")
    acks, told, errors = (tmp_path / n for n in ("acks.txt", "told.txt", "errors.txt"))
    totals: Counter[str] = Counter()
    rounds = 20 if LONG else 2
    for r in range(rounds):
        ready = FORK.Event()
        writer = FORK.Process(target=_writer, args=(url, cid, str(acks), str(told),
                                                    str(errors), r, ready), daemon=True)
        writer.start()
        assert ready.wait(30)
        time.sleep(random.uniform(0.5, 1.5))
        assert writer.pid is not None
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(30)
        totals["killed"] += writer.exitcode == -signal.SIGKILL
    figures = _check(url, cid, acks, told)
    figure(backend=kind, writer_kills=rounds, writer_errors=_errors(errors), **figures)
    assert totals["killed"] == rounds
    _assert_safe(figures)
    assert figures["outbox_pending_after_crash"] > 0  # the kill left undelivered events


def test_the_check_sees_an_undelivered_event(make_store: Any, new_id: Any, tmp_path: Path) -> None:
    """Negative control: an event committed, never told, and gone from the outbox is caught."""
    store = make_store("sqlite")
    assert isinstance(store, SqlStore)
    url = store.engine.url.render_as_string(hide_password=False)
    cid = new_id("crash")
    campaign = _campaign(url, cid)
    campaign.open_case("a", organization="x", secretary=CAST.secretary("a"))
    campaign.store.close()
    with store.transaction() as conn:
        conn.execute(sa.text("DELETE FROM rf_outbox"))
    figures = _check(url, cid, tmp_path / "acks.txt", tmp_path / "told.txt")
    assert figures["events_never_told"] == 1
