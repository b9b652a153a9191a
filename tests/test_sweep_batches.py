"""The sweep on a database: batches of a thousand, the next one built while one commits.

The pipelined path only runs on a durable store with more than one batch due, so these
tests open a little over two thousand cases on each real database.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from tests.test_store_deadlines import KINDS, LADDER_TIMES, drafting, fired_counts

import reviewflow as rf
from reviewflow.exceptions import StoreError

N = 2_100  # three batches: 1000, 1000, 100


class _Hooks:
    """Remember each rung hook: the case, the rung and the thread that called it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self.event_ids: list[str] = []

    @rf.hookimpl
    def reviewflow_deadline_rung(self, campaign: Any, case: Any, stage: Any, rung: Any,
                                 due: Any, record: Any) -> None:
        self.calls.append((case.case_id, rung.id, threading.get_ident()))
        assert record.event == "deadline_rung"
        assert record.data["rung"]["id"] == rung.id
        self.event_ids.append(record.event_id)


@KINDS
def test_a_sweep_of_several_batches_fires_each_rung_once_and_calls_hooks_here(
        db_url: str) -> None:
    campaign = drafting(db_url, N)
    hooks = _Hooks()
    campaign.register(hooks)
    result = campaign.sweep(LADDER_TIMES[0])
    ids = [f"s{i:04d}" for i in range(N)]
    assert sorted(f.case_id for f in result.fired) == ids
    assert result.candidates == N
    assert not result.failed
    assert sorted(c[0] for c in hooks.calls) == ids
    assert {c[1] for c in hooks.calls} == {"remind-3wd"}
    assert {c[2] for c in hooks.calls} == {threading.get_ident()}  # never from the worker
    fired_ids = {f"{campaign.id}/{f.case_id}/{f.seq}" for f in result.fired}
    assert sorted(hooks.event_ids) == sorted(fired_ids)  # the event id hosts de-duplicate by
    stored = fired_counts(campaign.store, campaign.id)
    assert set(stored.values()) == {1}
    assert len(stored) == N
    assert len(campaign.sweep(LADDER_TIMES[0])) == 0
    assert not campaign.dispatch_pending()  # every hook was delivered and marked
    assert campaign.verify().ok
    campaign.store.close()


class _Boom(StoreError):
    """The database went away (injected on one commit)."""


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_a_batch_that_fails_to_commit_stops_the_sweep_and_loses_nothing(db_url: str) -> None:
    campaign = drafting(db_url, N)
    hooks = _Hooks()
    campaign.register(hooks)
    store = campaign.store
    real = store.commit
    calls = {"n": 0}

    def commit(commits: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise _Boom("connection lost")
        return real(commits)

    store.commit = commit  # type: ignore[method-assign]
    with pytest.raises(_Boom):
        campaign.sweep(LADDER_TIMES[0])
    del store.commit
    first = sorted(c[0] for c in hooks.calls)
    assert len(first) == 1000  # the first batch landed and was told
    assert sum(fired_counts(store, campaign.id).values()) == 1000  # the second wrote nothing
    again = campaign.sweep(LADDER_TIMES[0])
    assert len(again) == N - 1000
    assert sorted(c[0] for c in hooks.calls) == [f"s{i:04d}" for i in range(N)]
    stored = fired_counts(store, campaign.id)
    assert len(stored) == N
    assert set(stored.values()) == {1}
    assert campaign.verify().ok
    store.close()
