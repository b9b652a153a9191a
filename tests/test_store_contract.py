"""One contract for every store: memory, a SQLite file, PostgreSQL and MySQL/MariaDB.

Each test uses campaign ids of its own, so the database stores share one schema
per run; campaigns must not see each other's cases, events, outbox or refusals.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from reviewflow.audit import verify_chain
from reviewflow.exceptions import ConflictError, DuplicateCaseError, UnknownCaseError
from reviewflow.model import Stage
from reviewflow.store import MemoryStore, Refusal, Store, open_store

BACKENDS = ("memory", "sqlite", "postgresql", "mysql")


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[Store]:
    """A store of each kind (the database ones skip when their server is unreachable)."""
    kind = request.param
    if kind == "memory":
        s: Store = MemoryStore()
    elif kind == "sqlite":
        s = open_store(sqlite_url)
    else:
        s = open_store(str(request.getfixturevalue(f"{kind}_url")))
    yield s
    s.close()


@pytest.fixture
def cid(store: Store, kit: Any) -> str:
    """A new campaign, set up in the store."""
    campaign_id = kit.new_campaign_id()
    store.setup_campaign(campaign_id, '{"name": "2016年度述职评议"}')
    return str(campaign_id)


def opened(store: Store, kit: Any, cid: str, *case_ids: str) -> None:
    store.insert_cases([kit.opening(cid, c) for c in case_ids])


# ---------------------------------------------------------------------- campaigns


def test_setup_campaign_keeps_the_first_policy(store: Store, cid: str) -> None:
    store.setup_campaign(cid, '{"name": "other"}')
    assert store.campaign_policy(cid) == '{"name": "2016年度述职评议"}'
    assert cid in store.campaigns()
    assert store.campaign_policy("no-such-campaign") is None


def test_campaigns_are_isolated(store: Store, kit: Any, cid: str) -> None:
    other = kit.new_campaign_id()
    store.setup_campaign(other, "{}")
    opened(store, kit, cid, "school-01")
    opened(store, kit, other, "school-01")
    case = store.get(cid, "school-01")
    assert case is not None
    assert store.commit([kit.step(case, 2)]) == [None]
    other_case = store.get(other, "school-01")
    assert other_case is not None
    assert other_case.version == 1
    assert len(store.history(other, "school-01")) == 1
    assert [r.event_id for r in store.pending_outbox(other)] == [f"{other}/school-01/1"]
    store.record_refusals([_refusal(cid, "school-01")])
    assert store.refusals(other) == []
    assert [c.case_id for c in store.cases(other)] == ["school-01"]


# ---------------------------------------------------------------------- opening cases


def test_opened_case_round_trips(store: Store, kit: Any, cid: str) -> None:
    commit = kit.opening(cid, "school-01", problems=["组织生活不规范"], nested={"a": [1, 2]})
    commit.case.previous_case_id = "2015/school-01"
    store.insert_cases([commit])
    case = store.get(cid, "school-01")
    assert case is not None
    assert (case.stage, case.version, case.last_hash) == (Stage.RESEARCH, 1, commit.events[0].hash)
    assert case.data == {"problems": ["组织生活不规范"], "nested": {"a": [1, 2]}}
    assert case.secretary == kit.secretary
    assert case.organization == "第一中学党支部"
    assert case.previous_case_id == "2015/school-01"
    assert store.history(cid, "school-01") == list(commit.events)
    assert case.history == commit.events


def test_duplicate_case_is_refused_and_nothing_is_written(
    store: Store, kit: Any, cid: str,
) -> None:
    opened(store, kit, cid, "school-02")
    with pytest.raises(DuplicateCaseError, match="school-02"):
        store.insert_cases([kit.opening(cid, "school-01"), kit.opening(cid, "school-02")])
    assert store.get(cid, "school-01") is None
    with pytest.raises(DuplicateCaseError, match="school-03"):
        store.insert_cases([kit.opening(cid, "school-03"), kit.opening(cid, "school-03")])
    assert store.get(cid, "school-03") is None


def test_case_ids_are_case_sensitive(store: Store, kit: Any, cid: str) -> None:
    opened(store, kit, cid, "A", "a")
    assert [c.case_id for c in store.cases(cid)] == ["A", "a"]


def test_opening_in_an_unknown_campaign_is_refused(store: Store, kit: Any) -> None:
    with pytest.raises(UnknownCaseError):
        store.insert_cases([kit.opening("no-such-campaign", "x")])


def test_cases_are_listed_by_id_and_filtered_by_stage(store: Store, kit: Any, cid: str) -> None:
    ids = ["b", "Z", "a", "十", "B"]
    opened(store, kit, cid, *ids)
    assert [c.case_id for c in store.cases(cid)] == sorted(ids)
    case = store.get(cid, "a")
    assert case is not None
    moved = kit.step(case)
    moved.case.stage = Stage.DRAFTING
    assert store.commit([moved]) == [None]
    assert [c.case_id for c in store.cases(cid, "drafting")] == ["a"]
    assert len(store.cases(cid, "research")) == 4
    assert store.cases("no-such-campaign") == []


def test_snapshots_are_detached(store: Store, kit: Any, cid: str) -> None:
    opened(store, kit, cid, "s")
    case = store.get(cid, "s")
    assert case is not None
    case.data["edited"] = True
    case.version = 99
    again = store.get(cid, "s")
    assert again is not None
    assert "edited" not in again.data
    assert again.version == 1


# ---------------------------------------------------------------------- commits


def test_commit_applies_a_step_with_several_events(store: Store, kit: Any, cid: str) -> None:
    opened(store, kit, cid, "s")
    case = store.get(cid, "s")
    assert case is not None
    commit = kit.step(case, 3)
    assert store.commit([commit]) == [None]
    after = store.get(cid, "s")
    assert after is not None
    assert (after.version, after.last_hash, after.data["count"]) == (4, commit.case.last_hash, 3)
    history = store.history(cid, "s")
    assert [r.seq for r in history] == [1, 2, 3, 4]
    assert verify_chain("s", history, expected_version=4, expected_hash=after.last_hash) == []


def test_stale_commit_is_a_conflict_naming_case_and_versions(
    store: Store, kit: Any, cid: str,
) -> None:
    opened(store, kit, cid, "s")
    case = store.get(cid, "s")
    assert case is not None
    assert store.commit([kit.step(case)]) == [None]
    [error] = store.commit([kit.step(case, marker="stale")])
    assert isinstance(error, ConflictError)
    assert (error.case_id, error.expected, error.actual) == ("s", 1, 2)
    assert "'s'" in str(error)
    assert "version 1" in str(error)
    assert "version 2" in str(error)
    after = store.get(cid, "s")
    assert after is not None
    assert after.version == 2
    assert "marker" not in after.data
    assert len(store.history(cid, "s")) == 2


def test_commit_to_an_unknown_case_fails(store: Store, kit: Any, cid: str) -> None:
    opened(store, kit, cid, "s")
    case = store.get(cid, "s")
    assert case is not None
    ghost = kit.step(case)
    ghost.case.case_id = "ghost"
    [error] = store.commit([ghost])
    assert isinstance(error, UnknownCaseError)


def test_batch_applies_the_good_commits_and_refuses_the_stale(
    store: Store, kit: Any, cid: str,
) -> None:
    opened(store, kit, cid, "a", "b", "c")
    cases = {c.case_id: c for c in store.cases(cid)}
    assert store.commit([kit.step(cases["b"])]) == [None]
    results = store.commit([kit.step(cases["a"]), kit.step(cases["b"]), kit.step(cases["c"], 2)])
    assert results[0] is None
    assert isinstance(results[1], ConflictError)
    assert results[2] is None
    versions = {c.case_id: c.version for c in store.cases(cid)}
    assert versions == {"a": 2, "b": 2, "c": 3}
    assert {k: len(store.history(cid, k)) for k in "abc"} == versions


def test_batch_may_move_one_case_twice(store: Store, kit: Any, cid: str) -> None:
    opened(store, kit, cid, "a")
    case = store.get(cid, "a")
    assert case is not None
    first = kit.step(case)
    second = kit.step(first.case, 2)
    assert store.commit([first, second]) == [None, None]
    after = store.get(cid, "a")
    assert after is not None
    assert after.version == len(store.history(cid, "a")) == 4


def test_batch_step_after_a_failed_one_fails_too(store: Store, kit: Any, cid: str) -> None:
    opened(store, kit, cid, "a")
    case = store.get(cid, "a")
    assert case is not None
    stale = kit.step(case)
    assert store.commit([kit.step(case, 2)]) == [None]
    follow = kit.step(stale.case)
    results = store.commit([stale, follow])
    assert all(isinstance(r, ConflictError) for r in results)
    assert len(store.history(cid, "a")) == 3


def test_empty_batches_do_nothing(store: Store) -> None:
    assert store.commit([]) == []
    store.insert_cases([])
    store.record_refusals([])


# ---------------------------------------------------------------------- idempotency, refusals, outbox


def test_idempotency_key_is_found_after_commit(store: Store, kit: Any, cid: str) -> None:
    opened(store, kit, cid, "s")
    case = store.get(cid, "s")
    assert case is not None
    assert store.commit([kit.step(case, key="k-1", fingerprint="f" * 64)]) == [None]
    assert store.find_idempotent(cid, "k-1") == ("f" * 64, "s", 2)
    assert store.find_idempotent(cid, "k-2") is None
    other = kit.new_campaign_id()
    store.setup_campaign(other, "{}")
    assert store.find_idempotent(other, "k-1") is None


def _refusal(cid: str, case_id: str, reason: str = "not_permitted") -> Refusal:
    return Refusal(
        campaign_id=cid, case_id=case_id, event="sign_off", actor_id="zhang",
        roles=("secretary",), at="2016-01-05T10:00:00+08:00", stage="approval",
        reason=reason, message="a secretary cannot sign off their own report",
    )


def test_refusal_journal_keeps_order_and_filters_by_case(
    store: Store, kit: Any, cid: str,
) -> None:
    opened(store, kit, cid, "a", "b")
    store.record_refusals([_refusal(cid, "a", "first"), _refusal(cid, "b", "second")])
    store.record_refusals([_refusal(cid, "a", "third")])
    assert [r.reason for r in store.refusals(cid)] == ["first", "second", "third"]
    assert [r.reason for r in store.refusals(cid, "a")] == ["first", "third"]
    assert store.refusals(cid, "a")[0] == _refusal(cid, "a", "first")


def test_outbox_lists_pending_events_until_dispatched(store: Store, kit: Any, cid: str) -> None:
    opened(store, kit, cid, "a", "b")
    case = store.get(cid, "a")
    assert case is not None
    assert store.commit([kit.step(case, 2)]) == [None]
    pending = [r.event_id for r in store.pending_outbox(cid)]
    assert sorted(pending) == sorted([f"{cid}/a/1", f"{cid}/b/1", f"{cid}/a/2", f"{cid}/a/3"])
    assert pending.index(f"{cid}/a/2") < pending.index(f"{cid}/a/3")
    assert len(store.pending_outbox(cid, limit=2)) == 2
    store.mark_dispatched(cid, [f"{cid}/a/1", f"{cid}/a/2"])
    assert sorted(r.event_id for r in store.pending_outbox(cid)) == sorted(
        [f"{cid}/b/1", f"{cid}/a/3"]
    )
    records = {r.event_id: r for r in store.pending_outbox(cid)}
    assert records[f"{cid}/a/3"] == store.history(cid, "a")[2]


# ---------------------------------------------------------------------- stateful


class StoreMachine(RuleBasedStateMachine):
    """Random opens, steps (fresh and stale), batches and refusals against a dict model."""

    def __init__(self, store: Store, kit: Any) -> None:
        super().__init__()
        self.store = store
        self.kit = kit
        self.cid = kit.new_campaign_id()
        store.setup_campaign(self.cid, "{}")
        self.model: dict[str, int] = {}
        self.snapshots: dict[str, Any] = {}
        self.refused = 0

    @initialize()
    def open_first(self) -> None:
        self.open_cases(1)

    @rule(n=st.integers(1, 3))
    def open_cases(self, n: int) -> None:
        ids = [f"case-{len(self.model) + i:03d}" for i in range(n)]
        commits = [self.kit.opening(self.cid, c) for c in ids]
        self.store.insert_cases(commits)
        for c in commits:
            self.model[c.case.case_id] = 1
            self.snapshots[c.case.case_id] = c.case

    @rule(data=st.data(), n=st.integers(1, 3))
    def step_fresh(self, data: st.DataObject, n: int) -> None:
        case_id = data.draw(st.sampled_from(sorted(self.model)))
        case = self.store.get(self.cid, case_id)
        assert case is not None
        commit = self.kit.step(case, n)
        assert self.store.commit([commit]) == [None]
        self.model[case_id] += n
        self.snapshots[case_id] = commit.case

    @precondition(lambda self: any(v > 1 for v in self.model.values()))
    @rule(data=st.data())
    def step_stale(self, data: st.DataObject) -> None:
        case_id = data.draw(st.sampled_from(sorted(k for k, v in self.model.items() if v > 1)))
        case = self.store.get(self.cid, case_id)
        assert case is not None
        case.version -= 1  # a snapshot read before the last step
        [error] = self.store.commit([self.kit.step(case)])
        assert isinstance(error, ConflictError)
        assert error.actual == self.model[case_id]

    @rule(data=st.data())
    def batch(self, data: st.DataObject) -> None:
        ids = data.draw(st.lists(st.sampled_from(sorted(self.model)), min_size=1, max_size=5))
        stale = data.draw(st.lists(st.booleans(), min_size=len(ids), max_size=len(ids)))
        commits = []
        expected: list[bool] = []
        current = {k: self.store.get(self.cid, k) for k in set(ids)}
        for case_id, make_stale in zip(ids, stale, strict=True):
            case = current[case_id]
            assert case is not None
            if make_stale:
                case = case.copy()
                case.version += 7
            commit = self.kit.step(case)
            ok = not make_stale
            commits.append(commit)
            expected.append(ok)
            if ok:
                current[case_id] = commit.case
        results = self.store.commit(commits)
        assert [r is None for r in results] == expected
        assert all(isinstance(r, ConflictError) for r in results if r is not None)
        for commit, ok in zip(commits, expected, strict=True):
            if ok:
                self.model[commit.case.case_id] += 1

    @rule(data=st.data())
    def refuse(self, data: st.DataObject) -> None:
        case_id = data.draw(st.sampled_from(sorted(self.model)))
        self.store.record_refusals([_refusal(self.cid, case_id)])
        self.refused += 1

    @invariant()
    def store_matches_model(self) -> None:
        cases = {c.case_id: c for c in self.store.cases(self.cid)}
        assert {k: c.version for k, c in cases.items()} == self.model
        for case_id, case in cases.items():
            history = self.store.history(self.cid, case_id)
            assert verify_chain(case_id, history, expected_version=case.version,
                                expected_hash=case.last_hash) == []
        assert len(self.store.refusals(self.cid)) == self.refused


def test_stateful_store_matches_a_model(store: Store, kit: Any) -> None:
    durable = store.durable
    run_state_machine_as_test(
        lambda: StoreMachine(store, kit),
        settings=settings(
            max_examples=12 if durable else 60, stateful_step_count=12 if durable else 25,
            deadline=None, suppress_health_check=list(HealthCheck),
        ),
    )
