"""Crash injection through the engine: kill -9 of the PostgreSQL server, and of a writer.

(``tests/test_crash.py`` kills writer processes that use the store directly; this
module drives a real :class:`Campaign` with hooks, so that the outbox is tested too.)

Server kill: a throwaway PostgreSQL from ``/work/shared/ci/start-pg.sh`` with
durability on (``PG_DURABLE=1``; never the machine's own server). A writer process
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
import shlex
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
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
START_PG = Path("/work/shared/ci/start-pg.sh")
CAST = Cast.default()
TZ = "Asia/Shanghai"
LONG = os.environ.get("REVIEWFLOW_LONG") == "1" or os.environ.get("REVIEWFLOW_FULL") == "1"


def _pgbin() -> str | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return str(candidate)
    found = os.environ.get("PGBIN")
    return found if found and (Path(found) / "initdb").exists() else None


class ThrowawayPostgres:
    """A PostgreSQL server of this test's own (start-pg.sh), that may be killed and restarted."""

    def __init__(self) -> None:
        pgbin = _pgbin()
        if not START_PG.exists() or pgbin is None:
            pytest.skip(f"no throwaway PostgreSQL: {START_PG} or the PostgreSQL binaries "
                        "(/usr/lib/postgresql/*/bin) are missing")
        if os.geteuid() != 0:
            pytest.skip("start-pg.sh runs the server as the postgres user and needs root")
        env = {**os.environ, "PGBIN": pgbin, "PG_DURABLE": "1"}
        env.pop("PGPORT", None)
        proc = subprocess.run([str(START_PG)], env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        if proc.returncode != 0:
            pytest.skip(f"start-pg.sh failed (exit {proc.returncode}): {proc.stderr[-500:]}")
        self.vars: dict[str, str] = {}
        for line in proc.stdout.splitlines():
            if line.startswith("export "):
                for word in shlex.split(line[len("export "):]):
                    key, _, value = word.partition("=")
                    self.vars[key] = value
        self.pgbin = pgbin
        self.tmp = Path(self.vars["PG_TMP"])
        self.port = int(self.vars["PGPORT"])
        self.url = self.vars["DATABASE_URL"]
        self.timings = next((line for line in proc.stdout.splitlines() if "timings" in line), "")
        assert self.port != 5432, "never the machine's own server"
        assert str(self.tmp).startswith("/tmp/pgci."), self.tmp

    def pid(self) -> int:
        """Return the postmaster's pid, checking it serves this throwaway data directory."""
        lines = (self.tmp / "data" / "postmaster.pid").read_text().splitlines()
        assert lines[1] == str(self.tmp / "data"), lines[:2]
        assert lines[3].strip() == str(self.port), lines[:4]
        return int(lines[0])

    def kill9(self) -> None:
        """SIGKILL the postmaster (its backends are orphaned, as after a crash)."""
        os.kill(self.pid(), signal.SIGKILL)

    def restart(self) -> float:
        """Start the server again after a kill; return the seconds it took to accept."""
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.tmp} "
                "-c max_connections=200")
        started = time.monotonic()
        while True:
            proc = subprocess.run(
                ["runuser", "-u", "postgres", "--", f"{self.pgbin}/pg_ctl", "-D",
                 str(self.tmp / "data"), "-l", str(self.tmp / "server.log"), "-o", opts,
                 "-w", "-t", "60", "start"],
                capture_output=True, text=True, timeout=90, check=False,
            )
            if proc.returncode == 0:
                return time.monotonic() - started
            if time.monotonic() - started > 60:  # orphaned backends should be gone by now
                raise RuntimeError(f"PostgreSQL did not restart: {proc.stdout}{proc.stderr}")
            time.sleep(0.3)

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        subprocess.run([str(START_PG), "stop", str(self.tmp)], capture_output=True,
                       timeout=60, check=False)


@pytest.fixture(scope="module")
def throwaway_pg() -> Iterator[ThrowawayPostgres]:
    """A durable throwaway PostgreSQL server for this module."""
    server = ThrowawayPostgres()
    try:
        yield server
    finally:
        server.stop()


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


def _server_kills(server: ThrowawayPostgres, tmp_path: Path, kills: int) -> dict[str, Any]:
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


def test_kill_9_of_the_postgresql_server(throwaway_pg: ThrowawayPostgres, tmp_path: Path,
                                         figure: Any) -> None:
    figures = _server_kills(throwaway_pg, tmp_path, 2)
    figure(server_start=throwaway_pg.timings, **figures)
    _assert_safe(figures)
    assert not [e for e in figures["writer_errors"] if e.startswith("RAW")]


@pytest.mark.slow
def test_kill_9_of_the_postgresql_server_long(throwaway_pg: ThrowawayPostgres, tmp_path: Path,
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
