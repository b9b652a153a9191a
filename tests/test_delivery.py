"""A failing hook never loses its event: the failure is kept per plugin and retried with
back-off, on every store, and the other plugins do not hear the event again (#17).

The back-off is driven by the campaign's clock (a FrozenClock moved by hand), never by
sleeping. The crash is real: a forked process records the failure and dies.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest

import reviewflow as rf
from reviewflow._engine import dispatch as _delivery
from reviewflow.model import Stage
from reviewflow.testing import Cast, drive_to

CAST = Cast.default()
FORK = multiprocessing.get_context("fork")
START = pendulum.datetime(2016, 1, 4, 9, tz="Asia/Shanghai")
BASE = _delivery.Backoff().base


class Flaky:
    """Raises on every other call (the first, the third, ...); keeps what it heard."""

    def __init__(self, fail_first: bool = True) -> None:
        self.calls = 0
        self.fail_first = fail_first
        self.heard: list[str] = []

    def _maybe_fail(self, event_id: str) -> None:
        self.calls += 1
        if (self.calls % 2 == 1) == self.fail_first:
            raise RuntimeError(f"audit database unreachable (call {self.calls})")
        self.heard.append(event_id)

    @rf.hookimpl
    def reviewflow_case_opened(self, campaign: Any, case: Any) -> None:
        self._maybe_fail(f"{campaign.id}/{case.case_id}/1")

    @rf.hookimpl
    def reviewflow_step(self, campaign: Any, case: Any, record: Any) -> None:
        self._maybe_fail(record.event_id)


class Audit:
    """Never fails; keeps every event it heard (in a file too, to count across processes)."""

    def __init__(self, path: Path | None = None) -> None:
        self.heard: list[str] = []
        self.path = path

    def _note(self, event_id: str) -> None:
        self.heard.append(event_id)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(event_id + "\n")

    @rf.hookimpl
    def reviewflow_case_opened(self, campaign: Any, case: Any) -> None:
        self._note(f"{campaign.id}/{case.case_id}/1")

    @rf.hookimpl
    def reviewflow_step(self, campaign: Any, case: Any, record: Any) -> None:
        self._note(record.event_id)


@pytest.fixture(params=["memory", "sqlite", "postgresql", "mysql"])
def target(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[str | None]:
    """None (memory) or a database URL of each kind."""
    kind = request.param
    if kind == "memory":
        yield None
    elif kind == "sqlite":
        yield sqlite_url
    else:
        yield str(request.getfixturevalue(f"{kind}_url"))


def _campaign(store: Any, cid: str, clock: rf.FrozenClock) -> rf.Campaign:
    return rf.Campaign(rf.Policy.default(year=2016), clock=clock, store=store, campaign_id=cid)


def test_a_failed_delivery_is_retried_after_the_backoff_and_only_to_that_plugin(
        target: str | None) -> None:
    cid = f"dlv-{os.urandom(4).hex()}"
    clock = rf.FrozenClock(START)
    campaign = _campaign(target, cid, clock)
    flaky, audit = Flaky(), Audit()
    campaign.register(flaky, name="flaky")
    campaign.register(audit, name="audit")
    campaign.open_case("s1", organization="第一中学党支部", secretary=CAST.secretary("s1"))
    campaign.fire("s1", "finish_research", actor=CAST.organizer, problems=["p"])
    opened, step = f"{cid}/s1/1", f"{cid}/s1/2"
    assert flaky.heard == [step]  # the opening failed (call 1), the step went (call 2)
    assert audit.heard == [opened, step]

    failures = campaign.delivery_failures()
    assert [(f.event_id, f.event, f.plugin, f.hook, f.attempts) for f in failures] == [
        (opened, "open", "flaky", "reviewflow_case_opened", 1)]
    assert "RuntimeError: audit database unreachable (call 1)" in failures[0].last_error
    assert START < failures[0].next_try_at <= START.add(seconds=int(BASE))
    status = campaign.outbox_status()
    assert (status.undelivered, status.failures, status.ok) == (0, failures, False)

    assert campaign.dispatch_pending() == 0  # before the back-off: nothing is tried
    assert flaky.calls == 2

    clock.advance(seconds=int(BASE))
    assert campaign.dispatch_pending() == 1  # tried again: call 3 fails again
    assert (flaky.calls, flaky.heard) == (3, [step])
    again = campaign.delivery_failures()
    assert [(f.event_id, f.attempts) for f in again] == [(opened, 2)]
    assert "(call 3)" in again[0].last_error
    assert again[0].next_try_at > clock.now()
    assert again[0].first_failed_at == failures[0].first_failed_at

    clock.advance(seconds=int(2 * BASE))
    assert campaign.dispatch_pending() == 1  # call 4 succeeds
    assert Counter(flaky.heard) == {opened: 1, step: 1}  # exactly once more
    assert Counter(audit.heard) == {opened: 1, step: 1}  # the other plugin: not again
    assert campaign.delivery_failures() == ()
    assert campaign.outbox_status().ok
    clock.advance(hours=2)
    assert campaign.dispatch_pending() == 0
    assert flaky.calls == 4
    campaign.store.close()


def test_a_failure_outlives_the_process_and_is_retried_by_the_next(
        target: str | None) -> None:
    if target is None:
        pytest.skip("the in-memory store ends with its process")
    cid = f"dlv-{os.urandom(4).hex()}"
    clock = rf.FrozenClock(START)
    first = _campaign(target, cid, clock)
    first.register(Flaky(), name="flaky")
    first.register(Audit(), name="audit")
    first.open_case("s1", organization="第一中学党支部", secretary=CAST.secretary("s1"))
    first.store.close()

    # A new process: the same plugins under the same names.
    clock.advance(seconds=int(BASE))
    flaky, audit = Flaky(fail_first=False), Audit()
    second = _campaign(target, cid, clock)
    second.register(flaky, name="flaky")
    second.register(audit, name="audit")
    assert [f.event_id for f in second.delivery_failures()] == [f"{cid}/s1/1"]
    assert second.dispatch_pending() == 1
    assert flaky.heard == [f"{cid}/s1/1"]
    assert audit.heard == []
    assert second.outbox_status().ok
    second.store.close()


def test_a_failure_whose_plugin_is_not_registered_stays_visible(sqlite_url: str) -> None:
    cid = f"dlv-{os.urandom(4).hex()}"
    clock = rf.FrozenClock(START)
    first = _campaign(sqlite_url, cid, clock)
    first.register(Flaky(), name="flaky")
    first.open_case("s1", organization="第一中学党支部", secretary=CAST.secretary("s1"))
    first.store.close()
    clock.advance(hours=1)
    second = _campaign(sqlite_url, cid, clock)
    second.register(Audit(), name="audit")
    assert second.dispatch_pending() == 0  # not this process's plugin: left for one that has it
    [failure] = second.delivery_failures()
    assert (failure.plugin, failure.attempts) == ("flaky", 1)
    assert "RuntimeError: audit database unreachable (call 1)" in failure.last_error
    assert failure.next_try_at < clock.now()  # due, and still shown
    assert not second.outbox_status().ok
    second.store.close()


def _fail_and_die(url: str, cid: str, clock: rf.FrozenClock, path: Path) -> None:
    campaign = _campaign(url, cid, clock)
    campaign.register(Flaky(fail_first=False), name="flaky")  # call 1 goes, call 2 fails
    campaign.register(Audit(path), name="audit")
    campaign.open_case("s1", organization="第一中学党支部", secretary=CAST.secretary("s1"))
    campaign.fire("s1", "finish_research", actor=CAST.organizer, problems=["p"])
    os._exit(17)  # killed: no close, no flush of pending marks


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql", "mysql"], indirect=True)
def test_a_failure_survives_a_kill_and_the_others_are_not_told_again(
        db_url: str, tmp_path: Path) -> None:
    cid = f"dlv-{os.urandom(4).hex()}"
    clock = rf.FrozenClock(START)
    path = tmp_path / "audit.txt"
    child = FORK.Process(target=_fail_and_die, args=(db_url, cid, clock, path))
    child.start()
    child.join(120)
    assert child.exitcode == 17
    step = f"{cid}/s1/2"

    flaky, audit = Flaky(fail_first=False), Audit(path)
    campaign = _campaign(db_url, cid, clock)
    campaign.register(flaky, name="flaky")
    campaign.register(audit, name="audit")
    assert [(f.event_id, f.plugin) for f in campaign.delivery_failures()] == [(step, "flaky")]
    clock.advance(seconds=int(BASE))
    campaign.dispatch_pending()
    assert flaky.heard.count(step) == 1
    # The failed step left the outbox with its failure (one transaction): the audit plugin,
    # which heard it before the kill, is not told again.
    assert path.read_text(encoding="utf-8").splitlines().count(step) == 1
    assert campaign.outbox_status().failures == ()
    campaign.store.close()


class _SlowAudit:
    """Writes each opening it hears to a file, then waits (a while) for the other process
    to hear it too: two dispatchers that both deliver it meet there."""

    def __init__(self, path: Path, meet: Any) -> None:
        self.path, self.meet = path, meet

    @rf.hookimpl
    def reviewflow_case_opened(self, campaign: Any, case: Any) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {case.case_id}\n")
        # A broken barrier: the other dispatcher did not deliver it, as it should be.
        with contextlib.suppress(threading.BrokenBarrierError):
            self.meet.wait(timeout=3)


def _dispatch_in_parallel(url: str, cid: str, clock: rf.FrozenClock, path: Path,
                          start: Any, meet: Any) -> None:
    campaign = _campaign(url, cid, clock)
    campaign.register(_SlowAudit(path, meet), name="audit")
    start.wait(timeout=60)
    campaign.dispatch_pending()
    campaign.store.close()
    os._exit(0)


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql", "mysql"], indirect=True)
def test_two_dispatchers_deliver_a_failed_event_exactly_once_more(
        db_url: str, tmp_path: Path) -> None:
    cid = f"dlv-{os.urandom(4).hex()}"
    clock = rf.FrozenClock(START)
    first = _campaign(db_url, cid, clock)
    first.register(Flaky(), name="audit")  # the opening fails once
    first.open_case("s1", organization="第一中学党支部", secretary=CAST.secretary("s1"))
    assert [f.plugin for f in first.delivery_failures()] == ["audit"]
    first.store.close()

    clock.advance(hours=2)
    path = tmp_path / "heard.txt"
    start, meet = FORK.Barrier(2), FORK.Barrier(2)
    workers = [FORK.Process(target=_dispatch_in_parallel,
                            args=(db_url, cid, clock, path, start, meet)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    heard = path.read_text(encoding="utf-8").splitlines()
    assert len(heard) == 1, heard  # one of the two delivered it; the other left it alone
    last = _campaign(db_url, cid, clock)
    assert last.outbox_status().ok
    last.store.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_claimed_row_is_left_to_its_claimer(kind: str, sqlite_url: str) -> None:
    clock = rf.FrozenClock(START)
    campaign = _campaign(None if kind == "memory" else sqlite_url,
                         f"dlv-{os.urandom(4).hex()}", clock)
    campaign.register(Flaky(), name="audit")
    campaign.open_case("s1", organization="第一中学党支部", secretary=CAST.secretary("s1"))
    clock.advance(hours=2)
    log = _delivery.delivery_log(campaign._engine)
    seen = log.due(_delivery.utc_key(clock.now()), frozenset({"audit"}), 10)
    lease = _delivery.utc_key(clock.now().add(minutes=10))
    [held] = log.claim(seen, lease)
    assert held.next_try_at == lease
    assert log.claim(seen, lease) == []  # read before the first claim: no longer as read
    assert log.due(_delivery.utc_key(clock.now()), frozenset({"audit"}), 10) == []
    assert campaign.dispatch_pending() == 0  # leased: another dispatcher is on it
    clock.advance(minutes=11)  # the lease ran out (its dispatcher died): due again
    assert campaign.dispatch_pending() == 1
    assert campaign.outbox_status().ok


class _RefusalAudit:
    def __init__(self) -> None:
        self.calls = 0
        self.heard: list[tuple[str, str, str, str, str]] = []

    @rf.hookimpl
    def reviewflow_refused(self, campaign: Any, case_id: Any, event: Any, actor: Any,
                           error: Any) -> None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("audit database unreachable")
        self.heard.append((case_id, event, actor.id, error.reason, str(error)))


def test_a_failed_refusal_hook_is_held_and_retried(target: str | None) -> None:
    cid = f"dlv-{os.urandom(4).hex()}"
    clock = rf.FrozenClock(START)
    campaign = _campaign(target, cid, clock)
    campaign.open_case("s1", organization="第一中学党支部", secretary=CAST.secretary("s1"))
    audit = _RefusalAudit()
    campaign.register(audit, name="audit")
    with pytest.raises(rf.TransitionRefused) as refused:
        campaign.fire("s1", "finish_research", actor=CAST.secretary("s1"), problems=["p"])
    assert refused.value.reason == "not_permitted"
    [failure] = campaign.delivery_failures()
    assert (failure.event_id, failure.plugin, failure.hook, failure.event) == (
        f"{cid}/s1/refusal-1", "audit", "reviewflow_refused", "finish_research")
    assert not campaign.outbox_status().ok  # not "all delivered"

    clock.advance(hours=2)
    assert campaign.dispatch_pending() == 1
    assert audit.heard == [("s1", "finish_research", CAST.secretary("s1").id, "not_permitted",
                            str(refused.value))]
    assert campaign.outbox_status().ok
    clock.advance(hours=2)
    assert campaign.dispatch_pending() == 0  # exactly once more
    assert audit.calls == 2
    campaign.store.close()


class _FailingPublication:
    def __init__(self) -> None:
        self.calls = 0
        self.told: list[list[str]] = []

    @rf.hookimpl
    def reviewflow_results_published(self, campaign: Any, results: Any, scope: Any) -> None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("notice board offline")
        self.told.append([r.case_id for r in results])


class _Publications:
    def __init__(self) -> None:
        self.told: list[list[str]] = []

    @rf.hookimpl
    def reviewflow_results_published(self, campaign: Any, results: Any, scope: Any) -> None:
        self.told.append([r.case_id for r in results])


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_failed_publication_hook_is_told_again_once(kind: str, sqlite_url: str) -> None:
    from reviewflow.ballots import PaperCount

    clock = rf.FrozenClock(START)
    campaign = _campaign(None if kind == "memory" else sqlite_url, "2016", clock)
    failing, other = _FailingPublication(), _Publications()
    campaign.register(failing, name="board")
    campaign.register(other, name="archive")
    for i, counts in enumerate([{"good": 30}, {"good": 5, "average": 15}]):
        case_id = f"s{i}"
        campaign.open_case(case_id, organization=f"第{i}支部", secretary=CAST.secretary(case_id))
        drive_to(campaign, case_id, Stage.EVALUATION, cast=CAST, clock=clock)
        campaign.fire(case_id, "comment", actor=CAST.superior, text="工作扎实")
        campaign.fire(case_id, "comment", actor=CAST.delegate, text="成效明显")
        campaign.enter_paper_counts(case_id, PaperCount(counts=counts, issued=30),
                                    actor=CAST.organizer)
        campaign.close_vote(case_id, actor=CAST.organizer)
    campaign.publish(actor=CAST.organizer, scope="全局党员干部")
    assert (other.told, failing.told) == ([["s0", "s1"]], [])
    failures = campaign.delivery_failures()
    assert {(f.case_id, f.event, f.plugin, f.hook) for f in failures} == {
        ("s0", "publish_results", "board", "reviewflow_results_published"),
        ("s1", "publish_results", "board", "reviewflow_results_published"),
    }
    clock.advance(seconds=int(BASE))
    campaign.dispatch_pending()
    assert sorted(sorted(t) for t in failing.told) == [["s0", "s1"]]  # one publication, once
    assert other.told == [["s0", "s1"]]
    assert campaign.delivery_failures() == ()


def test_a_failing_rung_hook_is_retried_after_the_sweep() -> None:
    from reviewflow.testing import HookRecorder

    class Pager:
        def __init__(self) -> None:
            self.calls = 0

        @rf.hookimpl
        def reviewflow_deadline_rung(self, campaign: Any, case: Any, stage: Any, rung: Any,
                                     due: Any, record: Any) -> None:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("pager gateway down")

    policy = rf.Policy.default(year=2016)
    clock = rf.FrozenClock(START)
    campaign = rf.Campaign(policy, clock=clock)
    campaign.open_case("s1", organization="第一中学党支部", secretary=CAST.secretary("s1"))
    pager, recorder = Pager(), HookRecorder()
    campaign.register(pager, name="pager")
    campaign.register(recorder, name="recorder")
    campaign.fire("s1", "finish_research", actor=CAST.organizer, problems=["p"])
    due = campaign.due(campaign.case("s1"), Stage.DRAFTING)
    assert due is not None
    result = campaign.sweep(due.add(days=1))
    assert result.fired
    rungs = len([c for c in recorder.calls if c[0] == "reviewflow_deadline_rung"])
    assert [f.plugin for f in campaign.delivery_failures()] == ["pager"]
    clock.set(due.add(days=2))
    campaign.dispatch_pending()
    assert pager.calls == rungs + 1
    assert len([c for c in recorder.calls if c[0] == "reviewflow_deadline_rung"]) == rungs
    assert campaign.delivery_failures() == ()


def test_the_sweep_tells_rungs_through_the_one_delivery_path() -> None:
    from reviewflow._engine import sweep as _deadline_ops

    class Pager:
        def __init__(self) -> None:
            self.told: list[tuple[str, str, str, str]] = []

        @rf.hookimpl
        def reviewflow_deadline_rung(self, campaign: Any, case: Any, stage: Any, rung: Any,
                                     due: Any, record: Any) -> None:
            self.told.append((record.event_id, stage.value, rung.id, due.isoformat()))
            if len(self.told) == 1:
                raise RuntimeError("pager gateway down")

    clock = rf.FrozenClock(START)
    campaign = rf.Campaign(rf.Policy.default(year=2016), clock=clock)
    campaign.open_case("s1", organization="第一中学党支部", secretary=CAST.secretary("s1"))
    pager = Pager()
    campaign.register(pager, name="pager")
    campaign.fire("s1", "finish_research", actor=CAST.organizer, problems=["p"])
    due = campaign.due(campaign.case("s1"), Stage.DRAFTING)
    assert due is not None
    assert campaign.sweep(due.add(days=1)).fired
    clock.set(due.add(days=2))
    campaign.dispatch_pending()
    # The retry (built from the record) tells the hook exactly what the sweep told it.
    assert [x for x in pager.told if x[0] == pager.told[0][0]] == [pager.told[0]] * 2
    # No second or third copy of the dispatch: the dead rung-delivery paths are gone.
    assert not hasattr(_deadline_ops, "deliver_record")
    assert not hasattr(campaign, "_deliver_deadline")


def test_the_backoff_grows_with_jitter_up_to_its_cap() -> None:
    backoff = _delivery.Backoff(base=30, factor=2, cap=3600, jitter=0.5)
    for attempts, full in ((1, 30), (2, 60), (3, 120), (8, 3600), (500, 3600)):
        delays = {backoff.delay(attempts) for _ in range(50)}
        assert all(full * 0.5 <= d <= full for d in delays)
        assert len(delays) > 1  # jitter
    with pytest.raises(rf.InputError):
        _delivery.Backoff(base=0)


@pytest.mark.parametrize("given", [
    {"base": "30"}, {"jitter": None}, {"factor": True}, {"cap": [3600]}, {"base": -1},
])
def test_a_bad_backoff_is_an_input_error_with_a_reason(given: dict[str, Any]) -> None:
    """Review 1, finding 7: ``Backoff(base="30")`` was a TypeError from a comparison."""
    with pytest.raises(rf.InputError) as info:
        rf.Backoff(**given)
    assert info.value.reason == "bad_backoff"
    assert next(iter(given)) in str(info.value)


# ---------------------------------------------------------------------- wrappers


class _Wrapper:
    @rf.hookimpl(wrapper=True)
    def reviewflow_step(self, campaign: Any, case: Any, record: Any) -> Any:
        return (yield)


class _OldWrapper:
    @rf.hookimpl(hookwrapper=True)
    def reviewflow_step(self, campaign: Any, case: Any, record: Any) -> Any:
        yield


@pytest.mark.parametrize("plugin", [_Wrapper(), _OldWrapper()])
def test_hook_wrappers_are_refused_at_register(plugin: object) -> None:
    campaign = rf.Campaign(rf.Policy.default(year=2016), clock=rf.FrozenClock(START))
    with pytest.raises(rf.PluginError, match="wrapper") as excinfo:
        campaign.register(plugin, name="timing")
    assert excinfo.value.hook == "register"
    assert "reviewflow_step" in str(excinfo.value)
    assert campaign._engine.pm.list_name_plugin() == []  # nothing half-registered
    campaign.register(Audit(), name="audit")  # an ordinary plugin still goes in


def test_plugins_without_a_name_get_their_class_name() -> None:
    campaign = rf.Campaign(rf.Policy.default(year=2016), clock=rf.FrozenClock(START))
    campaign.register(Audit())
    campaign.register(Audit())
    names = [name for name, _ in campaign._engine.pm.list_name_plugin()]
    assert names == [f"{__name__}.Audit", f"{__name__}.Audit#2"]
    with pytest.raises(rf.PluginError):
        campaign.register(Audit(), name="")


# ---------------------------------------------------------------------- the CLI


def test_the_outbox_command_shows_failed_deliveries(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import shutil

    from reviewflow.cli import main
    from reviewflow.policy_file import DEFAULT_POLICY_FILE

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")
    for name in ("REVIEWFLOW_NOW", "REVIEWFLOW_DB", "REVIEWFLOW_CONFIG", "REVIEWFLOW_CAMPAIGN"):
        monkeypatch.delenv(name, raising=False)
    shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.toml")
    assert main(["init", "policy.toml"]) == 0
    assert main(["--lang", "en", "outbox"]) == 0
    assert "every event was delivered" in capsys.readouterr().out

    # A host process whose audit plugin fails on the first event it hears.
    url = f"sqlite:///{tmp_path / 'reviewflow.db'}"
    host = rf.Campaign(rf.Policy.default(year=2016), clock=rf.FrozenClock(START), store=url)
    host.register(Flaky(), name="audit-db")
    host.open_case("s1", organization="第一中学党支部", secretary=CAST.secretary("s1"))
    host.store.close()

    assert main(["--lang", "en", "outbox", "--json"]) == 1
    shown = json.loads(capsys.readouterr().out)
    assert shown["undelivered"] == 0
    [failure] = shown["failures"]
    assert (failure["event_id"], failure["plugin"], failure["attempts"]) == (
        "2016/s1/1", "audit-db", 1)
    assert failure["next_try_at"].startswith("2016-01-04T09:0")
    assert main(["--lang", "en", "outbox"]) == 1
    out = capsys.readouterr().out
    for shown_text in ("audit-db", "RuntimeError", "failed deliveries"):
        assert shown_text in out
